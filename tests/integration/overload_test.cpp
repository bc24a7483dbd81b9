// Inbound bounds, on every backend: each handler's queue limit (503 for a
// request over it, a dropped signal, both counted), ordered handlers bounded
// too, load-aware exclusion between two group members, and stop() answering
// what is still queued.
#include <gtest/gtest.h>

#include <future>
#include <memory>
#include <thread>

#include "support/backend_test.hpp"
#include "support/log_watch.hpp"

namespace gilmour::test {
namespace {

using OverloadTest = BackendTest;

/// A handler that blocks until released; the latches are shared because the
/// handler may outlive the test body (a stuck worker after stop()).
struct Blocker {
  std::shared_ptr<Latch> entered = std::make_shared<Latch>();
  std::shared_ptr<Latch> release = std::make_shared<Latch>();
  std::shared_ptr<Counter> runs = std::make_shared<Counter>();

  ReplyHandler reply() const {
    return [e = entered, r = release, n = runs](const Request&, Response& res) {
      e->open();
      r->wait(60s);
      n->add();
      res.set_data("done");
    };
  }
  SlotHandler slot() const {
    return [e = entered, r = release, n = runs](const Request&) {
      e->open();
      r->wait(60s);
      n->add();
    };
  }
};

/// One worker, so that one blocked invocation holds the whole engine.
EngineOptions one_worker() { return test_options().set_worker_threads(1); }

/// Requests `n` times; returns the futures.
std::vector<std::future<Message>> flood(Gilmour& client, const std::string& topic, int n) {
  std::vector<std::future<Message>> out;
  for (int i = 0; i < n; ++i) out.push_back(client.request(topic, i, {}));
  return out;
}

TEST_P(OverloadTest, RequestsOverTheQueueBoundAreAnswered503AtOnce) {
  for (bool ordered : {false, true}) {
    SCOPED_TRACE(ordered ? "ordered" : "pool");
    auto& server = started(one_worker());
    auto& client = started();
    auto topic = unique_topic(ordered ? "bounded.ordered" : "bounded");
    Blocker b;
    auto sub =
        server.reply_to(topic, b.reply(), HandlerOptions{}.set_max_pending(3).set_ordered(ordered));
    auto first = client.request(topic, 0, {});
    ASSERT_TRUE(b.entered->wait());
    // 1 running, 3 queued; the other 6 are refused without waiting for anyone.
    auto rest = flood(client, topic, 9);
    int refused = 0;
    for (int i = 3; i < 9; ++i) {
      ASSERT_EQ(rest[i].wait_for(scaled(10s)), std::future_status::ready) << i;
      auto m = rest[i].get();
      EXPECT_EQ(m.code(), 503) << i;
      EXPECT_NE(m.data().dump().find("overloaded"), std::string::npos) << m.data().dump();
      ++refused;
    }
    EXPECT_EQ(server.stats().slow_consumer_dropped, 6u);
    b.release->open();
    EXPECT_EQ(first.get().code(), 200);
    for (int i = 0; i < 3; ++i) EXPECT_EQ(rest[i].get().code(), 200) << i;
    EXPECT_EQ(b.runs->value(), 4u);
    // The bound frees up as the queue drains: the next request runs.
    EXPECT_EQ(client.request(topic, 10, {}).get().code(), 200);
    EXPECT_EQ(refused, 6);
  }
}

TEST_P(OverloadTest, ByteBoundRefusesRequests) {
  auto& server = started(one_worker());
  auto& client = started();
  auto topic = unique_topic("bytes");
  Blocker b;
  // Accepted while below the bound: one queued message fills it.
  auto sub = server.reply_to(topic, b.reply(), HandlerOptions{}.set_max_pending_bytes(1));
  auto first = client.request(topic, 0, {});
  ASSERT_TRUE(b.entered->wait());
  auto rest = flood(client, topic, 3);
  EXPECT_EQ(rest[1].get().code(), 503);
  EXPECT_EQ(rest[2].get().code(), 503);
  EXPECT_EQ(server.stats().slow_consumer_dropped, 2u);
  b.release->open();
  EXPECT_EQ(first.get().code(), 200);
  EXPECT_EQ(rest[0].get().code(), 200);
}

TEST_P(OverloadTest, SignalsOverTheQueueBoundAreDroppedAndCounted) {
  for (bool ordered : {false, true}) {
    SCOPED_TRACE(ordered ? "ordered" : "pool");
    auto [log, logger] = LogWatch::make("overload");
    auto& server = started(one_worker().set_logger(logger));
    auto& sender = started();
    auto topic = unique_topic(ordered ? "slow.ordered" : "slow");
    Blocker b;
    auto sub =
        server.slot(topic, b.slot(), HandlerOptions{}.set_max_pending(3).set_ordered(ordered));
    sender.signal(topic, 0);
    ASSERT_TRUE(b.entered->wait());
    for (int i = 1; i <= 10; ++i) sender.signal(topic, i);
    ASSERT_TRUE(eventually([&] {
      auto s = server.stats();
      return s.signals_received + s.slow_consumer_dropped == 11;
    }));
    auto s = server.stats();
    EXPECT_EQ(s.signals_received, 4u);  // 1 running + 3 queued
    EXPECT_EQ(s.slow_consumer_dropped, 7u);
    // Warned about, naming the topic, but not once per drop.
    auto warned = log->count("slot for " + topic + " is a slow consumer");
    EXPECT_GE(warned, 1u);
    EXPECT_LT(warned, 7u);
    b.release->open();
    ASSERT_TRUE(b.runs->wait_for(4));
    // Room again: the next signal runs.
    sender.signal(topic, 11);
    ASSERT_TRUE(b.runs->wait_for(5));
  }
}

TEST_P(OverloadTest, FullGroupMemberLetsAPeerTakeTheWork) {
  // A is stuck with a full queue; B is free. Every request beyond what A
  // holds goes to B, none is refused, and each is handled exactly once.
  // (Without load-awareness A wins about half the locks and answers 503.)
  auto& a = started(one_worker().set_saturated_lock_delay(scaled(2s)));
  auto& b = started();
  auto& client = started();
  auto topic = unique_topic("group");
  auto group = HandlerOptions{}.set_group("workers");
  Blocker blocked;
  Counter b_runs;
  auto sub_a = a.reply_to(topic, blocked.reply(), HandlerOptions(group).set_max_pending(2));
  auto sub_b = b.reply_to(
      topic,
      [&](const Request& r, Response& res) {
        b_runs.add();
        res.set_data(r.data<int>());
      },
      group);
  // Fill A, one request at a time (both compete for each lock while A has
  // room): until A runs one and holds two queued.
  std::vector<std::future<Message>> held;  // A's, answered once it is released
  std::size_t sent = 0;
  while (a.stats().requests_handled < 3) {
    ASSERT_LT(sent, 1000u) << "A never filled up";
    auto before = a.stats().requests_handled;
    auto f = client.request(topic, static_cast<int>(sent++), {});
    ASSERT_TRUE(eventually([&] {
      return f.wait_for(0s) == std::future_status::ready || a.stats().requests_handled > before;
    }));
    if (a.stats().requests_handled > before) {
      held.push_back(std::move(f));
    } else {
      EXPECT_EQ(f.get().code(), 200);
    }
  }
  ASSERT_TRUE(blocked.entered->wait());
  // A is full: a burst goes to B alone, answered while A is still stuck.
  const auto b_before = b_runs.value();
  auto burst = flood(client, topic, 30);
  sent += burst.size();
  for (auto& f : burst) {
    ASSERT_EQ(f.wait_for(scaled(10s)), std::future_status::ready);
    EXPECT_EQ(f.get().code(), 200);
  }
  EXPECT_EQ(b_runs.value() - b_before, 30u);
  EXPECT_EQ(a.stats().requests_handled, 3u);
  // A saw each of them full and delayed its lock attempt (perhaps after B
  // had answered: its I/O thread may be behind).
  EXPECT_TRUE(eventually([&] { return a.stats().lock_deferred >= 30; }));
  EXPECT_EQ(a.stats().slow_consumer_dropped, 0u);
  blocked.release->open();
  for (auto& f : held) EXPECT_EQ(f.get().code(), 200);
  // Exactly once: every request ran once, and no second answer came back.
  EXPECT_EQ(blocked.runs->value() + b_runs.value(), sent);
  EXPECT_EQ(client.stats().stray_responses, 0u);
}

TEST_P(OverloadTest, StopAnswersQueuedRequestsAndCountsQueuedSignals) {
  auto [log, logger] = LogWatch::make("stop");
  auto& server = started(one_worker().set_logger(logger));
  auto& client = started();
  auto topic = unique_topic("backlog");
  Blocker b;
  Counter slot_runs;
  auto reply = server.reply_to(topic, b.reply());
  auto slot = server.slot(topic + ".sig", [&](const Request&) { slot_runs.add(); });
  // The running request's answer is lost with the stuck handler: it times out.
  auto first = client.request(topic, 0, RequestOptions{}.set_timeout(scaled(1s)));
  ASSERT_TRUE(b.entered->wait());
  auto queued = flood(client, topic, 20);
  for (int i = 0; i < 10; ++i) client.signal(topic + ".sig", i);
  ASSERT_TRUE(eventually([&] {
    auto s = server.stats();
    return s.requests_handled == 21 && s.signals_received == 10;
  }));
  EXPECT_FALSE(server.stop(100ms));  // the stuck handler outlives the drain
  for (auto& f : queued) {
    ASSERT_EQ(f.wait_for(scaled(5s)), std::future_status::ready);
    auto m = f.get();
    EXPECT_EQ(m.code(), 503);
    EXPECT_NE(m.data().dump().find("shutting down"), std::string::npos) << m.data().dump();
  }
  auto s = server.stats();
  EXPECT_EQ(s.requests_refused_at_stop, 20u);
  EXPECT_EQ(s.inbound_dropped_at_stop, 10u);
  EXPECT_EQ(log->count("20 queued requests answered 503"), 1u);
  EXPECT_EQ(log->count("10 queued slot invocations dropped"), 1u);
  b.release->open();
  EXPECT_EQ(first.get().code(), 499);
  ASSERT_TRUE(b.runs->wait_for(1));
  EXPECT_EQ(slot_runs.value(), 0u);
  EXPECT_EQ(client.stats().stray_responses, 0u);  // one answer each
}

TEST_P(OverloadTest, BadBoundsAreRejected) {
  expect_invalid_engine_options(
      *world_, {test_options().set_max_pending(0), test_options().set_max_pending_bytes(0),
                test_options().set_saturated_lock_delay(-1ms)});
}

INSTANTIATE_TEST_SUITE_P(Backends, OverloadTest, ::testing::ValuesIn(backend_kinds()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace gilmour::test
