// Deadlines that travel, on every backend: the requester's budget reaches the
// replier (which drops requests whose requester gave up), handlers read
// their remaining time and trace id, and requests made inside a handler
// inherit both. Wire bytes: redis_wire_test.cpp and the codec unit tests.
#include <gtest/gtest.h>

#include <atomic>
#include <future>

#include "support/backend_test.hpp"
#include "support/timing.hpp"

namespace gilmour::test {
namespace {

using DeadlineTest = BackendTest;
using json = nlohmann::json;

// The tester's flood, small: one worker, slow handlers, clients that give up
// early. Only requests whose requester still waits are run; the others are
// dropped unrun and unanswered, and counted.
TEST_P(DeadlineTest, FloodOfRequestsWhoseClientsGaveUpIsDroppedNotRun) {
  auto o = test_options();
  o.worker_threads = 1;
  auto& server = started(o);
  auto& client = started();
  auto topic = unique_topic("flood");
  std::atomic<int> ran{0};
  auto sub = server.reply_to(topic, [&](const Request&, Response& res) {
    ++ran;
    let_time_pass(50ms);  // the handler's work
    res.set_data(1);
  });
  constexpr int kRequests = 60;
  std::vector<std::future<Message>> fs;
  for (int i = 0; i < kRequests; ++i) {
    fs.push_back(client.request(topic, i, RequestOptions{}.set_timeout(scaled(300ms))));
  }
  int ok = 0;
  for (auto& f : fs) {
    auto m = f.get();
    if (m.ok()) ++ok;
    EXPECT_TRUE(m.ok() || m.timed_out()) << m.code();
  }
  // Every request is accounted for on the server: run, or dropped unrun.
  ASSERT_TRUE(eventually([&] { return ran + server.stats().expired_dropped == kRequests; }))
      << "ran " << ran << ", dropped " << server.stats().expired_dropped;
  auto dropped = server.stats().expired_dropped;
  EXPECT_GT(dropped, 0u);
  EXPECT_LT(ran, kRequests);
  // A handler starts only while its requester waits: the ones that ran
  // answered in time, but for the few that started just before the end.
  EXPECT_LE(ran, ok + 3) << "ok " << ok;
  EXPECT_EQ(server.stats().requests_handled, static_cast<std::uint64_t>(kRequests));
  // Nothing was answered for the dropped ones (no stray 499s, no records).
  EXPECT_LE(server.stats().responses_sent, static_cast<std::uint64_t>(ran));
}

TEST_P(DeadlineTest, HandlerSeesItsBudgetShrinkAndTheRequestersTraceId) {
  auto& server = started();
  auto& client = started();
  auto topic = unique_topic("budget");
  auto sub = server.reply_to(topic, [](const Request& r, Response& res) {
    auto first = r.remaining();
    let_time_pass(20ms);  // time passing
    auto second = r.remaining();
    res.set_data(json{{"first", first.count()},
                      {"second", second.count()},
                      {"trace", r.trace_id()},
                      {"sender", r.sender()},
                      {"deadline_ok", r.deadline() > std::chrono::steady_clock::now()}});
  });
  auto budget = scaled(5s);
  auto m = client.request_sync(topic, 1, RequestOptions{}.set_timeout(budget));
  ASSERT_EQ(m.code(), 200) << m.error_text();
  auto d = m.data();
  EXPECT_GT(d["first"].get<std::int64_t>(), 0);
  EXPECT_LE(d["first"].get<std::int64_t>(), budget.count());  // the requester's, not 600 s
  EXPECT_GE(d["first"].get<std::int64_t>() - d["second"].get<std::int64_t>(), 19);
  EXPECT_TRUE(d["deadline_ok"].get<bool>());
  EXPECT_EQ(d["trace"], d["sender"]);  // a request outside a handler starts its trace
  EXPECT_EQ(d["sender"].get<std::string>().rfind(client.id() + ".", 0), 0u);

  // The handler's own timeout wins when it is the earlier one.
  auto short_topic = unique_topic("own-timeout");
  auto sub2 = server.reply_to(
      short_topic, [](const Request& r, Response& res) { res.set_data(r.remaining().count()); },
      HandlerOptions{}.set_timeout(1s));
  m = client.request_sync(short_topic, 1, RequestOptions{}.set_timeout(scaled(60s)));
  ASSERT_EQ(m.code(), 200) << m.error_text();
  EXPECT_LE(m.data<std::int64_t>(), 1000);
  EXPECT_GT(m.data<std::int64_t>(), 0);
}

TEST_P(DeadlineTest, NestedRequestsAndSignalsInheritTheBudgetAndTheTrace) {
  auto& server = started();
  auto& client = started();
  auto outer = unique_topic("outer");
  auto inner = unique_topic("inner");
  auto slot_topic = unique_topic("traced-slot");
  std::promise<std::string> slot_trace;
  auto slot =
      server.slot(slot_topic, [&](const Request& r) { slot_trace.set_value(r.trace_id()); });
  auto s1 = server.reply_to(inner, [](const Request& r, Response& res) {
    res.set_data(json{{"remaining", r.remaining().count()}, {"trace", r.trace_id()}});
  });
  auto s2 = server.reply_to(outer, [&](const Request& r, Response& res) {
    // Asks for a minute; gets what is left of the outer budget.
    auto m = server.request_sync(inner, 1, RequestOptions{}.set_timeout(std::chrono::minutes(1)));
    server.signal(slot_topic, 1);
    auto d = m.data();
    d["outer_trace"] = r.trace_id();
    d["outer_remaining"] = r.remaining().count();
    res.set_data(d).set_code(m.code());
  });
  auto budget = scaled(5s);
  auto m = client.request_sync(outer, 1, RequestOptions{}.set_timeout(budget));
  ASSERT_EQ(m.code(), 200) << m.error_text();
  auto d = m.data();
  EXPECT_GT(d["remaining"].get<std::int64_t>(), 0);
  EXPECT_LE(d["remaining"].get<std::int64_t>(), budget.count());
  EXPECT_EQ(d["trace"], d["outer_trace"]);
  EXPECT_EQ(d["trace"].get<std::string>().rfind(client.id() + ".", 0), 0u);
  auto f = slot_trace.get_future();
  ASSERT_EQ(f.wait_for(scaled(10s)), std::future_status::ready);
  EXPECT_EQ(f.get(), d["trace"].get<std::string>());
}

TEST_P(DeadlineTest, RequestFromAHandlerWhoseTimeIsUpIsNotSent) {
  auto& server = started();
  auto& client = started();
  auto outer = unique_topic("spent");
  auto inner = unique_topic("never");
  std::atomic<int> inner_runs{0};
  auto s1 = server.reply_to(inner, [&](const Request&, Response& res) {
    ++inner_runs;
    res.set_data(1);
  });
  std::promise<Message> nested;
  auto s2 = server.reply_to(
      outer,
      [&](const Request& r, Response&) {
        eventually([&] { return r.remaining().count() == 0; });
        auto started_at = std::chrono::steady_clock::now();
        auto m = server.request_sync(inner, 1);
        EXPECT_LT(std::chrono::steady_clock::now() - started_at, scaled(2s));  // not a timeout
        nested.set_value(m);
      },
      HandlerOptions{}.set_timeout(100ms));
  EXPECT_TRUE(client.request_sync(outer, 1).timed_out());
  auto f = nested.get_future();
  ASSERT_EQ(f.wait_for(scaled(10s)), std::future_status::ready);
  EXPECT_EQ(f.get().code(), code::kTimeout);
  // A request sent afterwards is a barrier: the nested one never arrived.
  EXPECT_EQ(client.request_sync(inner, 1).code(), 200);
  EXPECT_EQ(inner_runs.load(), 1);
}

// As Go and Ruby send: no budget_ms, no trace_id. Served as before, with the
// handler's own deadline and the sender as trace id, answered without one.
TEST_P(DeadlineTest, RequestWithoutTheFieldsIsServedAsBefore) {
  auto& server = started();
  auto topic = unique_topic("go-peer");
  auto sub = server.reply_to(
      topic,
      [](const Request& r, Response& res) {
        res.set_data(json{{"trace_is_sender", r.trace_id() == r.sender()},
                          {"remaining", r.remaining().count()}});
      },
      HandlerOptions{}.set_timeout(std::chrono::minutes(2)));
  std::string sender = "1643e3fc-6362-4a2d-853b-35e8447a63f2";
  auto cap = world_->capture("gilmour.response." + sender);
  world_->publish("gilmour.request." + topic,
                  R"({"data":"ping","code":200,"sender":")" + sender + R"("})");
  auto got = cap->wait_for(1);
  ASSERT_EQ(got.size(), 1u);
  auto j = json::parse(got[0].second);
  EXPECT_EQ(j["code"], 200);
  EXPECT_TRUE(j["data"]["trace_is_sender"].get<bool>());
  EXPECT_GT(j["data"]["remaining"].get<std::int64_t>(), 60'000);  // the handler's 2 min
  EXPECT_FALSE(j.contains("trace_id")) << got[0].second;
  EXPECT_EQ(server.stats().expired_dropped, 0u);
}

// A request whose budget is already spent when it arrives is dropped unrun
// and unanswered; one with budget left is answered, its trace id echoed.
TEST_P(DeadlineTest, RequestArrivingExpiredIsDroppedUnanswered) {
  auto& server = started();
  auto topic = unique_topic("expired");
  std::atomic<int> runs{0};
  auto sub = server.reply_to(topic, [&](const Request& r, Response& res) {
    ++runs;
    res.set_data(r.trace_id());
  });
  auto cap = world_->capture("gilmour.response.exp-*", true);
  auto channel = "gilmour.request." + topic;
  world_->publish(channel,
                  R"({"data":1,"code":200,"sender":"exp-0","budget_ms":0,"trace_id":"t0"})");
  ASSERT_TRUE(eventually([&] { return server.stats().expired_dropped == 1; }));
  world_->publish(channel,
                  R"({"data":1,"code":200,"sender":"exp-1","budget_ms":60000,"trace_id":"t1"})");
  auto got = cap->wait_for(1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].first, "gilmour.response.exp-1");
  EXPECT_EQ(got[0].second,
            R"({"data":"t1","code":200,"sender":"gilmour.response.exp-1","trace_id":"t1"})");
  EXPECT_EQ(runs.load(), 1);
  EXPECT_EQ(server.stats().server_timeouts, 0u);
}

INSTANTIATE_TEST_SUITE_P(Backends, DeadlineTest, ::testing::ValuesIn(backend_kinds()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace gilmour::test
