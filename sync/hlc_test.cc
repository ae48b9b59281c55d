#include "fieldsync/sync/hlc.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>

#include "tests/testing/status_matchers.h"

namespace fieldsync::sync {
namespace {

using ::fieldsync::testing::StatusIs;
using ::testing::HasSubstr;

constexpr int64_t kT0 = 1'732'780'000'000;  // 2024-11-28
constexpr int64_t kYearMs = 365LL * 24 * 3600 * 1000;

Hlc At(int64_t wall_ms, uint32_t counter, std::string node) {
  Hlc h;
  h.wall_ms = wall_ms;
  h.counter = counter;
  h.node = std::move(node);
  return h;
}

TEST(Hlc, FollowsPhysicalTime) {
  int64_t physical = kT0;
  HlcClock clock("dev-1", [&] { return physical; });
  Hlc a = clock.Now();
  EXPECT_EQ(a.wall_ms, kT0);
  EXPECT_EQ(a.counter, 0u);
  EXPECT_EQ(a.node, "dev-1");
  Hlc b = clock.Now();  // same millisecond: the counter orders them
  EXPECT_EQ(b.wall_ms, kT0);
  EXPECT_EQ(b.counter, 1u);
  physical += 5;
  Hlc c = clock.Now();
  EXPECT_EQ(c.wall_ms, kT0 + 5);
  EXPECT_EQ(c.counter, 0u);
  EXPECT_EQ(clock.last(), c);
}

TEST(Hlc, MonotonicWhenThePhysicalClockGoesBackwards) {
  int64_t physical = kT0;
  HlcClock clock("dev-1", [&] { return physical; });
  Hlc prev = clock.Now();
  std::mt19937_64 rng(7);
  for (int i = 0; i < 10000; ++i) {
    // Mostly forward, sometimes a jump back by up to a day (NTP step, battery swap).
    physical += rng() % 10 == 0 ? -static_cast<int64_t>(rng() % 86'400'000) : rng() % 50;
    Hlc next = clock.Now();
    ASSERT_LT(prev, next) << prev.Encode() << " then " << next.Encode();
    prev = next;
  }
}

TEST(Hlc, ObserveOfAFarFutureRemote) {
  int64_t physical = kT0;
  HlcClock clock("dev-1", [&] { return physical; });
  clock.Now();
  Hlc remote = At(kT0 + kYearMs, 42, "server");
  clock.Observe(remote);
  EXPECT_LT(remote, clock.last());
  Hlc next = clock.Now();
  EXPECT_LT(remote, next);
  EXPECT_EQ(next.wall_ms, remote.wall_ms);  // stays on the remote's time until physical catches up
  EXPECT_EQ(next.node, "dev-1");
  physical = kT0 + kYearMs + 1000;
  EXPECT_EQ(clock.Now().wall_ms, kT0 + kYearMs + 1000);
}

TEST(Hlc, ObserveOfAPastRemoteKeepsPhysicalTime) {
  int64_t physical = kT0;
  HlcClock clock("dev-1", [&] { return physical; });
  clock.Observe(At(kT0 - 10'000, 7, "server"));
  EXPECT_EQ(clock.last().wall_ms, kT0);
  EXPECT_EQ(clock.last().counter, 0u);
}

TEST(Hlc, ObserveOfSameMillisecondTakesTheHigherCounter) {
  int64_t physical = kT0;
  HlcClock clock("dev-1", [&] { return physical; });
  clock.Now();
  clock.Observe(At(kT0, 500, "dev-2"));
  EXPECT_EQ(clock.last().wall_ms, kT0);
  EXPECT_EQ(clock.last().counter, 501u);
}

TEST(Hlc, CounterOverflowBorrowsTheNextMillisecond) {
  HlcClock clock("dev-1", [] { return kT0; });  // a stuck clock
  clock.Observe(At(kT0, 99'998, "server"));     // last = (kT0, 99999)
  EXPECT_EQ(clock.last().counter, 99'999u);
  Hlc next = clock.Now();
  EXPECT_EQ(next.wall_ms, kT0 + 1);
  EXPECT_EQ(next.counter, 0u);
  EXPECT_OK(Hlc::Decode(next.Encode()));

  clock.Observe(At(kT0 + 1, 99'999, "server"));
  EXPECT_EQ(clock.last().wall_ms, kT0 + 2);
  EXPECT_EQ(clock.last().counter, 0u);
}

TEST(Hlc, NegativePhysicalClockIsClampedToTheEpoch) {
  HlcClock clock("dev-1", [] { return int64_t{-5000}; });
  Hlc a = clock.Now();
  EXPECT_EQ(a.wall_ms, 0);
  EXPECT_LT(a, clock.Now());
  EXPECT_OK(Hlc::Decode(a.Encode()));
}

TEST(Hlc, OffsetCorrectsTheDeviceClock) {
  HlcClock clock("dev-1", [] { return kT0 - kYearMs; });  // a year behind
  clock.set_offset_ms(kYearMs);
  EXPECT_EQ(clock.offset_ms(), kYearMs);
  EXPECT_EQ(clock.Now().wall_ms, kT0);
}

TEST(Hlc, RestoreResumesAfterTheLastTimestamp) {
  HlcClock clock("dev-1", [] { return kT0 - 1000; });  // restarted with a clock that went back
  clock.Restore(At(kT0, 3, "dev-1"));
  Hlc next = clock.Now();
  EXPECT_EQ(next, At(kT0, 4, "dev-1"));
  clock.Restore(At(kT0 - 50'000, 0, "dev-1"));  // an older value never moves the clock back
  EXPECT_LT(next, clock.Now());
}

TEST(Hlc, EncodeFormat) {
  EXPECT_EQ(At(kT0, 0, "device-7").Encode(), "0001732780000000.00000.device-7");
  EXPECT_EQ(At(5, 12345, "server").Encode(), "0000000000000005.12345.server");
  EXPECT_EQ(At(9'999'999'999'999'999, 99'999, "x").Encode(), "9999999999999999.99999.x");
}

TEST(Hlc, EncodeDecodeRoundTripAndByteOrderIsHlcOrder) {
  std::mt19937_64 rng(42);
  const std::vector<std::string> nodes = {
      "a", "b", "dev-1", "dev-10", "dev-2", "server", "Z", "\xc3\xa9t\xc3\xa9", "\x7f"};
  auto random_hlc = [&] {
    // Few distinct walls and counters, so that ties on the first parts are common.
    return At(kT0 + static_cast<int64_t>(rng() % 4) * (rng() % 2 ? 1 : 1'000'000'000),
              static_cast<uint32_t>(rng() % 3 == 0 ? 99'999 : rng() % 12),
              nodes[rng() % nodes.size()]);
  };
  for (int i = 0; i < 20000; ++i) {
    Hlc a = random_hlc(), b = random_hlc();
    ASSERT_OK_AND_ASSIGN(Hlc decoded, Hlc::Decode(a.Encode()));
    ASSERT_EQ(decoded, a) << a.Encode();
    EXPECT_EQ(a < b, a.Encode() < b.Encode()) << a.Encode() << " vs " << b.Encode();
    EXPECT_EQ(a == b, a.Encode() == b.Encode());
  }
}

TEST(Hlc, DecodeRejectsGarbageNamingThePath) {
  for (const char* bad : {
           "",
           "garbage",
           "0001732780000000.00000.",       // no node
           "0001732780000000.00000",        // no node part
           "1732780000000.00000.dev-1",     // short wall
           "0001732780000000.0000.dev-1",   // short counter
           "000173278000000x.00000.dev-1",  // not a digit
           "0001732780000000-00000-dev-1",  // wrong separators
           "0001732780000000.00000.dev.1",  // '.' in node
           "-001732780000000.00000.dev-1",  // sign
           "+001732780000000.00000.dev-1",
           " 001732780000000.00000.dev-1",
       }) {
    EXPECT_THAT(Hlc::Decode(bad, "changes[2].hlc"),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("changes[2].hlc: ")))
        << bad;
  }
  EXPECT_THAT(Hlc::Decode("nope"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("hlc: not an HLC timestamp")));
  EXPECT_THAT(Hlc::Decode("nope"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("got \"nope\"")));
}

TEST(Hlc, OrderIsWallThenCounterThenNode) {
  EXPECT_LT(At(1, 99, "z"), At(2, 0, "a"));
  EXPECT_LT(At(2, 0, "z"), At(2, 1, "a"));
  EXPECT_LT(At(2, 1, "a"), At(2, 1, "b"));
  EXPECT_FALSE(At(2, 1, "a") < At(2, 1, "a"));
  EXPECT_TRUE(Hlc().IsZero());
  EXPECT_FALSE(At(0, 0, "a").IsZero());
}

TEST(BoundSkew, AYearAheadIsClampedToServerTime) {
  Hlc claimed = At(kT0 + kYearMs, 17, "dev-1");
  EXPECT_EQ(BoundSkew(claimed, kT0, kDefaultMaxFutureMs), At(kT0, 0, "dev-1"));
}

TEST(BoundSkew, WithinTheBoundIsUnchanged) {
  Hlc at_bound = At(kT0 + kDefaultMaxFutureMs, 3, "dev-1");
  EXPECT_EQ(BoundSkew(at_bound, kT0, kDefaultMaxFutureMs), at_bound);
  Hlc just_over = At(kT0 + kDefaultMaxFutureMs + 1, 0, "dev-1");
  EXPECT_EQ(BoundSkew(just_over, kT0, kDefaultMaxFutureMs), At(kT0, 0, "dev-1"));
  Hlc now = At(kT0, 5, "dev-1");
  EXPECT_EQ(BoundSkew(now, kT0, kDefaultMaxFutureMs), now);
}

TEST(BoundSkew, BehindIsUnchanged) {
  Hlc behind = At(kT0 - kYearMs, 9, "dev-1");
  EXPECT_EQ(BoundSkew(behind, kT0, kDefaultMaxFutureMs), behind);
  EXPECT_EQ(BoundSkew(At(0, 0, "dev-1"), kT0, 0), At(0, 0, "dev-1"));
}

}  // namespace
}  // namespace fieldsync::sync
