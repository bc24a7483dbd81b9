// Liveness of the Redis connections on private redis-servers: a local
// backlog or a busy I/O thread is not a dead server (the command timeout
// counts from the socket write), the idle PING finds a stopped server with
// no traffic, and host names are resolved off the I/O thread.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>

#include "integration/redis_fixture.hpp"
#include "integration/state_log.hpp"
#include "support/timing.hpp"

namespace gilmour::test {
namespace {

using Clock = std::chrono::steady_clock;
using Liveness = RedisTest;
constexpr auto kLost = ConnectionState::kDisconnected;
constexpr auto kBack = ConnectionState::kReconnected;

/// `cmdstat_ping` calls in the server's INFO commandstats.
long long ping_calls(RawRedis& raw) {
  auto r = raw.command({"INFO", "commandstats"});
  if (!r || r->type != REDIS_REPLY_STRING) return -1;
  std::string text(r->str, r->len);
  auto pos = text.find("cmdstat_ping:calls=");
  if (pos == std::string::npos) return 0;
  return std::atoll(text.c_str() + pos + 19);
}

TEST_F(Liveness, BurstQueuedLocallyIsNotADeadServer) {
  // 100k signals reach the I/O thread in a few loop turns and wait in the
  // output buffer far longer than the command timeout, while Redis answers
  // each one promptly once it is written.
  auto s = own_server();
  ASSERT_TRUE(s);
  auto w = watched();
  auto ro = options_for(*s);
  // 250 ms: the burst takes 1.5-2 s here, and on a loaded box Redis itself
  // may not run for 100 ms, which would be a (true) missed deadline.
  ro.command_timeout = scaled(std::chrono::milliseconds(250));
  constexpr int kBurst = 100000;
  // Room for the whole burst: this test is about the command timeout, not
  // the outbound bound (backpressure_test.cpp).
  auto& g = started_with(ro, w.options.set_max_outstanding(kBurst));
  auto topic = unique_topic("burst");
  std::atomic<int> done{0};
  std::atomic<int> failed{0};
  std::promise<void> all_done;
  auto t0 = Clock::now();
  for (int i = 0; i < kBurst; ++i) {
    g.signal(topic, std::string(64, 'x'), [&](const SignalResult& r) {
      if (!r.ok()) failed.fetch_add(1);
      if (done.fetch_add(1) + 1 == kBurst) all_done.set_value();
    });
  }
  ASSERT_EQ(all_done.get_future().wait_for(scaled(60s)), std::future_status::ready)
      << done.load() << " of " << kBurst << " signals completed";
  auto took = Clock::now() - t0;
  EXPECT_EQ(failed.load(), 0) << w.log->detail_of_first(kLost);
  EXPECT_EQ(w.log->count(kLost), 0u) << w.log->detail_of_first(kLost);
  std::cout << "[ burst ] " << kBurst << " signals in "
            << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
            << " ms, command timeout " << ro.command_timeout.count() << " ms\n";
}

TEST_F(Liveness, BusyIoThreadIsNotADeadServer) {
  // An inline handler holds the I/O thread for 3x the command timeout after
  // the engine queued commands (its response, the exclusion lock of the next
  // message): their replies wait unread in the socket, their bytes unsent in
  // the output buffer. Neither is a dead server.
  auto s = own_server();
  ASSERT_TRUE(s);
  auto w = watched();
  auto ro = options_for(*s);
  ro.command_timeout = scaled(std::chrono::milliseconds(200));
  auto& g = started_with(ro, w.options);
  auto topic = unique_topic("busy");
  const auto hold = 3 * ro.command_timeout;
  auto rep = g.reply_to(
      topic,
      [hold](const Request&, Response& res) {
        let_time_pass(hold);  // the workload: a slow inline handler
        res.set_data("ok");
      },
      HandlerOptions{}.set_inline_delivery(true));
  auto& client = started(test_options(), s.get());
  std::vector<std::future<Message>> pending;
  for (int i = 0; i < 3; ++i) pending.push_back(client.request(topic, i, {scaled(30s)}));
  for (auto& f : pending) EXPECT_EQ(f.get().code(), 200);
  EXPECT_EQ(w.log->count(kLost), 0u) << w.log->detail_of_first(kLost);
}

TEST_F(Liveness, IdlePingFindsAStoppedServer) {
  auto s = own_server();
  ASSERT_TRUE(s);
  auto w = watched();
  auto ro = options_for(*s);
  ro.idle_ping_interval = std::chrono::milliseconds(200);
  ro.command_timeout = scaled(std::chrono::milliseconds(500));
  auto& g = started_with(ro, w.options);
  auto topic = unique_topic("idle");
  auto rep = g.reply_to(topic, [](const Request&, Response& res) { res.set_data(1); });
  // Idle and healthy: both connections (one subscribed) PING and get their
  // answer; nothing is reported.
  RawRedis raw(target(*s));
  auto base = ping_calls(raw);
  EXPECT_TRUE(eventually([&] { return ping_calls(raw) >= base + 4; }, 10s, 20ms))
      << ping_calls(raw) - base << " PINGs";
  EXPECT_EQ(w.log->count(kLost), 0u) << w.log->detail_of_first(kLost);
  // Stopped with no traffic at all: found by the PING within interval +
  // command timeout.
  s->pause();
  auto t0 = Clock::now();
  bool lost = w.log->wait_for(kLost, 1, ro.idle_ping_interval + ro.command_timeout + 2s);
  auto took = Clock::now() - t0;
  s->resume();
  ASSERT_TRUE(lost);
  EXPECT_NE(w.log->detail_of_first(kLost).find("PING"), std::string::npos)
      << w.log->detail_of_first(kLost);
  EXPECT_GE(took, ro.command_timeout - 50ms);
  ASSERT_TRUE(w.log->wait_for(kBack, 1, 10s));
  EXPECT_EQ(started(test_options(), s.get()).request_sync(topic, 0).code(), 200);
}

TEST_F(Liveness, SubscriberOverThePubsubOutputBufferLimitIsToldWhy) {
  // A tiny pub/sub output-buffer limit, a subscriber whose I/O thread is
  // held by an inline slot while 16 MB are published to it: Redis drops the
  // subscriber. The engine says why, reconnects and serves again.
  auto s = own_server();
  ASSERT_TRUE(s);
  RawRedis raw(target(*s));
  ASSERT_TRUE(raw.command({"CONFIG", "SET", "client-output-buffer-limit", "pubsub 256kb 128kb 1"}));
  auto w = watched();
  auto& g = started_with(options_for(*s), w.options);
  auto topic = unique_topic("evicted");
  std::promise<void> release;
  auto released = release.get_future().share();
  std::atomic<bool> first{true};
  Counter got;
  auto slot = g.slot(
      topic,
      [&, released](const Request&) {
        if (first.exchange(false)) released.wait_for(scaled(20s));  // holds the I/O thread
        got.add();
      },
      HandlerOptions{}.set_inline_delivery(true));
  auto& other = started(test_options(), s.get());
  const std::string chunk(64 * 1024, 'p');
  for (int i = 0; i < 255; ++i) other.signal(topic, chunk);
  std::promise<void> last;  // PUBLISHes complete in order: the last one means all
  other.signal(topic, chunk, [&](const SignalResult&) { last.set_value(); });
  ASSERT_EQ(last.get_future().wait_for(scaled(20s)), std::future_status::ready);
  release.set_value();
  ASSERT_TRUE(w.log->wait_for(kLost, 1, 10s));
  EXPECT_NE(w.log->detail_of_first(kLost).find("client-output-buffer-limit pubsub"),
            std::string::npos)
      << w.log->detail_of_first(kLost);
  ASSERT_TRUE(w.log->wait_for(kBack, 1, 10s));
  auto before = got.value();
  other.signal(topic, "again");
  EXPECT_TRUE(got.wait_for(before + 1, 10s));
}

TEST_F(Liveness, HostNameIsResolved) {
  auto s = own_server();
  ASSERT_TRUE(s);
  auto ro = options_for(*s);
  ro.host = "localhost";
  auto& g = started_with(ro);
  auto topic = unique_topic("resolved");
  auto rep = g.reply_to(topic, [](const Request&, Response& res) { res.set_data("ok"); });
  EXPECT_EQ(g.request_sync(topic, 0).data<std::string>(), "ok");
}

TEST_F(Liveness, UnresolvableHostFailsStartWithAClearError) {
  auto o = redis::Options::from_url("redis://no-such-host.invalid:6379");
  o.connect_timeout = scaled(2s);
  Gilmour g(redis::make_backend(o), test_options());
  auto t0 = Clock::now();
  std::string err;
  try {
    g.start();
  } catch (const ConnectionError& e) {
    err = e.what();
  }
  EXPECT_LT(Clock::now() - t0, o.connect_timeout + scaled(1s));
  EXPECT_NE(err.find("connect to no-such-host.invalid:6379 failed: cannot resolve "
                     "no-such-host.invalid"),
            std::string::npos)
      << err;
}

}  // namespace
}  // namespace gilmour::test
