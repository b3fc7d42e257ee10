// Stream as an interface: a user's own stream (with every layer on it,
// BufferedReader included), writes of several buffers at once (writev), and
// Go's per-stream deadlines. BufferedReader over real loopback connections
// is tests/buffered_reader_test.cc.
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "fiberloop.h"
#include "tests/loop_fixture.h"

namespace fiberloop {
namespace {

using namespace std::chrono_literals;
using Streams = testing::LoopTest;

// A connected pair of TCP streams on loopback.
std::pair<TcpStream, TcpStream> tcp_pair() {
  auto listener = TcpListener::bind(SocketAddress::parse("127.0.0.1:0"));
  auto client = TcpStream::connect(listener.local_address());
  return {std::move(client), listener.accept()};
}

// A user's own stream: reads from a script of chunks, collects writes.
class ScriptedStream final : public Stream {
 public:
  explicit ScriptedStream(std::vector<std::string> chunks) : chunks_(std::move(chunks)) {}
  void shutdown_write() override { shut_ = true; }
  void close() noexcept override { open_ = false; }
  bool is_open() const noexcept override { return open_; }
  std::string describe() const override { return "the scripted stream"; }
  std::string written;
  int write_calls = 0;
  bool shut_ = false;

 protected:
  std::size_t read_some(std::span<char> buf) override {
    this_fiber::yield();  // a real suspension point, as a socket's would be
    if (next_ == chunks_.size()) return 0;
    std::string& c = chunks_[next_];
    const std::size_t n = std::min(buf.size(), c.size() - offset_);
    std::copy_n(c.data() + offset_, n, buf.data());
    offset_ += n;
    if (offset_ == c.size()) ++next_, offset_ = 0;
    return n;
  }
  std::size_t write_some(std::span<const char> buf) override {
    ++write_calls;
    const std::size_t n = std::min<std::size_t>(buf.size(), 3);  // short writes
    written.append(buf.data(), n);
    return n;
  }

 private:
  std::vector<std::string> chunks_;
  std::size_t next_ = 0, offset_ = 0;
  bool open_ = true;
};

// A stream whose shutdown_write() sends bytes and may wait (as TLS's
// close_notify) runs it with run_as_write(): under the write deadline.
class SlowShutdownStream final : public Stream {
 public:
  void shutdown_write() override {
    run_as_write([](void*) { this_fiber::sleep_for(1h); }, nullptr);
  }
  void close() noexcept override {}
  bool is_open() const noexcept override { return true; }
  std::string describe() const override { return "the slow stream"; }

