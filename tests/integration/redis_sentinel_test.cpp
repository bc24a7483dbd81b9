// Redis Sentinel: a real deployment (1 master, 1 replica, 3 sentinels, see
// support/sentinel_topology.hpp) per test. Requests and signals through a
// redis-sentinel:// URL, a master killed under traffic (every request
// completes exactly once, none is handled twice, new requests succeed soon
// after the failover), and start() errors for a wrong master name or dead
// sentinels.
#include <gtest/gtest.h>
#include <signal.h>

#include <future>
#include <iostream>
#include <map>
#include <mutex>

#include "integration/request_traffic.hpp"
#include "integration/state_log.hpp"
#include "support/backends.hpp"
#include "support/child_process.hpp"
#include "support/redis_server.hpp"
#include "support/sentinel_topology.hpp"
#include "support/timing.hpp"

namespace gilmour::test {
namespace {

using Clock = std::chrono::steady_clock;

class Sentinel : public ::testing::Test {
 protected:
  void SetUp() override {
    if (RedisServer::binary().empty()) {
      if (RedisServer::required()) FAIL() << "Redis is required under CI";
      GTEST_SKIP() << "redis-server unavailable";
    }
    ASSERT_TRUE(topo_.start()) << topo_.error();
  }
  void TearDown() override {
    for (auto& e : engines_) e->stop();
    engines_.clear();
  }

  /// Backend options for the topology with fast reconnection.
  redis::Options options(const std::string& name = SentinelTopology::kMasterName) const {
    auto o = redis::Options::from_url(topo_.url(name));
    o.connect_timeout = scaled(2s);
    o.command_timeout = scaled(2s);
    o.reconnect_min = 20ms;
    o.reconnect_max = 200ms;
    return o;
  }
  Gilmour& started(EngineOptions eo = test_options()) {
    engines_.push_back(std::make_unique<Gilmour>(redis::make_backend(options()), std::move(eo)));
    engines_.back()->start();
    return *engines_.back();
  }

  SentinelTopology topo_;
  std::vector<std::unique_ptr<Gilmour>> engines_;
};

TEST_F(Sentinel, RequestsAndSignalsFlowThroughTheSentinelUrl) {
  auto& server = started();
  auto& client = started();
  auto topic = unique_topic("sentinel");
  auto sub =
      server.reply_to(topic, [](const Request& r, Response& res) { res.set_data(r.data()); });
  Counter heard;
  auto slot = server.slot(topic + ".signal", [&](const Request&) { heard.add(); });
  for (int i = 0; i < 20; ++i) {
    auto m = client.request_sync(topic, i, {scaled(5s)});
    ASSERT_EQ(m.code(), 200) << m.error_text();
    EXPECT_EQ(m.data<int>(), i);
  }
  for (int i = 0; i < 5; ++i) client.signal(topic + ".signal", i);
  EXPECT_TRUE(heard.wait_for(5));
}

TEST_F(Sentinel, KilledMasterUnderTrafficFailsOverWithEveryRequestCompletedOnce) {
  auto server_watch = watched();
  auto client_watch = watched();
  auto& server = started(server_watch.options);
  auto& client = started(client_watch.options);
  auto topic = unique_topic("failover");
  HandledCount handled;
  auto sub = server.reply_to(topic, handled.echo());
  // A request published on the new master before the replier re-subscribed
  // there is lost and ends at its timeout: keep it short so that the window
  // of 16 frees up soon after the failover.
  RequestTraffic traffic(client, topic, *client_watch.log, scaled(750ms));
  ASSERT_TRUE(traffic.wait_ok(100, 10s));

  const auto killed = Clock::now();
  const int old_port = topo_.kill_master();
  ASSERT_NE(old_port, 0);
  ASSERT_TRUE(client_watch.log->wait_for(kLost, 1, 5s));
  ASSERT_TRUE(server_watch.log->wait_for(kLost, 1, 5s));
  // The sentinels promote the replica: down-after + election + promotion.
  ASSERT_TRUE(topo_.wait_for_new_master(
      old_port, SentinelTopology::kDownAfter + SentinelTopology::kFailoverTimeout + 10s));
  const auto switched = Clock::now();
  traffic.mark_new();
  // New requests succeed within 2 s (scaled) of the sentinels' switch.
  auto first_ok = traffic.wait_first_new_ok(switched + scaled(2s));
  ASSERT_NE(first_ok, Clock::time_point{})
      << "no successful request within " << scaled(2s).count() << " ms of the failover";
  std::cout << "[ failover ] sentinels switched " << ms_of(switched - killed)
            << " ms after the kill; first new success " << ms_of(first_ok - switched)
            << " ms after the switch (" << ms_of(first_ok - killed) << " ms after the kill)\n";
  ASSERT_TRUE(client_watch.log->wait_for(kBack, 1, 5s));
  ASSERT_TRUE(server_watch.log->wait_for(kBack, 1, 5s));
  expect_failover_completed(traffic, handled, "failover");
}

TEST_F(Sentinel, WrongMasterNameOrDeadSentinelsFailStartClearly) {
  auto o = options("nosuchmaster");
  auto t0 = Clock::now();
  auto err = start_error(redis::make_backend(o));
  EXPECT_NE(err.find("does not know master 'nosuchmaster'"), std::string::npos) << err;
  EXPECT_LT(Clock::now() - t0, o.connect_timeout + scaled(1s));

  topo_.kill_sentinels();
  o = options();
  t0 = Clock::now();
  err = start_error(redis::make_backend(o));
  EXPECT_NE(err.find("no sentinel named master 'mymaster'"), std::string::npos) << err;
  EXPECT_NE(err.find("Connection refused"), std::string::npos) << err;
  EXPECT_LT(Clock::now() - t0, o.connect_timeout + scaled(1s));
}

TEST_F(Sentinel, ANodeThatIsNotAMasterIsRefused) {
  // A sentinel that names the replica as a master: the ROLE check refuses
  // it, asks again (same answer), and start() fails with the reason.
  int port = topo_.start_sentinel_naming_the_replica("fake");
  ASSERT_NE(port, 0) << topo_.error();
  auto o = redis::Options::from_url("redis-sentinel://127.0.0.1:" + std::to_string(port) + "/fake");
  o.connect_timeout = scaled(2s);
  o.reconnect_min = 20ms;
  o.reconnect_max = 200ms;
  auto t0 = Clock::now();
  auto err = start_error(redis::make_backend(o));
  EXPECT_NE(err.find("is not a master (role: slave)"), std::string::npos) << err;
  EXPECT_LT(Clock::now() - t0, o.connect_timeout + scaled(1s));
}

#if defined(GILMOUR_ECHO_SERVER) && defined(GILMOUR_ECHO_CLIENT)
TEST_F(Sentinel, ExamplesTakeTheSentinelUrl) {
  ChildProcess server({GILMOUR_ECHO_SERVER, "--redis", topo_.url(), "--no-health"});
  ASSERT_TRUE(server.started());
  ASSERT_TRUE(server.wait_for_output("(group _default)\n"));
  auto r = run_program({GILMOUR_ECHO_CLIENT, "--redis", topo_.url(), "hello"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("Pong hello"), std::string::npos) << r.out << r.err;
  server.signal(SIGTERM);
  EXPECT_EQ(server.wait().exit_code, 0);
}
#endif

}  // namespace
}  // namespace gilmour::test
