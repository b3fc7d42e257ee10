// A program that uses an installed fiberloop, as a user's would: built by
// consumers/cmake (find_package) and consumers/pkg-config (a g++ line).
// An echo over loopback between two fibers, a channel, and the backend the
// loop runs on; prints what it saw and exits 0 if it is all right.
#include <fiberloop/fiberloop.h>

#include <cstdio>
#include <string>

int main() {
  return fiberloop::run([] {
    auto listener = fiberloop::TcpListener::bind(fiberloop::SocketAddress::parse("127.0.0.1:0"));
    fiberloop::Channel<std::string> heard(1);
    auto server = fiberloop::spawn([&] {
      auto conn = listener.accept();
      char buf[64];
      const std::size_t n = conn.read(buf);
      heard.send(std::string(buf, n));
      conn.write_all({buf, n});
    });
    auto client = fiberloop::TcpStream::connect(listener.local_address());
    client.write_all("ping");
    char back[4];
    client.read_exact(back);
    server.join();
    const std::string got = heard.recv().value_or("");
    std::printf("server heard '%s', client got '%.4s', backend %s\n", got.c_str(), back,
                fiberloop::to_string(fiberloop::Loop::current()->backend()));
    return got == "ping" && std::string(back, 4) == "ping" ? 0 : 1;
  });
}
