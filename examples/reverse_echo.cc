// A server that reverses each message,
// and a client that sends a few and prints what comes back.
//   ./bazelw run //examples:reverse_echo
#include <algorithm>
#include <cstdio>
#include <string>

#include "fiberloop.h"

int main() {
  using namespace fiberloop;
  return run([] {
    auto listener = TcpListener::bind(SocketAddress::parse("127.0.0.1:0"));
    auto server = spawn([&] {
      TcpStream conn = listener.accept();
      char buf[1024];
      while (std::size_t n = conn.read(buf)) {
        std::string msg(buf, n);
        std::reverse(msg.begin(), msg.end());
        conn.write_all(msg);
      }
    });
    TcpStream client = TcpStream::connect(listener.local_address());
    for (const char* msg : {"hello", "fibers", "event loop"}) {
      client.write_all(msg);
      std::string reply(std::char_traits<char>::length(msg), '\0');
      client.read_exact(reply);
      std::printf("sent %-12s got %s\n", msg, reply.c_str());
    }
    client.shutdown_write();  // the server sees end of stream and returns
    server.join();
    return 0;
  });
}
