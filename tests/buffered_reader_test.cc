// BufferedReader over real loopback connections: lines across reads, the
// limit (a line past it is an error, not a hang), a peer that closes
// mid-record, read_until and read_slice, read_exactly past the buffer, and
// reads interrupted by deadlines and cancellation losing nothing.
#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <string>
#include <utility>

#include "fiberloop.h"
#include "tests/group_helpers.h"
#include "tests/loop_fixture.h"

namespace fiberloop {
namespace {

using namespace std::chrono_literals;
using BufferedReaders = testing::LoopTest;
using testing::connected_pair;

// What `call` throws as an E; a failure of the test if it throws nothing
// (another exception passes through, and fails it too).
template <class E, class Call>
std::optional<E> thrown(Call call) {
  try {
    call();
  } catch (const E& e) {
    return e;
  }
  ADD_FAILURE() << "nothing was thrown";
  return std::nullopt;
}

TEST_F(BufferedReaders, ReadLineSplitsOnNewlinesAcrossReadsAndKeepsTheLastUnendedLine) {
  run([] {
    auto [a, b] = connected_pair();
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

TEST_F(BufferedReaders, ALineLongerThanTheLimitIsAnErrorNotAHang) {
  run([] {
    auto [a, b] = connected_pair();
    auto writer = spawn([&a] { a.write_all(std::string(5000, 'x')); });  // never a newline
    BufferedReader in(b, 1024);
    if (const auto e = thrown<LimitOverrunError>([&] { (void)in.read_line(); })) {
      EXPECT_GE(e->buffered(), 1024u);  // what one read brought: at least the limit
      EXPECT_NE(std::string(e->what()).find("limit of 1024 bytes"), std::string::npos) << e->what();
    }
    writer.join();
  });
}

TEST_F(BufferedReaders, ALineAtTheLimitFitsOnePastItDoesNot) {
  run([] {
    auto [a, b] = connected_pair();
    a.write_all("1234567\nabcdefgh\n");
    BufferedReader in(b, 8);
    EXPECT_EQ(in.read_line(), "1234567");  // 8 bytes with its newline
    EXPECT_THROW(in.read_line(), LimitOverrunError);
    EXPECT_EQ(in.read_exactly(9), "abcdefgh\n");  // the bytes stayed buffered
  });
}

TEST_F(BufferedReaders, APeerThatClosesMidRecordGivesIncompleteReadWithThePartialBytes) {
  run([] {
    auto [a, b] = connected_pair();
    a.write_all("HEAD\r\n\r\npartial reco");
    a.close();
    BufferedReader in(b);
    EXPECT_EQ(in.read_until("\r\n\r\n"), "HEAD\r\n\r\n");
    if (const auto e = thrown<IncompleteReadError>([&] { (void)in.read_until("\r\n\r\n"); })) {
      EXPECT_EQ(e->partial(), "partial reco");
      EXPECT_NE(std::string(e->what()).find("after 12 bytes"), std::string::npos) << e->what();
    }
    EXPECT_EQ(in.read_line(), std::nullopt);  // consumed, as in asyncio
  });
}

TEST_F(BufferedReaders, ReadSliceIsReadUntilWithoutTheCopy) {
  run([] {
    auto [a, b] = connected_pair();
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
    if (const auto e = thrown<IncompleteReadError>([&] { (void)in.read_slice("\r\n\r\n"); })) {
      EXPECT_EQ(e->partial(), "cut");
      EXPECT_NE(std::string(e->what()).find("read_slice"), std::string::npos) << e->what();
    }
    EXPECT_THROW(in.read_slice(""), std::invalid_argument);
    writer.join();
  });
  run([] {
    auto [a, b] = connected_pair();
    a.write_all(std::string(100, 'x') + "\n");
    BufferedReader in(b, 64);
    if (const auto e = thrown<LimitOverrunError>([&] { (void)in.read_slice("\n"); })) {
      EXPECT_NE(std::string(e->what()).find("read_slice"), std::string::npos) << e->what();
    }
  });
  // The delimiter in the message, on one line: control characters escaped.
  run([] {
    auto [a, b] = connected_pair();
    a.write_all(std::string(100, 'x') + "\r\n\r\n");
    BufferedReader in(b, 64);
    if (const auto e = thrown<LimitOverrunError>([&] { (void)in.read_until("\r\n\r\n"); })) {
      EXPECT_NE(std::string(e->what()).find("no \"\\r\\n\\r\\n\""), std::string::npos) << e->what();
      EXPECT_EQ(std::string(e->what()).find('\r'), std::string::npos) << e->what();
    }
  });
}

TEST_F(BufferedReaders, ReadExactlyTakesTheBufferThenReadsPastItAndReportsAShortStream) {
  run([] {
    auto [a, b] = connected_pair();
    const std::string big(3 << 20, 'q');  // larger than any buffer or limit
    auto writer = spawn([&] {
      a.write_all({"line\n", big, "tail"});
      a.close();
    });
    BufferedReader in(b, 100);
    EXPECT_EQ(in.read_line(), "line");
    EXPECT_TRUE(in.read_exactly(big.size()) == big);
    if (const auto e = thrown<IncompleteReadError>([&] { (void)in.read_exactly(10); })) {
      EXPECT_EQ(e->partial(), "tail");
      EXPECT_NE(std::string(e->what()).find("4 of 10 bytes"), std::string::npos) << e->what();
    }
    writer.join();
  });
}

TEST_F(BufferedReaders, ReadMixesWithLinesAndReturnsZeroAtTheEnd) {
  run([] {
    auto [a, b] = connected_pair();
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

TEST_F(BufferedReaders, AReaderHonoursTheStreamsDeadlineAndCancellation) {
  run([] {
    auto [a, b] = connected_pair();
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
// read_exactly grows its string as bytes come: a length prefix of 1 TiB
// from a peer that then sends ten bytes ends as a short stream (it was an
// allocation of the whole 1 TiB up front: std::bad_alloc).
TEST_F(BufferedReaders, AHugeReadExactlyCommitsNoMemoryBeforeTheBytesCome) {
  run([] {
    auto [a, b] = connected_pair();
    a.write_all("0123456789");
    a.close();
    BufferedReader in(b);
    if (const auto e =
            thrown<IncompleteReadError>([&] { (void)in.read_exactly(std::size_t{1} << 40); })) {
      EXPECT_EQ(e->partial(), "0123456789");
    }
  });
}

// The bytes an interrupted read_exactly puts back go into a buffer of the
// usual size, not one made to fit them: later reads are not that small.
TEST_F(BufferedReaders, AReaderKeepsItsUsualBufferAfterAnInterruptedReadExactly) {
  run([] {
    auto [a, b] = connected_pair();
    BufferedReader in(b);  // no buffer yet
    a.write_all("0123456789");
    EXPECT_THROW(with_timeout(20ms, [&] { (void)in.read_exactly(100); }), TimeoutError);
    char buf[4096];
    EXPECT_EQ(in.read(buf), 10u);
    a.write_all(std::string(1000, 'x'));
    EXPECT_GT(in.read(buf), 10u);  // one segment on loopback: all of it, in one read
  });
}

TEST_F(BufferedReaders, AnInterruptedReadExactlyLosesNothing) {
  run([] {
    auto [a, b] = connected_pair();
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

}  // namespace
}  // namespace fiberloop
