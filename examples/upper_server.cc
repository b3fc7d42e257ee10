// A server that runs a command per request: each line a client sends is fed
// to `tr a-z A-Z` in a child process, and the child's output is the answer.
// Shows Process with pipes, communicate(), and a per-request time limit that
// kills a child that takes too long.
//   ./bazelw run -c opt //examples:upper_server -- --port 7071
//   echo hello | nc 127.0.0.1 7071        # HELLO
#include <chrono>
#include <string>

#include "examples/flags.h"
#include "examples/serve.h"

int main(int argc, char** argv) {
  fiberloop::examples::check_flags(argc, argv, {"--host", "--port", "--loops"});
  using namespace fiberloop;
  using namespace std::chrono_literals;
  const auto address = SocketAddress::from_ip(examples::flag(argc, argv, "--host", "127.0.0.1"),
                                              examples::port_flag(argc, argv, 7071));
  return examples::serve(
      "upper_server", address,
      [](TcpStream& conn) {
        BufferedReader in(conn, 64 * 1024);
        while (std::optional<std::string> line = in.read_line()) {
          auto child = Process::exec({"tr", "a-z", "A-Z"}, {.in = Stdio::pipe, .out = Stdio::pipe});
          try {
            auto [out, err] = with_timeout(5s, [&] { return child.communicate(*line + "\n"); });
            conn.write_all(child.returncode() == 0 ? out : "ERR tr failed: " + err);
          } catch (const TimeoutError&) {
            child.kill();  // a wait that times out leaves the child running: end it
            child.wait();
            conn.write_all("ERR timed out\n");
          }
        }
      },
      examples::loops_flag(argc, argv));
}
