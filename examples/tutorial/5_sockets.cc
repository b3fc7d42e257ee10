// Tutorial step 5: sockets. A read that would block parks the fiber, and the
// loop runs others until the reactor (io_uring or epoll) has the socket's
// data. Here a server shouts back what a client sends, both in one loop, on
// loopback.
#include <cctype>
#include <cstdio>
#include <string>

#include <fiberloop/fiberloop.h>

using namespace fiberloop;

int main() {
  return run([] {
    TcpListener listener = TcpListener::bind(SocketAddress::parse("127.0.0.1:0"));
    Task<void> server = spawn([&] {
      TcpStream conn = listener.accept();  // parks until a client connects
      char buf[256];
      while (std::size_t n = conn.read(buf)) {  // 0: the client closed
        for (std::size_t i = 0; i < n; ++i) buf[i] = static_cast<char>(std::toupper(buf[i]));
        conn.write_all({buf, n});
      }
    });
    TcpStream client = TcpStream::connect(listener.local_address());
    client.write_all("hello, loop");
    std::string reply(11, '\0');
    client.read_exact(reply);
    std::printf("%s\n", reply.c_str());  // HELLO, LOOP
    client.close();
    server.join();
    return 0;
  });
}
