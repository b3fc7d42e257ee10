// Stream as an interface: a user's own stream, writes of several buffers at
// once (writev), Go's per-stream deadlines, and BufferedReader over real
// loopback connections, bad input included (a line past the limit, a peer
// that closes mid-line).
#include <gtest/gtest.h>

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

TEST_F(Streams, ReadLineSplitsOnNewlinesAcrossReadsAndKeepsTheLastUnendedLine) {
  run([] {
    auto [a, b] = tcp_pair();
    auto writer = spawn([&a] {
      for (std::string_view piece : {"one\r\ntw", "o\n", "\n", "thr", "ee\r\nlast"}) {
        a.write_all(piece);
        this_fiber::sleep_for(2ms);  // separate segments
      }
      a.close();
    });
    BufferedReader in(b);
    std::vector<std::string> lines;
    for (auto&& line : in.lines()) lines.push_back(line);
    writer.join();
    EXPECT_EQ(lines, (std::vector<std::string>{"one", "two", "", "three", "last"}));
    EXPECT_EQ(in.read_line(), std::nullopt);  // and again
  });
}

TEST_F(Streams, ALineLongerThanTheLimitIsAnErrorNotAHang) {
  run([] {
    auto [a, b] = tcp_pair();
    auto writer = spawn([&a] { a.write_all(std::string(5000, 'x')); });  // never a newline
    BufferedReader in(b, 1024);
    try {
      (void)in.read_line();
      ADD_FAILURE() << "no LimitOverrunError";
    } catch (const LimitOverrunError& e) {
      EXPECT_GE(e.buffered(), 1024u);  // what one read brought: at least the limit
      EXPECT_NE(std::string(e.what()).find("limit of 1024 bytes"), std::string::npos) << e.what();
    }
    writer.join();
  });
}

TEST_F(Streams, ALineAtTheLimitFitsOnePastItDoesNot) {
  run([] {
    auto [a, b] = tcp_pair();
    a.write_all("1234567\nabcdefgh\n");
    BufferedReader in(b, 8);
    EXPECT_EQ(in.read_line(), "1234567");  // 8 bytes with its newline
    EXPECT_THROW(in.read_line(), LimitOverrunError);
    EXPECT_EQ(in.read_exactly(9), "abcdefgh\n");  // the bytes stayed buffered
  });
}

TEST_F(Streams, APeerThatClosesMidRecordGivesIncompleteReadWithThePartialBytes) {
  run([] {
    auto [a, b] = tcp_pair();
    a.write_all("HEAD\r\n\r\npartial reco");
    a.close();
    BufferedReader in(b);
    EXPECT_EQ(in.read_until("\r\n\r\n"), "HEAD\r\n\r\n");
    try {
      (void)in.read_until("\r\n\r\n");
      ADD_FAILURE() << "no IncompleteReadError";
    } catch (const IncompleteReadError& e) {
      EXPECT_EQ(e.partial(), "partial reco");
      EXPECT_NE(std::string(e.what()).find("after 12 bytes"), std::string::npos) << e.what();
    }
    EXPECT_EQ(in.read_line(), std::nullopt);  // consumed, as in asyncio
  });
}

