// Backpressure on the way out and an honest stop(), on every backend: the
// bound on outstanding requests and signals (count and bytes), the fail-fast
// and blocking overflow policies, and stop() ending a large backlog within
// its drain deadline with every request answered once and every signal
// counted (issue 10: a request flood grew a requester to 4 GB and stop()
// took 66 s, dropping ~49k requests and signals without a number).
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <memory>
#include <thread>
#include <vector>

#include "support/backend_test.hpp"
#include "support/log_watch.hpp"

namespace gilmour::test {
namespace {

class BackpressureTest : public BackendTest {
 protected:
  /// Holds `g`'s I/O thread: an inline reply handler on a fresh topic, called
  /// by another engine, runs `hold()` there. Returns once the handler has
  /// entered, with the caller's future.
  std::future<Message> hold_io_thread(Gilmour& g, std::function<void()> hold) {
    auto topic = unique_topic("busy");
    auto entered = std::make_shared<Latch>();
    subs_.push_back(g.reply_to(
        topic,
        [entered, hold = std::move(hold)](const Request&, Response& res) {
          entered->open();
          hold();
          res.set_data("held");
        },
        HandlerOptions{}.set_inline_delivery()));
    auto busy = started().request(topic, 1);
    EXPECT_TRUE(entered->wait());
    return busy;
  }
};

bool contains(const Message& m, const std::string& needle) {
  return m.data().is_string() && m.data().get<std::string>().find(needle) != std::string::npos;
}

/// Per-request outcome slots: how often each completed and whether every
/// completion matched what the test expects.
class Outcomes {
 public:
  explicit Outcomes(std::size_t n) : calls_(n) {}
  void record(std::size_t i) {
    calls_[i].fetch_add(1);
    total_.add();
  }
  bool wait_all(std::chrono::milliseconds patience) {
    return total_.wait_for(calls_.size(), patience);
  }
  /// Requests completed other than exactly once.
  std::size_t not_once() const {
    std::size_t bad = 0;
    for (auto& c : calls_) bad += c.load() == 1 ? 0 : 1;
    return bad;
  }

 private:
  std::vector<std::atomic<int>> calls_;
  Counter total_;
};

// The flood, small and fast: several threads call request() without
// waiting, nobody answers. The engine takes exactly max_outstanding; the rest
// complete at once, on the calling thread, with 503 "overloaded", counted.
TEST_P(BackpressureTest, RequestFloodIsBoundedAndTheExcessFailsFast) {
  constexpr std::size_t kMax = 200;
  constexpr std::size_t kThreads = 4;
  constexpr std::size_t kEach = 1000;
  auto& g = started(test_options().set_max_outstanding(kMax).set_request_timeout(scaled(120s)));
  auto topic = unique_topic("flood");
  Outcomes outcomes(kThreads * kEach);
  std::atomic<std::size_t> refused{0};
  std::atomic<std::size_t> refused_elsewhere{0};
  std::atomic<std::size_t> shut_down{0};
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (std::size_t k = 0; k < kEach; ++k) {
        auto caller = std::this_thread::get_id();
        g.request(topic, k, [&, i = t * kEach + k, caller](Message m) {
          if (m.code() == code::kUnavailable && contains(m, "overloaded")) {
            ++refused;
            if (std::this_thread::get_id() != caller) ++refused_elsewhere;
          } else if (m.code() == code::kUnavailable && contains(m, "shutting down")) {
            ++shut_down;
          }
          outcomes.record(i);
        });
      }
    });
  }
  for (auto& th : threads) th.join();
  // Nobody answers and the timeout is far away: what was taken is still held.
  EXPECT_EQ(refused.load(), kThreads * kEach - kMax);
  EXPECT_EQ(refused_elsewhere.load(), 0u);  // refused inline, before request() returned
  auto s = g.stats();
  EXPECT_EQ(s.overloaded, kThreads * kEach - kMax);
  EXPECT_EQ(s.requests_sent, kMax);
  // stop() answers the held ones, once each.
  g.stop();
  ASSERT_TRUE(outcomes.wait_all(30s));
  EXPECT_EQ(outcomes.not_once(), 0u);
  EXPECT_EQ(shut_down.load(), kMax);
  EXPECT_EQ(g.stats().requests_failed_at_stop, kMax);
}

// Bytes bound too: payloads of ~1 KiB against a 4 KiB budget.
TEST_P(BackpressureTest, OutstandingBytesAreBounded) {
  auto& g =
      started(test_options().set_max_outstanding_bytes(4096).set_request_timeout(scaled(120s)));
  auto topic = unique_topic("bytes");
  std::string kib(1024, 'x');
  std::atomic<int> refused{0};
  for (int i = 0; i < 20; ++i) {
    g.request(topic, kib, [&](Message m) {
      if (contains(m, "overloaded")) ++refused;
    });
  }
  EXPECT_EQ(g.stats().requests_sent, 3u);  // 3 envelopes of > 1 KiB fit in 4 KiB, a 4th does not
  EXPECT_EQ(refused.load(), 17);
  // A message larger than the whole budget goes when it is alone.
  auto& lone =
      started(test_options().set_max_outstanding_bytes(100).set_request_timeout(scaled(120s)));
  std::atomic<int> lone_refused{0};
  for (int i = 0; i < 2; ++i) {
    lone.request(topic, kib, [&](Message m) {
      if (contains(m, "overloaded")) ++lone_refused;
    });
  }
  EXPECT_EQ(lone.stats().requests_sent, 1u);
  EXPECT_EQ(lone_refused.load(), 1);
}

