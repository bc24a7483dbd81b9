// OutboundBudget: the engine's bound on outstanding outbound work (count and
// bytes), its wait for room, and close().
#include "engine/outbound_budget.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <future>
#include <thread>
#include <vector>

#include "support/timing.hpp"

namespace gilmour::detail {
namespace {

using namespace std::chrono_literals;
using test::scaled;
using Clock = std::chrono::steady_clock;

TEST(OutboundBudget, CountAndBytesAreBounded) {
  OutboundBudget b(3, 100);
  EXPECT_TRUE(b.try_acquire(40));
  EXPECT_TRUE(b.try_acquire(40));
  EXPECT_FALSE(b.try_acquire(40));  // bytes
  EXPECT_TRUE(b.try_acquire(20));
  EXPECT_FALSE(b.try_acquire(0));  // count
  EXPECT_EQ(b.count(), 3);
  EXPECT_EQ(b.bytes(), 100);
  b.release(40);
  b.release(40);
  b.release(20);
  EXPECT_TRUE(b.try_acquire(500));  // alone, larger than the byte bound
  EXPECT_FALSE(b.try_acquire(1));
  b.release(500);
  EXPECT_EQ(b.count(), 0);
  EXPECT_EQ(b.bytes(), 0);
}

// A waiter whose bytes do not fit gives the count back under its own mutex:
// it must neither deadlock nor miss the release that makes room.
TEST(OutboundBudget, WaiterGetsRoomWhenReleasedAndGivesUpAtItsDeadline) {
  OutboundBudget b(10, 100);
  ASSERT_TRUE(b.try_acquire(60));
  auto t0 = Clock::now();
  EXPECT_FALSE(b.acquire_until(60, Clock::now() + 50ms));
  EXPECT_GE(Clock::now() - t0, 50ms);
  auto waiter = std::async(std::launch::async,
                           [&] { return b.acquire_until(60, Clock::now() + scaled(60s)); });
  EXPECT_EQ(waiter.wait_for(50ms), std::future_status::timeout);  // not yet
  b.release(60);
  EXPECT_TRUE(waiter.get());
  EXPECT_EQ(b.bytes(), 60);
}

TEST(OutboundBudget, CloseRefusesWaitersAtOnce) {
  OutboundBudget b(1, 100);
  ASSERT_TRUE(b.try_acquire(1));
  auto waiter = std::async(std::launch::async,
                           [&] { return b.acquire_until(1, Clock::now() + scaled(60s)); });
  b.close();
  ASSERT_EQ(waiter.wait_for(scaled(10s)), std::future_status::ready);
  EXPECT_FALSE(waiter.get());
  EXPECT_FALSE(b.acquire_until(1, Clock::now() + scaled(60s)));
  b.release(1);
  EXPECT_TRUE(b.try_acquire(1));  // taking without waiting still works
}

TEST(OutboundBudget, NeverExceedsItsBoundUnderContention) {
  constexpr std::int64_t kMax = 8;
  OutboundBudget b(kMax, 800);
  std::atomic<std::int64_t> seen_max{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20000; ++i) {
        std::size_t bytes = (i + t) % 3 == 0 ? 150 : 50;
        bool got =
            i % 2 == 0 ? b.try_acquire(bytes) : b.acquire_until(bytes, Clock::now() + scaled(10s));
        if (!got) continue;
        auto n = b.count();
        auto m = seen_max.load();
        while (n > m && !seen_max.compare_exchange_weak(m, n)) {
        }
        EXPECT_LE(b.bytes(), 800);
        b.release(bytes);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_LE(seen_max.load(), kMax);
  EXPECT_EQ(b.count(), 0);
  EXPECT_EQ(b.bytes(), 0);
}

// Waiters are woken at the low-water mark (half of both bounds): a waiter
// held by the count gets room once half the window is released, and a
// waiter held by the bytes once the bytes fall to half.
TEST(OutboundBudget, WaitersAreWokenAtTheLowWaterMark) {
  OutboundBudget b(8, 1000);
  for (int i = 0; i < 8; ++i) ASSERT_TRUE(b.try_acquire(10));
  auto waiter = std::async(std::launch::async,
                           [&] { return b.acquire_until(10, Clock::now() + scaled(60s)); });
  for (int i = 0; i < 4; ++i) b.release(10);  // 4 left: the low-water mark
  EXPECT_TRUE(waiter.get());
  EXPECT_EQ(b.count(), 5);

  OutboundBudget bytes(100, 1000);
  ASSERT_TRUE(bytes.try_acquire(600));
  ASSERT_TRUE(bytes.try_acquire(300));
  auto big = std::async(std::launch::async,
                        [&] { return bytes.acquire_until(400, Clock::now() + scaled(60s)); });
  bytes.release(600);  // 300 held: at most half, and 400 fits
  EXPECT_TRUE(big.get());
  EXPECT_EQ(bytes.bytes(), 700);
}

}  // namespace
}  // namespace gilmour::detail