 protected:
  std::size_t read_some(std::span<char>) override { return 0; }
  std::size_t write_some(std::span<const char> buf) override { return buf.size(); }
};

TEST_F(Streams, AShutdownRunAsAWriteHonoursTheWriteDeadline) {
  run([] {
    SlowShutdownStream s;
    s.set_write_deadline(Clock::now() + 5ms);
    std::string what;
    try {
      s.shutdown_write();
    } catch (const TimeoutError& e) {
      what = e.what();
    }
    EXPECT_NE(what.find("write deadline"), std::string::npos) << what;
    EXPECT_NE(what.find("the slow stream"), std::string::npos) << what;
  });
}

TEST_F(Streams, AUsersOwnStreamWorksWithEveryLayer) {
  run([] {
    ScriptedStream s({"GET / HT", "TP/1.1\r\nHost: x\r\n", "\r\nbody", "!"});
    Stream& any = s;
    BufferedReader in(any);
    EXPECT_EQ(in.read_line(), "GET / HTTP/1.1");
    EXPECT_EQ(in.read_until("\r\n\r\n"), "Host: x\r\n\r\n");
    EXPECT_EQ(in.read_exactly(5), "body!");
    EXPECT_EQ(in.read_line(), std::nullopt);
    any.write_all({"ab", "", "cdefg", "h"});  // the default writev: one buffer at a time
    EXPECT_EQ(s.written, "abcdefgh");
    any.write_all("0123456789");
    EXPECT_EQ(s.written, "abcdefgh0123456789");
    any.shutdown_write();
    EXPECT_TRUE(s.shut_);
    std::string_view none[] = {"", ""};
    EXPECT_EQ(any.writev(none), 0u);
  });
}

TEST_F(Streams, WriteAllOfSeveralBuffersArrivesInOrder) {
  run([] {
    auto [a, b] = tcp_pair();
    // Big enough for short writes: 4 MiB in 200 buffers of varied sizes.
    std::vector<std::string> parts;
    std::string expected;
    for (int i = 0; i < 200; ++i) {
      parts.push_back(std::string(static_cast<std::size_t>(i * 997 % 40000), char('a' + i % 26)));
      expected += parts.back();
    }
    std::vector<std::string_view> views(parts.begin(), parts.end());
    auto writer = spawn([&a, &views] {
      a.write_all(views);
      a.shutdown_write();
    });
    std::string got;
    char buf[65536];
    while (std::size_t n = b.read(buf)) got.append(buf, n);
    writer.join();
    EXPECT_EQ(got.size(), expected.size());
    EXPECT_TRUE(got == expected);
  });
}

TEST_F(Streams, AReadDeadlineInterruptsAParkedReadAndStaysUntilMoved) {
  run([] {
    auto [a, b] = tcp_pair();
    b.set_read_deadline(Clock::now() + 20ms);
    char buf[16];
    try {
      (void)b.read(buf);
      ADD_FAILURE() << "read past its deadline";
    } catch (const TimeoutError& e) {
      EXPECT_NE(std::string(e.what()).find("read deadline"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("of fd " + std::to_string(b.fd())), std::string::npos)
          << e.what();
    }
    // Still past: fails at once, even with data waiting (Go's rule).
    a.write_all("x");
    this_fiber::sleep_for(5ms);
    try {
      (void)b.read(buf);
      ADD_FAILURE() << "read past its deadline";
    } catch (const TimeoutError& e) {
      EXPECT_NE(std::string(e.what()).find("fd " + std::to_string(b.fd())), std::string::npos)
          << e.what();
    }
    b.set_read_deadline(TimePoint::max());  // cleared
    EXPECT_EQ(b.read(buf), 1u);
    // Writes are not under the read deadline.
    b.set_read_deadline(Clock::now() - 1s);
    b.write_all("still writes");
    EXPECT_EQ(b.write_deadline(), TimePoint::max());
  });
}

TEST_F(Streams, AWriteDeadlineInterruptsAWriteToAPeerThatDoesNotRead) {
  run([] {
    auto [a, b] = tcp_pair();
    a.set_deadline(Clock::now() + 30ms);  // both directions
    EXPECT_EQ(a.read_deadline(), a.write_deadline());
    const std::string chunk(1 << 20, 'x');
    try {
      for (;;) a.write_all(chunk);  // fills both socket buffers, then parks
    } catch (const TimeoutError& e) {
      EXPECT_NE(std::string(e.what()).find("write deadline"), std::string::npos) << e.what();
    }
    std::string_view parts[] = {"a", "b"};
    EXPECT_THROW(a.writev(parts), TimeoutError);
  });
}

TEST_F(Streams, ADeadlineAndWithTimeoutNestTheEarlierWins) {
  run([] {
    auto [a, b] = tcp_pair();
    b.set_read_deadline(Clock::now() + 10s);
    char buf[4];
    try {
      with_timeout(20ms, [&] { (void)b.read(buf); });
      ADD_FAILURE() << "no timeout";
    } catch (const TimeoutError& e) {
      EXPECT_NE(std::string(e.what()).find("with_timeout"), std::string::npos) << e.what();
    }
    b.set_read_deadline(Clock::now() + 20ms);
    try {
      with_timeout(10s, [&] { (void)b.read(buf); });
      ADD_FAILURE() << "no timeout";
    } catch (const TimeoutError& e) {
      EXPECT_NE(std::string(e.what()).find("read deadline"), std::string::npos) << e.what();
    }
  });
}

// ---- BufferedReader ---------------------------------------------------------

// A line's end is an optional "\r" and a "\n"; the last line, unended, loses
// a final "\r" too, as in Go's bufio.ScanLines (a CRLF file cut before its
// last "\n" reads the same as whole), and only that one "\r".
TEST_F(Streams, ReadLineDropsOneCarriageReturnBeforeTheEndOfTheLastLineToo) {
  run([] {
    ScriptedStream s({"a\r\r\nb\rc\r"});
    BufferedReader in(s);
    EXPECT_EQ(in.read_line(), "a\r");
    EXPECT_EQ(in.read_line(), "b\rc");
    EXPECT_EQ(in.read_line(), std::nullopt);
    ScriptedStream lone({"\r"});
    BufferedReader lone_in(lone);
    EXPECT_EQ(lone_in.read_line(), "");  // a last line that held only "\r"
    EXPECT_EQ(lone_in.read_line(), std::nullopt);
  });
}

TEST_F(Streams, MovingADeadlineAppliesToAParkedOperation) {
  run([] {
    auto [a, b] = tcp_pair();
    b.set_read_deadline(Clock::now() + 10s);
    auto reader = spawn([&b] {
      char buf[4];
      return b.read(buf);
    });
    this_fiber::sleep_for(10ms);
    const TimePoint start = Clock::now();
    b.set_read_deadline(Clock::now());  // wakes it now, not in 10 s
    EXPECT_THROW(reader.join(), TimeoutError);
    EXPECT_LT(Clock::now() - start, 5s);
    // Cleared while parked: it waits on and gets the data.
    // (A deadline a loaded machine's pause cannot pass before it is cleared.)
    b.set_read_deadline(Clock::now() + 200ms);
    auto patient = spawn([&b] {
      char buf[4];
      return b.read(buf);
    });
    this_fiber::yield();  // it parks in its read
    b.set_read_deadline(TimePoint::max());
    this_fiber::sleep_for(250ms);  // past the old deadline
    a.write_all("x");
    EXPECT_EQ(patient.join(), 1u);
  });
}

// Go's idiom: another fiber stops an operation that is waiting with no
// deadline at all by setting one (a read, and a write to a full socket).
TEST_F(Streams, SettingADeadlineStopsAnOperationWaitingWithoutOne) {
  run([] {
    auto [a, b] = tcp_pair();
    auto reader = spawn([&b] {
      char buf[4];
      return b.read(buf);
    });
    this_fiber::sleep_for(10ms);
    b.set_read_deadline(Clock::now());
    try {
      reader.join();
      ADD_FAILURE() << "the read returned";
    } catch (const TimeoutError& e) {
      EXPECT_NE(std::string(e.what()).find("read deadline"), std::string::npos) << e.what();
    }
    auto writer = spawn([&a] {
      const std::string block(1 << 20, 'x');
      for (;;) a.write_all(block);  // until the socket buffers fill and it waits
    });
    this_fiber::sleep_for(20ms);
    a.set_write_deadline(Clock::now() + 10ms);
    EXPECT_THROW(writer.join(), TimeoutError);
  });
}

// A read_exact or write_all that fails after some bytes went says how many
// (the error named only the call under it: "read fd 7: Connection reset by
// peer"). The peer resets (SO_LINGER 0) after reading or sending a little.
TEST_F(Streams, ACompositeOperationThatFailsMidwaySaysHowFarItGot) {
  run([] {
    const auto reset = [](TcpStream& s) {
      const linger now{1, 0};
      ::setsockopt(s.fd(), SOL_SOCKET, SO_LINGER, &now, sizeof now);
      s.close();
    };
    auto [a, b] = tcp_pair();
    const std::string a_fd = std::to_string(a.fd());
    b.write_all("ab");
    auto peer = spawn([&] {
      this_fiber::sleep_for(20ms);  // a's read_exact has its 2 bytes by now
      reset(b);
    });
    char four[4];
    std::string what = testing::error_of([&] { a.read_exact(four); });
    EXPECT_NE(what.find("read fd " + a_fd + " (read_exact, after 2 of 4 bytes): "),
              std::string::npos)
        << what;
    peer.join();

    auto [c, d] = tcp_pair();
    peer = spawn([&] {
      char buf[1000];
      (void)d.read(buf);  // c's write_all has sent some
      reset(d);
    });
    const std::string big(32 << 20, 'x');
    what = testing::error_of([&] { c.write_all(big); });
    EXPECT_NE(what.find("(write_all, after "), std::string::npos) << what;
    EXPECT_NE(what.find(" of " + std::to_string(big.size()) + " bytes): "), std::string::npos)
        << what;
    peer.join();
  });
}

}  // namespace
}  // namespace fiberloop
