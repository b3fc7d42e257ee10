// An echo server: every byte a client sends comes back.
//   ./bazelw run -c opt //examples:echo_server -- --port 7000 [--loops N]
#include "examples/flags.h"
#include "examples/serve.h"

int main(int argc, char** argv) {
  fiberloop::examples::check_flags(argc, argv, {"--host", "--port", "--loops"});
  using namespace fiberloop;
  const auto address = SocketAddress::from_ip(examples::flag(argc, argv, "--host", "127.0.0.1"),
                                              examples::port_flag(argc, argv, 7000));
  return examples::serve(
      "echo_server", address,
      [](TcpStream& conn) {
        char buf[16384];
        while (std::size_t n = conn.read(buf)) conn.write_all({buf, n});
      },
      examples::loops_flag(argc, argv));
}