// Signals are held from signal() until their publish is acknowledged; with
// the engine's I/O thread busy (an inline handler that waits), they pile up
// and the bound refuses the excess.
TEST_P(BackpressureTest, SignalFloodIsBoundedWhileTheIoThreadIsBusy) {
  constexpr std::size_t kMax = 100;
  auto& g = started(test_options().set_max_outstanding(kMax));
  auto release = std::make_shared<Latch>();
  auto reply = hold_io_thread(g, [release] { release->wait(60s); });
  std::atomic<int> overloaded{0};
  Counter results;
  for (std::size_t i = 0; i < 3 * kMax; ++i) {
    g.signal(unique_topic("sig"), 1, [&](const SignalResult& r) {
      if (r.overloaded()) ++overloaded;
      results.add();
    });
  }
  for (int i = 0; i < 50; ++i) g.signal(unique_topic("sig"), 1);  // fire and forget: counted
  EXPECT_EQ(overloaded.load(), static_cast<int>(2 * kMax));
  EXPECT_EQ(g.stats().overloaded, 2 * kMax + 50);
  release->open();
  EXPECT_EQ(reply.get().code(), 200);
  ASSERT_TRUE(results.wait_for(3 * kMax));
  // Room is back once they are published.
  std::promise<SignalResult> p;
  g.signal(unique_topic("sig"), 1, [&](const SignalResult& r) { p.set_value(r); });
  EXPECT_TRUE(p.get_future().get().ok());
}

// kBlock: a caller waits for room and then succeeds.
TEST_P(BackpressureTest, BlockingPolicyWaitsForRoomThenSends) {
  auto topic = unique_topic("block");
  auto& server = started();
  auto gate = std::make_shared<Latch>();
  subs_.push_back(server.reply_to(topic, [gate](const Request& r, Response& res) {
    if (r.data<int>() == 1) gate->wait(60s);
    res.set_data(r.data<int>());
  }));
  auto& client = started(test_options()
                             .set_max_outstanding(1)
                             .set_overflow_policy(OverflowPolicy::kBlock)
                             .set_overflow_block_timeout(scaled(60s)));
  auto first = client.request(topic, 1);
  auto second = std::async(std::launch::async, [&] { return client.request_sync(topic, 2); });
  // Not yet: it waits for the first to complete.
  EXPECT_EQ(second.wait_for(200ms), std::future_status::timeout);
  gate->open();
  EXPECT_EQ(first.get().code(), 200);
  auto m = second.get();
  EXPECT_EQ(m.code(), 200);
  EXPECT_EQ(m.data<int>(), 2);
  EXPECT_EQ(client.stats().overloaded, 0u);
}

// kBlock without room: refused as fail-fast after the block timeout; on the
// I/O thread (an inline handler) refused at once; at stop() refused with
// "shutting down".
TEST_P(BackpressureTest, BlockingPolicyGivesUpAfterItsTimeout) {
  auto& g = started(test_options()
                        .set_max_outstanding(1)
                        .set_request_timeout(scaled(120s))
                        .set_overflow_policy(OverflowPolicy::kBlock)
                        .set_overflow_block_timeout(300ms));
  auto held = g.request(unique_topic("nobody"), 1);  // never answered: holds the one place
  auto t0 = std::chrono::steady_clock::now();
  auto m = g.request_sync(unique_topic("nobody"), 2);
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(m.code(), code::kUnavailable);
  EXPECT_TRUE(contains(m, "overloaded")) << m.data();
  EXPECT_GE(took, 300ms);
  EXPECT_LT(took, scaled(10s));
  EXPECT_EQ(g.stats().overloaded, 1u);

  // An inline handler of this engine runs on its I/O thread: never blocks there.
  auto topic = unique_topic("inline");
  std::promise<std::pair<Message, std::chrono::steady_clock::duration>> inline_result;
  subs_.push_back(g.slot(
      topic,
      [&](const Request&) {
        auto t = std::chrono::steady_clock::now();
        g.request(unique_topic("nobody"), 3, [&, t](Message r) {
          inline_result.set_value({std::move(r), std::chrono::steady_clock::now() - t});
        });
      },
      HandlerOptions{}.set_inline_delivery()));
  started().signal(topic, 1);
  auto [r, inline_took] = inline_result.get_future().get();
  EXPECT_TRUE(contains(r, "overloaded")) << r.data();
  EXPECT_LT(inline_took, 300ms);  // not the block timeout
}

