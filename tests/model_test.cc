// The model-based scheduler test: random programs of spawn / yield / sleep /
// cancel / join / Event / Channel operations run on fiberloop and on a
// reference model of the README's semantics (tests/model), and every event
// must happen in the same order on both. Seeded and reproducible:
//   FIBERLOOP_MODEL_SEEDS=100000 FIBERLOOP_MODEL_FIRST_SEED=7 bazel-bin/tests/model_test
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <map>
#include <string>

#include "tests/model/interpret.h"
#include "tests/model/program.h"
#include "tests/model/reference.h"

namespace fiberloop::model {
namespace {

std::uint64_t env_or(const char* name, std::uint64_t fallback) {
  const char* v = std::getenv(name);
  return v != nullptr ? std::strtoull(v, nullptr, 10) : fallback;
}

Program parse(std::initializer_list<std::initializer_list<Op>> scripts) {
  Program p;
  for (const auto& s : scripts) p.scripts.emplace_back(s);
  return p;
}

constexpr auto Y = OpKind::kYield;
constexpr auto Spawn = OpKind::kSpawn;

// Hand-written programs with their expected traces spelled out: these hold
// the model (and fiberloop) to the README's semantics directly.
TEST(Model, SpawnDoesNotSwitchAndYieldIsRoundRobin) {
  // f0 spawns two fibers (no switch), then yields twice: each yield lets f1
  // and f2 run once, in spawn order. A line is recorded when its op returns.
  const Program p = parse({{{Spawn, 1}, {Spawn, 1}, {Y, 0}, {Y, 0}}, {{Y, 0}}});
  const Trace expected = {"f0.0 spawn f1",   "f0.1 spawn f2",    "f0.2 yield",
                          "f1.0 yield",      "f1.1 end",         "f2.0 yield",
                          "f2.1 end",        "f0.3 yield",       "f0.4 end",
                          "-- run returned", "-- tasks dropped", "-- loop destroyed"};
  EXPECT_EQ(run_reference(p), expected);
  EXPECT_EQ(run_on_fiberloop(p), expected);
}

TEST(Model, CancelWakesAParkedFiberAtOnceAndJoinSeesCancelled) {
  // f1 waits on an event nobody sets; f0 cancels it, then joins it: the
  // join rethrows Cancelled, which ends f0 too.
  const Program p = parse(
      {{{Spawn, 1}, {Y, 0}, {OpKind::kCancel, 0}, {OpKind::kJoin, 0}}, {{OpKind::kEventWait, 0}}});
  const Trace expected = {"f0.0 spawn f1",    "f0.1 yield",       "f0.2 cancel f1",
                          "f1.0 cancelled",   "f0.3 cancelled",   "-- run returned",
                          "-- tasks dropped", "-- loop destroyed"};
  EXPECT_EQ(run_reference(p), expected);
  EXPECT_EQ(run_on_fiberloop(p), expected);
}

TEST(Model, UnbufferedChannelIsARendezvousAndCloseWakesTheRest) {
  // f0 parks in recv; f1's send hands its value over and f1 goes on; f2's
  // send parks; f0 gets the value and closes; f2's send fails.
  const Program p = parse(
      {{{Spawn, 1}, {Spawn, 1}, {OpKind::kRecv, 0}, {OpKind::kClose, 0}}, {{OpKind::kSend, 0}}});
  const Trace expected = {"f0.0 spawn f1",   "f0.1 spawn f2",      "f1.0 send 0 100",
                          "f1.1 end",        "f0.2 recv 0 100",    "f0.3 close 0",
                          "f0.4 end",        "f2.0 send 0 closed", "f2.1 end",
                          "-- run returned", "-- tasks dropped",   "-- loop destroyed"};
  EXPECT_EQ(run_reference(p), expected);
  EXPECT_EQ(run_on_fiberloop(p), expected);
}

TEST(Model, ShutdownCancelsWhatIsLeftInSpawnOrderAndReportsUnjoinedFailures) {
  // f0 yields: f1 parks in recv, f2 throws; f0 parks on an event: nothing can go on.
  // Dropping the Tasks reports f2's failure; the loop's end cancels f0 and
  // f1, in spawn order.
  const Program p = parse({{{Spawn, 1}, {Spawn, 2}, {Y, 0}, {OpKind::kEventWait, 1}},
                           {{OpKind::kRecv, 1}},
                           {{OpKind::kThrow, 0}}});
  const Trace expected = {
      "f0.0 spawn f1", "f0.1 spawn f2",    "f2.0 threw",     "f0.2 yield",     "-- run returned",
      "report f2",     "-- tasks dropped", "f0.3 cancelled", "f1.0 cancelled", "-- loop destroyed"};
  EXPECT_EQ(run_reference(p), expected);
  EXPECT_EQ(run_on_fiberloop(p), expected);
}

TEST(Model, EncodedProgramsDecodeToThemselves) {
  for (std::uint64_t seed = 0; seed < 200; ++seed) {
    const Program p = random_program(seed);
    const std::vector<std::uint8_t> bytes = encode_program(p);
    EXPECT_EQ(to_string(decode_program(bytes.data(), bytes.size())), to_string(p)) << seed;
  }
}

// The main event: thousands of random programs, each on a fresh Loop. Also
// checks that the programs reach the interesting corners (cancelled waits,
// closed channels, double joins, reports, the fiber cap), so a generator
// that drifted into trivia would fail here.
// ThreadSanitizer keeps shadow state per fiber and per loop: a seed costs
// about 13 ms under it, against 0.1 ms plain, so its runs take 4000 seeds.
#if defined(__SANITIZE_THREAD__)
constexpr std::uint64_t kDefaultSeeds = 4000;
#else
constexpr std::uint64_t kDefaultSeeds = 20000;
#endif

TEST(Model, RandomProgramsMatchTheReferenceModel) {
  const std::uint64_t first = env_or("FIBERLOOP_MODEL_FIRST_SEED", 1);
  const std::uint64_t seeds = env_or("FIBERLOOP_MODEL_SEEDS", kDefaultSeeds);
  std::map<std::string, int> seen;
  for (std::uint64_t seed = first; seed < first + seeds; ++seed) {
    const Program p = random_program(seed);
    const Trace actual = run_on_fiberloop(p);
    const Trace expected = run_reference(p);
    if (actual != expected) {
      FAIL() << "seed " << seed << " (rerun: FIBERLOOP_MODEL_FIRST_SEED=" << seed
             << " FIBERLOOP_MODEL_SEEDS=1)\n"
             << compare_with_reference(p);
    }
    for (const std::string& line : actual) {
      for (const char* what : {"cancelled", "recv 0 closed", "send 1 closed", "twice", "threw",
                               "report", "spawn skipped", "sleep", "event.wait", "recv 1 1"}) {
        if (line.find(what) != std::string::npos) ++seen[what];
      }
    }
  }
  std::printf("%llu seeds from %llu: all match the model\n", static_cast<unsigned long long>(seeds),
              static_cast<unsigned long long>(first));
  if (seeds >= 1000) {
    for (const char* what : {"cancelled", "recv 0 closed", "send 1 closed", "twice", "threw",
                             "report", "spawn skipped", "sleep", "event.wait", "recv 1 1"}) {
      EXPECT_GT(seen[what], 0) << "no program reached '" << what << "'";
    }
  }
}

}  // namespace
}  // namespace fiberloop::model
