// The servers among the examples, run as real processes (started with Process,
// their port read from their first line of output with BufferedReader),
// talked to over loopback, and stopped with SIGTERM: each must answer
// correctly and exit 0.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <string>
#include <vector>

#include "fiberloop.h"
#include "tests/loop_fixture.h"
#include "tests/tls_certs.h"

namespace fiberloop {
namespace {

using namespace std::chrono_literals;
using Examples = testing::LoopTest;

struct Server {
  Process process;
  std::uint16_t port = 0;
};

// Starts examples/<name> on a free port with one loop; returns once it
// listens. Bounded: 10 s to say "listening on 127.0.0.1:PORT".
Server start(const std::string& name, std::vector<std::string> extra = {}) {
  std::vector<std::string> argv{"examples/" + name, "--port", "0", "--loops", "1"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  Server s{Process::exec(argv, {.out = Stdio::pipe}), 0};
  BufferedReader out(s.process.stdout_pipe());
  const std::optional<std::string> line = with_timeout(10s, [&] { return out.read_line(); });
  const std::string marker = "listening on 127.0.0.1:";
  const std::size_t at = line ? line->find(marker) : std::string::npos;
  if (at == std::string::npos)
    throw std::runtime_error(name + " did not start: " + line.value_or("(no output)"));
  s.port = static_cast<std::uint16_t>(std::stoi(line->substr(at + marker.size())));
  return s;
}

// Runs `talk(port)` against the example, then stops it with SIGTERM and
// expects exit status 0. If `talk` fails, the server is killed and waited
// for all the same, so that no child outlives the test.
template <class Talk>
void with_server(const std::string& name, std::vector<std::string> extra, Talk talk) {
  Server s = start(name, std::move(extra));
  try {
    with_timeout(10s, [&] { talk(s.port); });
  } catch (...) {
    s.process.kill();
    s.process.wait();
    throw;
  }
  s.process.terminate();
  EXPECT_EQ(with_timeout(10s, [&] { return s.process.wait(); }), 0);
}

SocketAddress local(std::uint16_t port) { return SocketAddress::from_ip("127.0.0.1", port); }

// For the TLS examples: the flags that give the server its certificate,
// and a client context that trusts the CA that signed it.
std::vector<std::string> cert_flags(const testing::TestCerts& certs) {
  return {"--cert", certs.cert("server"), "--key", certs.key("server")};
}
TlsContext trusting(const testing::TestCerts& certs) {
  TlsContext ctx = TlsContext::client();
  ctx.load_verify_file(certs.cert("ca"));
  return ctx;
}

// A mistyped flag stops the example with a usage line (it was ignored, and
// the server started on its default port); --help prints it and exits 0.
TEST_F(Examples, AnUnknownFlagIsRefusedAndHelpPrintsUsage) {
  run([] {
    auto bad = Process::exec({"examples/kv_server", "--loop", "2"}, {.err = Stdio::pipe});
    const std::string err = with_timeout(10s, [&] { return bad.communicate().second; });
    EXPECT_EQ(bad.returncode(), 2);
    EXPECT_NE(err.find("unknown flag '--loop'"), std::string::npos) << err;
    EXPECT_NE(err.find("[--loops VALUE]"), std::string::npos) << err;
    auto help = Process::exec({"examples/kv_server", "--help"}, {.out = Stdio::pipe});
    const std::string out = with_timeout(10s, [&] { return help.communicate().first; });
    EXPECT_EQ(help.returncode(), 0);
    EXPECT_NE(out.find("usage: examples/kv_server"), std::string::npos) << out;
  });
}

TEST_F(Examples, HttpsHelloAnswersOverTlsWithKeepAlive) {
  testing::TestCerts certs;
  run([&] {
    const TlsContext ctx = trusting(certs);
    with_server("https_hello", cert_flags(certs), [&](std::uint16_t port) {
      TlsStream c = TlsStream::connect("localhost", port, ctx);
      BufferedReader in(c);
      for (int i = 0; i < 3; ++i) {  // three requests on one connection
        c.write_all("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");
        EXPECT_EQ(in.read_until("\r\n\r\n").substr(0, 15), "HTTP/1.1 200 OK");
        EXPECT_EQ(in.read_exactly(14), "Hello, world!\n");
      }
      // A plaintext client does not hurt the server: it is dropped.
      auto plain = TcpStream::connect(local(port));
      plain.write_all("GET / HTTP/1.1\r\n\r\n");
      char buf[64];
      try {
        while (plain.read(buf) > 0) {
        }
      } catch (const std::system_error& e) {
        EXPECT_EQ(e.code().value(), ECONNRESET) << e.what();
      }
      c.write_all("GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
      EXPECT_EQ(in.read_until("\r\n\r\n").substr(0, 15), "HTTP/1.1 200 OK");
      EXPECT_EQ(in.read_exactly(14), "Hello, world!\n");
      EXPECT_EQ(in.read_line(), std::nullopt);  // close_notify
    });
  });
}

TEST_F(Examples, HttpHelloKeepsAliveAndAnswersPipelinedRequestsInOrder) {
  run([&] {
    with_server("http_hello", {}, [&](std::uint16_t port) {
      const std::string ok = "HTTP/1.1 200 OK";
      auto c = TcpStream::connect(local(port));
      BufferedReader in(c);
      const auto answer = [&] {
        const std::string head = in.read_until("\r\n\r\n");
        EXPECT_EQ(in.read_exactly(14), "Hello, world!\n");
        return head.substr(0, head.find("\r\n"));
      };
      c.write_all("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
      EXPECT_EQ(answer(), ok);
      // Three requests in one write, one with a body split across writes.
      c.write_all("GET /a HTTP/1.1\r\n\r\nPOST /b HTTP/1.1\r\nContent-Length: 5\r\n\r\nhel");
      c.write_all("loGET /c HTTP/1.1\r\n\r\n");
      for (int i = 0; i < 3; ++i) EXPECT_EQ(answer(), ok) << "request " << i;
      c.write_all("GET / HTTP/1.1\r\nConnection: close\r\n\r\n");
      EXPECT_EQ(answer(), ok);
      EXPECT_EQ(in.read_line(), std::nullopt);  // and it closed

      // Bad input: garbage, a head past the limit, a request cut off.
      for (const std::string& bad :
           {std::string("NOT HTTP\r\n\r\n"), "GET / HTTP/1.1\r\nX: " + std::string(9000, 'x'),
            std::string("GET / HTTP/1.1\r\nHost")}) {
        auto b = TcpStream::connect(local(port));
        BufferedReader bin(b);
        b.write_all(bad);
        b.shutdown_write();
        EXPECT_EQ(bin.read_line(), "HTTP/1.1 400 Bad Request") << bad.substr(0, 20);
      }
    });
  });
}

TEST_F(Examples, TlsEchoServerEchoesEveryClient) {
  testing::TestCerts certs;
  run([&] {
    const TlsContext ctx = trusting(certs);
    with_server("tls_echo_server", cert_flags(certs), [&](std::uint16_t port) {
      // Three clients at once, each echoing 1 MiB in 1 KiB writes
      // and reading it back as it goes.
      TaskGroup clients;
      for (int k = 0; k < 3; ++k) {
        clients.spawn([&, k] {
          TlsStream c = TlsStream::connect("localhost", port, ctx);
          const std::string chunk(1024, static_cast<char>('a' + k));
          std::string back(1024, '\0');
          for (int i = 0; i < 1024; ++i) {
            c.write_all(chunk);
            c.read_exact(back);
            ASSERT_EQ(back, chunk) << "client " << k << ", chunk " << i;
          }
          c.shutdown_write();
          char end;
          EXPECT_EQ(c.read({&end, 1}), 0u);  // the server's close
        });
      }
      clients.join();
    });
  });
}

TEST_F(Examples, KvServerSpeaksItsLineProtocol) {
  run([&] {
    with_server("kv_server", {}, [&](std::uint16_t port) {
      auto c = TcpStream::connect(local(port));
      BufferedReader in(c);
      const auto ask = [&](const std::string& line) {
        c.write_all({line, "\n"});
        return in.read_line().value_or("(closed)");
      };
      EXPECT_EQ(ask("SET greeting hello there"), "OK");
      EXPECT_EQ(ask("GET greeting"), "VALUE hello there");
      EXPECT_EQ(ask("GET nothing"), "NOTFOUND");
      EXPECT_EQ(ask("FROB x"), "ERR unknown command (SET k v, GET k, DEL k, QUIT)");
      EXPECT_EQ(ask(std::string(10000, 'x')), "ERR line longer than 4096 bytes");
      EXPECT_EQ(ask("DEL greeting"), "OK");  // the long line was skipped whole
      EXPECT_EQ(ask("GET greeting"), "NOTFOUND");
      EXPECT_EQ(ask("QUIT"), "BYE");
      EXPECT_EQ(in.read_line(), std::nullopt);
    });
  });
}

TEST_F(Examples, UpperServerRunsACommandPerLine) {
  run([&] {
    with_server("upper_server", {}, [&](std::uint16_t port) {
      auto c = TcpStream::connect(local(port));
      BufferedReader in(c);
      c.write_all("hello\nfiber loop\n");
      EXPECT_EQ(in.read_line(), "HELLO");
      EXPECT_EQ(in.read_line(), "FIBER LOOP");
    });
  });
}

}  // namespace
}  // namespace fiberloop