TEST_F(Streams, ReadSliceIsReadUntilWithoutTheCopy) {
  run([] {
    auto [a, b] = tcp_pair();
    auto writer = spawn([&] {
      a.write_all("GET / HTTP/1.1\r\n");
      this_fiber::sleep_for(1ms);  // the head arrives in two reads
      a.write_all("Host: x\r\n\r\nnext\r\n\r\ncut");
      a.close();
    });
    BufferedReader in(b, 64);
    const std::string_view head = in.read_slice("\r\n\r\n");
    EXPECT_EQ(head, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_EQ(in.buffered(), 11u);  // "next\r\n\r\ncut", not copied out
    const std::string_view next = in.read_slice("\r\n\r\n");
    EXPECT_EQ(next, "next\r\n\r\n");
    EXPECT_EQ(next.data(), head.data() + head.size());  // both in the buffer, not copied
    try {
      (void)in.read_slice("\r\n\r\n");
      ADD_FAILURE() << "no IncompleteReadError";
    } catch (const IncompleteReadError& e) {
      EXPECT_EQ(e.partial(), "cut");
      EXPECT_NE(std::string(e.what()).find("read_slice"), std::string::npos) << e.what();
    }
    EXPECT_THROW(in.read_slice(""), std::invalid_argument);
    writer.join();
  });
  run([] {
    auto [a, b] = tcp_pair();
    a.write_all(std::string(100, 'x') + "\n");
    BufferedReader in(b, 64);
    try {
      (void)in.read_slice("\n");
      ADD_FAILURE() << "no LimitOverrunError";
    } catch (const LimitOverrunError& e) {
      EXPECT_NE(std::string(e.what()).find("read_slice"), std::string::npos) << e.what();
    }
  });
}

TEST_F(Streams, ReadExactlyTakesTheBufferThenReadsPastItAndReportsAShortStream) {
  run([] {
    auto [a, b] = tcp_pair();
    const std::string big(3 << 20, 'q');  // larger than any buffer or limit
    auto writer = spawn([&] {
      a.write_all({"line\n", big, "tail"});
      a.close();
    });
    BufferedReader in(b, 100);
    EXPECT_EQ(in.read_line(), "line");
    EXPECT_TRUE(in.read_exactly(big.size()) == big);
    try {
      (void)in.read_exactly(10);
      ADD_FAILURE() << "no IncompleteReadError";
    } catch (const IncompleteReadError& e) {
      EXPECT_EQ(e.partial(), "tail");
      EXPECT_NE(std::string(e.what()).find("4 of 10 bytes"), std::string::npos) << e.what();
    }
    writer.join();
  });
}

TEST_F(Streams, ReadMixesWithLinesAndReturnsZeroAtTheEnd) {
  run([] {
    auto [a, b] = tcp_pair();
    a.write_all("a\nbcdef");
    a.shutdown_write();
    BufferedReader in(b);
    EXPECT_EQ(in.read_line(), "a");
    char buf[3];
    EXPECT_EQ(in.read(buf), 3u);
    EXPECT_EQ(std::string(buf, 3), "bcd");
    EXPECT_EQ(in.buffered(), 2u);
    EXPECT_EQ(in.read(buf), 2u);
    EXPECT_EQ(in.read(buf), 0u);
    EXPECT_THROW(BufferedReader(b, 0), std::invalid_argument);
    EXPECT_THROW(in.read_until(""), std::invalid_argument);
  });
}

TEST_F(Streams, AReaderHonoursTheStreamsDeadlineAndCancellation) {
  run([] {
    auto [a, b] = tcp_pair();
    a.write_all("no newline yet");
    BufferedReader in(b);
    b.set_read_deadline(Clock::now() + 20ms);
    EXPECT_THROW(in.read_line(), TimeoutError);
    b.set_read_deadline(TimePoint::max());
    auto reader = spawn([&in] { return in.read_line(); });
    this_fiber::sleep_for(5ms);
    reader.cancel();
    EXPECT_THROW(reader.join(), Cancelled);
    a.write_all(", now\n");
    EXPECT_EQ(in.read_line(), "no newline yet, now");  // nothing was lost
  });
}

// Interrupted mid-record, read_exactly keeps every byte it took: the next
// call finds them (asyncio's readexactly).
TEST_F(Streams, AnInterruptedReadExactlyLosesNothing) {
  run([] {
    auto [a, b] = tcp_pair();
    BufferedReader in(b);
    a.write_all("hello\nWORLD");
    EXPECT_EQ(in.read_line(), "hello");
    EXPECT_THROW(with_timeout(20ms, [&] { (void)in.read_exactly(10); }), TimeoutError);
    EXPECT_EQ(in.buffered(), 5u);
    auto late = spawn([&] {
      this_fiber::sleep_for(5ms);
      a.write_all("abc");
    });
    EXPECT_THROW(with_timeout(30ms, [&] { (void)in.read_exactly(10); }), TimeoutError);
    late.join();
    a.write_all("de");
    EXPECT_EQ(in.read_exactly(10), "WORLDabcde");
  });
}

// Go's rule: moving a deadline applies to an operation already parked.
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
    b.set_read_deadline(Clock::now() + 30ms);
    auto patient = spawn([&b] {
      char buf[4];
      return b.read(buf);
    });
    this_fiber::sleep_for(5ms);
    b.set_read_deadline(TimePoint::max());
    this_fiber::sleep_for(60ms);  // past the old deadline
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

}  // namespace
}  // namespace fiberloop