TEST_P(BackpressureTest, StopRefusesCallersBlockedForRoom) {
  auto& g = started(test_options()
                        .set_max_outstanding(1)
                        .set_request_timeout(scaled(120s))
                        .set_overflow_policy(OverflowPolicy::kBlock)
                        .set_overflow_block_timeout(scaled(120s)));
  auto held = g.request(unique_topic("nobody"), 1);
  auto blocked =
      std::async(std::launch::async, [&] { return g.request_sync(unique_topic("nobody"), 2); });
  EXPECT_EQ(blocked.wait_for(200ms), std::future_status::timeout);  // not yet: blocked
  g.stop();
  ASSERT_EQ(blocked.wait_for(scaled(10s)), std::future_status::ready);
  auto m = blocked.get();
  EXPECT_EQ(m.code(), code::kUnavailable);
  EXPECT_TRUE(contains(m, "shutting down")) << m.data();
  EXPECT_TRUE(contains(held.get(), "shutting down"));
  EXPECT_EQ(g.stats().overloaded, 0u);
}

// stop() with a backlog of 100k requests and 20k signals queued behind a busy
// I/O thread that stays busy past the drain deadline: it returns within the
// deadline plus a short close; every request completes once with 503
// "shutting down"; every signal is published or counted as dropped, and
// the numbers are logged once.
TEST_P(BackpressureTest, StopEndsALargeBacklogWithinItsDrainDeadline) {
  constexpr std::size_t kRequests = 100000;
  constexpr std::size_t kSignals = 20000;
  constexpr auto kDrain = 2s;
  auto [log, logger] = LogWatch::make("backlog");
  auto& g = started(test_options()
                        .set_max_outstanding(2 * (kRequests + kSignals))
                        .set_max_outstanding_bytes(std::size_t{1} << 30)
                        .set_request_timeout(scaled(600s))
                        .set_logger(logger));
  // The I/O thread is held until stop() has passed its deadline.
  auto busy =
      hold_io_thread(g, [log = log] { log->wait_for("after the drain deadline", 1, 120s); });

  Outcomes requests(kRequests);
  std::atomic<std::size_t> shut_down{0};
  std::vector<std::thread> threads;
  constexpr std::size_t kThreads = 4;
  for (std::size_t t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (std::size_t i = t; i < kRequests; i += kThreads) {
        g.request(unique_topic("nobody"), 1, [&, i](Message m) {
          if (m.code() == code::kUnavailable && contains(m, "shutting down")) ++shut_down;
          requests.record(i);
        });
      }
    });
  }
  for (auto& th : threads) th.join();
  Counter signal_results;
  std::atomic<std::size_t> signals_ok{0};
  for (std::size_t i = 0; i < kSignals; ++i) {
    g.signal(unique_topic("sig"), 1, [&](const SignalResult& r) {
      if (r.ok()) ++signals_ok;
      signal_results.add();
    });
  }
  EXPECT_EQ(g.stats().overloaded, 0u);

  auto t0 = std::chrono::steady_clock::now();
  g.stop(kDrain);
  auto took = std::chrono::steady_clock::now() - t0;
  // Before: 19-66 s against a 5-10 s drain. After the deadline the I/O
  // thread still hands 120k completions to the workers (about 0.5 s on an
  // idle core, several seconds on a loaded 2-core box): the bound is loose.
  EXPECT_LT(took, kDrain + scaled(8s));
  RecordProperty(
      "stop_ms",
      static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(took).count()));

  ASSERT_TRUE(requests.wait_all(60s));
  EXPECT_EQ(requests.not_once(), 0u);
  EXPECT_EQ(shut_down.load(), kRequests);
  ASSERT_TRUE(signal_results.wait_for(kSignals, 60s));
  auto s = g.stats();
  EXPECT_EQ(s.requests_failed_at_stop, kRequests);
  EXPECT_GT(s.signals_dropped_at_stop, 0u);
  EXPECT_EQ(s.signals_dropped_at_stop + signals_ok.load(), kSignals);
  EXPECT_EQ(log->count("outstanding requests completed with 503 shutting down"), 1u);
  busy.wait();
}

// A fire-and-forget signal that stop() ends unpublished is counted too.
TEST_P(BackpressureTest, FireAndForgetSignalsEndedByStopAreCounted) {
  auto [log, logger] = LogWatch::make("signals");
  auto& g = started(test_options().set_logger(logger));
  // The I/O thread is held until stop() has passed its deadline.
  auto busy =
      hold_io_thread(g, [log = log] { log->wait_for("after the drain deadline", 1, 120s); });
  for (int i = 0; i < 500; ++i) g.signal(unique_topic("sig"), i);
  g.stop(100ms);
  EXPECT_EQ(g.stats().signals_dropped_at_stop, 500u);
  EXPECT_EQ(log->count("500 signals not published"), 1u);
  busy.wait();
}

TEST(BackpressureOptions, BoundsMustBePositive) {
  auto world = make_world("inproc", nullptr);
  ASSERT_TRUE(world);
  expect_invalid_engine_options(
      *world, {test_options().set_max_outstanding(0), test_options().set_max_outstanding_bytes(0),
               test_options().set_overflow_block_timeout(-1ms)});
}

INSTANTIATE_TEST_SUITE_P(Backends, BackpressureTest, ::testing::ValuesIn(backend_kinds()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace gilmour::test
