// Channels: rendezvous, buffering, close, move-only values, fairness, select.
#include <chrono>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <vector>

#include "tests/loop_fixture.h"

namespace fiberloop {
namespace {

using namespace std::chrono_literals;
using testing::LoopTest;
using ChannelTest = LoopTest;

TEST_F(ChannelTest, UnbufferedIsARendezvous) {
  Channel<int> ch;
  std::string trace;
  loop().spawn([&] {
    trace += "send ";
    ch.send(1);
    trace += "sent ";
  });
  loop().spawn([&] {
    this_fiber::yield();
    this_fiber::yield();
    trace += "recv ";
    EXPECT_EQ(ch.recv(), 1);
  });
  loop().run();
  // The sender cannot finish before the receiver takes the value.
  EXPECT_EQ(trace, "send recv sent ");
}

TEST_F(ChannelTest, BufferedKeepsOrderAndBlocksOnlyWhenFull) {
  Channel<int> ch(3);
  std::vector<int> got;
  int sent = 0;
  loop().spawn([&] {
    for (int i = 0; i < 10; ++i) {
      ch.send(i);
      sent = i + 1;
    }
    ch.close();
  });
  loop().spawn([&] {
    this_fiber::yield();
    EXPECT_EQ(sent, 3);  // the buffer filled, then the sender waited
    while (auto v = ch.recv()) got.push_back(*v);
  });
  loop().run();
  EXPECT_EQ(got, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
}

TEST_F(ChannelTest, CloseSemantics) {
  run([] {
    Channel<std::string> ch(2);
    ch.send("a");
    ch.close();
    ch.close();  // idempotent
    EXPECT_TRUE(ch.closed());
    EXPECT_THROW(ch.send("b"), ChannelClosed);
    EXPECT_EQ(ch.recv(), "a");           // drained first
    EXPECT_EQ(ch.recv(), std::nullopt);  // then nullopt, forever
    EXPECT_EQ(ch.recv(), std::nullopt);
  });
}

TEST_F(ChannelTest, CloseWakesParkedSendersAndReceivers) {
  run([] {
    Channel<int> ch;
    auto receiver = spawn([&] { return ch.recv(); });
    Channel<int> full(0);
    auto sender = spawn([&] { full.send(1); });
    this_fiber::yield();
    ch.close();
    full.close();
    EXPECT_EQ(receiver.join(), std::nullopt);
    EXPECT_THROW(sender.join(), ChannelClosed);
  });
}

TEST_F(ChannelTest, MoveOnlyValues) {
  run([] {
    Channel<std::unique_ptr<int>> ch(1);
    auto producer = spawn([&] {
      ch.send(std::make_unique<int>(1));
      ch.send(std::make_unique<int>(2));  // waits: the buffer holds one
    });
    auto a = ch.recv();
    auto b = ch.recv();
    producer.join();
    ASSERT_TRUE(a && *a && b && *b);
    EXPECT_EQ(**a + **b, 3);
  });
}

TEST_F(ChannelTest, BlockedSendersAreServedInOrder) {
  Channel<char> ch;
  std::string got;
  for (char c : std::string("xyz")) loop().spawn([&ch, c] { ch.send(c); });
  loop().spawn([&] {
    this_fiber::yield();
    for (int i = 0; i < 3; ++i) got += *ch.recv();
  });
  loop().run();
  EXPECT_EQ(got, "xyz");
}

TEST_F(ChannelTest, TrySendAndTryRecv) {
  run([] {
    Channel<int> ch(1);
    int v = 5;
    EXPECT_TRUE(ch.try_send(v));
    int w = 6;
    EXPECT_FALSE(ch.try_send(w));
    EXPECT_EQ(w, 6);  // not moved from on failure
    EXPECT_EQ(ch.try_recv(), 5);
    EXPECT_EQ(ch.try_recv(), std::nullopt);
    // A temporary, as send() takes one; std::move(x) keeps x on failure.
    Channel<std::string> text(1);
    EXPECT_TRUE(text.try_send(std::string("temporary")));
    std::string kept = "kept";
    EXPECT_FALSE(text.try_send(std::move(kept)));
    EXPECT_EQ(kept, "kept");
    EXPECT_EQ(text.try_recv(), "temporary");
  });
}

TEST_F(ChannelTest, CancelledReceiverPassesTheValueToTheNext) {
  Channel<int> ch;
  run([&] {
    auto a = spawn([&] { return ch.recv(); });
    auto b = spawn([&] { return ch.recv(); });
    this_fiber::yield();
    a.cancel();
    ch.send(7);  // a was cancelled first: b gets it
    EXPECT_THROW(a.join(), Cancelled);
    EXPECT_EQ(b.join(), 7);
  });
}

TEST_F(ChannelTest, CancelledSenderDoesNotSend) {
  Channel<int> ch;
  run([&] {
    auto a = spawn([&] { ch.send(1); });
    this_fiber::yield();
    a.cancel();
    EXPECT_THROW(a.join(), Cancelled);
    EXPECT_EQ(ch.try_recv(), std::nullopt);
  });
}

TEST_F(ChannelTest, SelectTakesWhicheverIsReady) {
  run([] {
    Channel<int> a, b;
    std::optional<int> va, vb;
    spawn([&] {
      this_fiber::sleep_for(2ms);
      b.send(2);
    });
    EXPECT_EQ(select(a.recv_case(va), b.recv_case(vb)), 1u);
    EXPECT_EQ(vb, 2);
    EXPECT_EQ(va, std::nullopt);
  });
}

// Go's rule: of the cases ready at once, each is as likely to win, so a
// busy channel does not starve the others (a fixed order did: case 0 won
// every time). Counts out of 1000; a fair choice gives about 500 (or 333),
// with a standard deviation of about 16.
TEST_F(ChannelTest, SelectChoosesAmongReadyCasesAtRandom) {
  run([] {
    Channel<int> a(1), b(1), idle;
    std::optional<int> va, vb, vi;
    int wins[3] = {};
    for (int i = 0; i < 1000; ++i) {
      if (a.size() == 0) a.send(1);
      if (b.size() == 0) b.send(2);
      ++wins[select(a.recv_case(va), idle.recv_case(vi), b.recv_case(vb))];
    }
    EXPECT_EQ(wins[1], 0);
    EXPECT_GT(wins[0], 350);
    EXPECT_GT(wins[2], 350);
    (void)a.try_recv();
    (void)b.try_recv();
    Channel<int> c(1);  // a holds a value, b and c have room: all three ready
    int send_wins[3] = {};
    for (int i = 0; i < 999; ++i) {
      if (a.size() == 0) a.send(1);
      const std::size_t won = select(a.recv_case(va), b.send_case(3), c.send_case(4));
      ++send_wins[won];
      if (won == 1) (void)b.try_recv();
      if (won == 2) (void)c.try_recv();
    }
    for (int w : send_wins) EXPECT_GT(w, 200);
  });
}

TEST_F(ChannelTest, SelectSendAndRecvTogether) {
  run([] {
    Channel<int> in, out(1);
    std::optional<int> v;
    EXPECT_EQ(select(in.recv_case(v), out.send_case(9)), 1u);  // out has room
    EXPECT_EQ(out.try_recv(), 9);
  });
}

TEST_F(ChannelTest, SelectWithTimeout) {
  run([] {
    Channel<int> a;
    std::optional<int> v;
    const TimePoint start = Clock::now();
    EXPECT_EQ(select_for(20ms, a.recv_case(v)), std::nullopt);
    EXPECT_GE(Clock::now() - start, 20ms);
    // A sender arriving later finds no stale receiver from the select.
    auto s = spawn([&] { a.send(3); });
    this_fiber::yield();
    EXPECT_FALSE(s.done());
    EXPECT_EQ(a.recv(), 3);
    s.join();
  });
  EXPECT_EQ(loop().stats().timers_pending, 0u);
}

TEST_F(ChannelTest, SelectCompletesExactlyOneCase) {
  run([] {
    Channel<int> a, b;
    std::optional<int> va, vb;
    auto chooser = spawn([&] { return select(a.recv_case(va), b.recv_case(vb)); });
    this_fiber::yield();
    auto sa = spawn([&] { a.send(1); });
    auto sb = spawn([&] { b.send(2); });
    EXPECT_EQ(chooser.join(), 0u);  // a's sender ran first
    EXPECT_EQ(va, 1);
    this_fiber::yield();
    EXPECT_FALSE(sb.done());  // b's value was not taken by the finished select
    EXPECT_EQ(b.recv(), 2);
    sa.join();
    sb.join();
  });
}

TEST_F(ChannelTest, SelectOnClosedChannels) {
  run([] {
    Channel<int> a;
    a.close();
    std::optional<int> v = 5;
    EXPECT_EQ(select(a.recv_case(v)), 0u);
    EXPECT_EQ(v, std::nullopt);
    EXPECT_THROW(select(a.send_case(1)), ChannelClosed);
  });
}

// A channel destroyed while a select of its loop is parked on it: the select
// wakes as from close() when that case wins, and in every case touches the
// freed channel no more (before, it read it again: ASan saw the use after
// free).
TEST_F(ChannelTest, ASelectOutlivesAChannelDestroyedUnderIt) {
  run([] {
    {  // the destroyed channel's case wins
      auto ch = std::make_unique<Channel<int>>();
      std::optional<int> v;
      auto t = spawn([&] { return select(ch->recv_case(v)); });
      this_fiber::yield();
      ch.reset();
      EXPECT_EQ(t.join(), 0u);
      EXPECT_FALSE(v.has_value());
    }
    {  // a send case on it wins, and throws ChannelClosed
      auto ch = std::make_unique<Channel<int>>();
      Channel<int> other;
      std::optional<int> v;
      auto t = spawn([&] { return select(other.recv_case(v), ch->send_case(1)); });
      this_fiber::yield();
      ch.reset();
      EXPECT_THROW(t.join(), ChannelClosed);
    }
    {  // another case has won, and the select has not run yet
      Channel<int> a;
      auto b = std::make_unique<Channel<int>>();
      std::optional<int> x, y;
      auto t = spawn([&] { return select(a.recv_case(x), b->recv_case(y)); });
      this_fiber::yield();
      a.send(7);  // hands 7 to the parked select
      b.reset();
      EXPECT_EQ(t.join(), 0u);
      EXPECT_EQ(x, 7);
      EXPECT_FALSE(y.has_value());
    }
  });
}

// A value whose copy throws (no move constructor), once, when armed.
struct Fragile {
  static inline int copies_until_throw = -1;  // -1: never
  int v;
  explicit Fragile(int value) : v(value) {}
  Fragile(const Fragile& other) : v(other.v) {
    if (copies_until_throw >= 0 && copies_until_throw-- == 0) throw std::bad_alloc();
  }
  Fragile& operator=(const Fragile&) = default;
};

// A hand-off whose value's move throws: both sides get the exception, the
// peer is not left claimed and parked for ever, and the channel stays
// whole (before: the peer hung, and a buffered ring lost count of a slot).
TEST_F(ChannelTest, AThrowingMoveInAHandOffReachesBothSidesAndKeepsTheChannelWhole) {
  run([] {
    {  // to a parked receiver
      Channel<Fragile> ch;
      auto r = spawn([&] { return ch.recv(); });
      this_fiber::yield();
      Fragile::copies_until_throw = 0;
      EXPECT_THROW(ch.send(Fragile(1)), std::bad_alloc);
      EXPECT_THROW(r.join(), std::bad_alloc);
    }
    {  // from a parked sender
      Channel<Fragile> ch;
      auto s = spawn([&] { ch.send(Fragile(2)); });
      this_fiber::yield();
      Fragile::copies_until_throw = 0;
      EXPECT_THROW((void)ch.recv(), std::bad_alloc);
      EXPECT_THROW(s.join(), std::bad_alloc);
    }
    {  // a buffered receive whose refill from a parked sender throws
      Channel<Fragile> ch(1);
      ch.send(Fragile(3));
      auto s = spawn([&] { ch.send(Fragile(4)); });
      this_fiber::yield();
      Fragile::copies_until_throw = 1;  // the take succeeds, the refill throws
      const std::optional<Fragile> got = ch.recv();
      ASSERT_TRUE(got.has_value());
      EXPECT_EQ(got->v, 3);
      EXPECT_THROW(s.join(), std::bad_alloc);
      EXPECT_EQ(ch.size(), 0u);
      ch.send(Fragile(5));
      EXPECT_EQ(ch.recv()->v, 5);
    }
    {  // to a parked select
      Channel<Fragile> ch;
      std::optional<Fragile> slot;
      auto t = spawn([&] { return select(ch.recv_case(slot)); });
      this_fiber::yield();
      Fragile::copies_until_throw = 0;
      EXPECT_THROW(ch.send(Fragile(6)), std::bad_alloc);
      EXPECT_THROW(t.join(), std::bad_alloc);
    }
    {  // a failed refill asks the next parked sender: first come, first served
      Channel<Fragile> ch(1);
      ch.send(Fragile(10));
      auto s1 = spawn([&] { ch.send(Fragile(11)); });
      auto s2 = spawn([&] { ch.send(Fragile(12)); });
      this_fiber::yield();              // both park, in that order
      Fragile::copies_until_throw = 1;  // the take succeeds, s1's refill throws
      EXPECT_EQ(ch.recv()->v, 10);
      EXPECT_THROW(s1.join(), std::bad_alloc);
      EXPECT_EQ(ch.size(), 1u);  // s2's value, moved in at once
      s2.join();
      EXPECT_EQ(ch.recv()->v, 12);
    }
    {  // the value is built once, in the optional returned: a second copy
       // would have thrown after the value had left the channel
      Channel<Fragile> ch(1);
      ch.send(Fragile(13));
      Fragile::copies_until_throw = 1;
      const std::optional<Fragile> got = ch.recv();
      ASSERT_TRUE(got.has_value());
      EXPECT_EQ(got->v, 13);
      EXPECT_EQ(Fragile::copies_until_throw, 0);  // one copy made: the second would throw
      Fragile::copies_until_throw = -1;
      ch.send(Fragile(14));
      Fragile::copies_until_throw = 1;
      const std::optional<Fragile> tried = ch.try_recv();
      ASSERT_TRUE(tried.has_value());
      EXPECT_EQ(tried->v, 14);
    }
    Fragile::copies_until_throw = -1;
  });
}

// A receiver interrupted (cancelled, not yet resumed) when its channel is
// destroyed: it throws Cancelled without touching the freed channel (ASan
// saw it take the channel's guard again).
TEST_F(ChannelTest, AnInterruptedWaiterOutlivesItsDestroyedChannel) {
  run([] {
    auto ch = std::make_unique<Channel<int>>();
    auto r = spawn([&] { return ch->recv(); });
    this_fiber::yield();
    r.cancel();  // ready, with the interrupt; it has not run yet
    ch.reset();
    EXPECT_THROW(r.join(), Cancelled);
  });
}

}  // namespace
}  // namespace fiberloop
