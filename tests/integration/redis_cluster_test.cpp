// Redis Cluster: a real deployment (3 masters, 3 replicas, see
// support/cluster_topology.hpp) per test. Request/reply with a group spread
// over engines seeded on different nodes (each request handled once, lock
// keys on several masters), signals, health and error records, no false 404
// for a subscriber connected to another node, and a master killed under
// traffic (every request completes exactly once, none is handled twice, new
// requests succeed soon after the failover).
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <functional>
#include <future>
#include <iostream>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "integration/request_traffic.hpp"
#include "integration/state_log.hpp"
#include "support/backends.hpp"
#include "support/child_process.hpp"
#include "support/cluster_topology.hpp"
#include "support/log_watch.hpp"
#include "support/redis_raw.hpp"
#include "support/redis_server.hpp"
#include "support/timing.hpp"

namespace gilmour::test {
namespace {

using Clock = std::chrono::steady_clock;

class Cluster : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (RedisServer::binary().empty()) return;
    topo_ = new ClusterTopology();
    if (!topo_->start()) {
      error_ = topo_->error();
      delete topo_;
      topo_ = nullptr;
    }
  }
  static void TearDownTestSuite() {
    delete topo_;
    topo_ = nullptr;
  }
  void SetUp() override {
    if (RedisServer::binary().empty()) {
      if (RedisServer::required()) FAIL() << "Redis is required under CI";
      GTEST_SKIP() << "redis-server unavailable";
    }
    ASSERT_NE(topo_, nullptr) << error_;
  }
  void TearDown() override {
    subs_.clear();
    for (auto& e : engines_) e->stop();
    engines_.clear();
  }

  /// Backend options seeded with the nodes `seeds`, fast reconnection.
  static redis::Options options(const std::vector<int>& seeds) {
    auto o = redis::Options::from_url(topo_->url(seeds));
    o.connect_timeout = scaled(3s);
    o.command_timeout = scaled(2s);
    o.reconnect_min = 20ms;
    o.reconnect_max = 200ms;
    return o;
  }
  Gilmour& started(const std::vector<int>& seeds, EngineOptions eo = test_options()) {
    engines_.push_back(
        std::make_unique<Gilmour>(redis::make_backend(options(seeds)), std::move(eo)));
    engines_.back()->start();
    return *engines_.back();
  }
  static RawRedis raw(int port) { return RawRedis(RawTarget{"127.0.0.1", port, "", ""}); }
  /// CLUSTER KEYSLOT `key`, asked of a running node.
  static int keyslot(const std::string& key) {
    for (auto& n : topo_->nodes()) {
      if (!n->running()) continue;
      auto r = raw(n->port()).command({"CLUSTER", "KEYSLOT", key});
      if (r && r->type == REDIS_REPLY_INTEGER) return static_cast<int>(r->integer);
    }
    return -1;
  }

  static ClusterTopology* topo_;
  static std::string error_;
  std::vector<std::unique_ptr<Gilmour>> engines_;
  std::vector<Subscription> subs_;
};

ClusterTopology* Cluster::topo_ = nullptr;
std::string Cluster::error_;

TEST_F(Cluster, GroupRepliersOnDifferentSeedsAnswerEachRequestOnce) {
  const auto masters = topo_->master_ports();
  ASSERT_EQ(masters.size(), 3u);
  auto& a = started({0});
  auto& b = started({2});
  auto& client = started({4});
  auto topic = unique_topic("cluster");
  std::mutex mu;
  std::map<int, int> handled;
  std::set<char> who;
  auto handler = [&](char name) {
    return [&, name](const Request& r, Response& res) {
      {
        std::lock_guard<std::mutex> lock(mu);
        ++handled[r.data<int>()];
        who.insert(name);
      }
      res.set_data(r.data());
    };
  };
  subs_.push_back(a.reply_to(topic, handler('a'), HandlerOptions{}.set_group("g")));
  subs_.push_back(b.reply_to(topic, handler('b'), HandlerOptions{}.set_group("g")));
  constexpr int kRequests = 300;
  std::vector<std::future<Message>> pending;
  for (int i = 0; i < kRequests; ++i) {
    pending.push_back(client.request(topic, i, RequestOptions{}.set_timeout(scaled(10s))));
  }
  for (int i = 0; i < kRequests; ++i) {
    auto m = pending[static_cast<std::size_t>(i)].get();
    ASSERT_EQ(m.code(), 200) << i << ": " << m.error_text();
    EXPECT_EQ(m.data<int>(), i);
  }
  std::lock_guard<std::mutex> lock(mu);
  for (int i = 0; i < kRequests; ++i) EXPECT_EQ(handled[i], 1) << "request " << i;
  // The lock keys (`<sender><group>`, one per request) are spread by slot.
  int masters_with_locks = 0;
  for (int port : masters) {
    auto r = raw(port).command({"DBSIZE"});
    if (r && r->integer > 0) ++masters_with_locks;
  }
  EXPECT_GE(masters_with_locks, 2);
}

TEST_F(Cluster, SignalsReachExactAndWildcardSlots) {
  auto& server = started({1});
  auto& client = started({3});
  auto topic = unique_topic("signals");
  Counter exact, wild;
  subs_.push_back(server.slot(topic + ".item", [&](const Request&) { exact.add(); }));
  subs_.push_back(server.slot(topic + ".*", [&](const Request&) { wild.add(); }));
  for (int i = 0; i < 20; ++i) client.signal(topic + ".item", i);
  for (int i = 0; i < 20; ++i) client.signal(topic + ".other" + std::to_string(i), i);
  EXPECT_TRUE(exact.wait_for(20));
  EXPECT_TRUE(wild.wait_for(40));
}

TEST_F(Cluster, HealthAndErrorRecordsLandOnTheirSlotsMaster) {
  auto topic = unique_topic("records");
  auto queue = unique_topic("errq");
  auto o = test_options();
  o.health_check = true;
  o.error_policy = ErrorPolicy::kQueue;
  o.error_queue = queue;
  auto& server = started({5}, o);
  subs_.push_back(
      server.reply_to(topic, [](const Request&, Response&) { throw std::runtime_error("boom"); }));
  auto& client = started({0});
  EXPECT_EQ(client.request_sync(topic, 1).code(), 500);
  const int health_port = topo_->master_of_slot(keyslot("gilmour.known_host.health"));
  const int queue_port = topo_->master_of_slot(keyslot(queue));
  ASSERT_NE(health_port, 0);
  ASSERT_NE(queue_port, 0);
  EXPECT_TRUE(eventually([&] {
    for (auto& [field, value] : raw(health_port).hash_get_all("gilmour.known_host.health")) {
      if (field == server.health_ident()) return true;
    }
    return false;
  }));
  EXPECT_TRUE(eventually([&] { return raw(queue_port).list_range(queue).size() == 1; }));
}

TEST_F(Cluster, ConfirmSubscribersCountsSubscribersOnOtherNodes) {
  auto& client = started({0});
  auto topic = unique_topic("foreign");
  const std::string channel = "gilmour.request." + topic;
  // A foreign peer (Go, Ruby) connected to a master that does not own the
  // channel's slot: PUBLISH on the owner counts 0 there.
  const int owner = topo_->master_of_slot(keyslot(channel));
  int elsewhere = 0;
  for (int port : topo_->master_ports()) {
    if (port != owner) elsewhere = port;
  }
  ASSERT_NE(elsewhere, 0);
  RawSubscriber peer(RawTarget{"127.0.0.1", elsewhere, "", ""}, channel, false);
  ASSERT_TRUE(peer.ok()) << peer.error();
  auto m = client.request_sync(
      topic, 1, RequestOptions{}.set_timeout(scaled(500ms)).set_confirm_subscribers());
  EXPECT_NE(m.code(), 404) << m.error_text();
  EXPECT_EQ(peer.wait_for(1).size(), 1u);
  // Nobody anywhere: a true 404.
  auto none =
      client.request_sync(unique_topic("nobody"), 1, RequestOptions{}.set_confirm_subscribers());
  EXPECT_EQ(none.code(), 404);
}

TEST_F(Cluster, ConfirmSubscribersFindsAWildcardSlot) {
  // A wildcard slot is a PSUBSCRIBE: Redis counts it only on the node the
  // PUBLISH went to. Pick a topic whose channel's slot is owned by another
  // master than slot 0's, where a per-slot placement would publish.
  std::string prefix;
  std::string channel;
  const int home = topo_->master_of_slot(0);
  for (int i = 0; i < 1000; ++i) {
    prefix = unique_topic("wild");
    channel = "gilmour.slot." + prefix + ".x";
    if (topo_->master_of_slot(keyslot(channel)) != home) break;
  }
  ASSERT_NE(topo_->master_of_slot(keyslot(channel)), home);
  auto& listener = started({1});
  Counter heard;
  subs_.push_back(listener.slot(prefix + ".*", [&](const Request&) { heard.add(); }));
  auto& sender = started({2});
  std::promise<SignalResult> result;
  sender.signal(
      prefix + ".x", 1, [&](const SignalResult& r) { result.set_value(r); },
      SignalOptions{}.set_confirm_subscribers());
  auto r = result.get_future().get();
  EXPECT_TRUE(r.ok()) << r.status.message();
  EXPECT_FALSE(r.no_listeners());
  EXPECT_TRUE(heard.wait_for(1));
}

TEST_F(Cluster, AskAndMovedAreFollowedWhileASlotMigrates) {
  auto queue = unique_topic("migrating");
  const int slot = keyslot(queue);
  const int from = topo_->master_of_slot(slot);
  const int to = topo_->other_master(from);
  ASSERT_NE(from, 0);
  ASSERT_NE(to, 0);
  const std::string from_id = topo_->node_id(from), to_id = topo_->node_id(to);
  auto o = test_options();
  o.error_policy = ErrorPolicy::kQueue;
  o.error_queue = queue;
  auto topic = unique_topic("migrating");
  auto& server = started({0}, o);
  subs_.push_back(
      server.reply_to(topic, [](const Request&, Response&) { throw std::runtime_error("boom"); }));
  auto& client = started({1});
  auto setslot = [&](int port, const std::string& how, const std::string& node) {
    auto r = raw(port).command({"CLUSTER", "SETSLOT", std::to_string(slot), how, node});
    ASSERT_TRUE(r && r->type == REDIS_REPLY_STATUS) << port << " " << how;
  };
  // Migrating: the old owner answers ASK for a key it does not hold.
  setslot(to, "IMPORTING", from_id);
  setslot(from, "MIGRATING", to_id);
  EXPECT_EQ(client.request_sync(topic, 1).code(), 500);
  auto on_target = [&](bool asking) {
    auto r = raw(to);
    if (asking) r.command({"ASKING"});
    auto l = r.command({"LLEN", queue});
    return l && l->type == REDIS_REPLY_INTEGER ? l->integer : -1;
  };
  EXPECT_TRUE(eventually([&] { return on_target(true) == 1; }));
  // Migrated: the old owner answers MOVED; the backend's map was stale.
  setslot(to, "NODE", to_id);
  setslot(from, "NODE", to_id);
  EXPECT_EQ(client.request_sync(topic, 2).code(), 500);
  EXPECT_TRUE(eventually([&] { return on_target(false) == 2; }));
  EXPECT_EQ(server.stats().errors_reported, 2u);
}

TEST_F(Cluster, ARedirectionLoopFailsTheCommandAfterFiveRedirections) {
  // The owner says ASK (migrating to a node that is not importing), that
  // node says MOVED back to the owner: a loop only the bound ends.
  auto queue = unique_topic("loop");
  const int slot = keyslot(queue);
  const int owner = topo_->master_of_slot(slot);
  const int other = topo_->other_master(owner);
  ASSERT_NE(owner, 0);
  ASSERT_NE(other, 0);
  const std::string other_id = topo_->node_id(other);
  ASSERT_FALSE(other_id.empty());
  auto [log, logger] = LogWatch::make("loop");
  auto o = test_options();
  o.error_policy = ErrorPolicy::kQueue;
  o.error_queue = queue;
  o.logger = logger;
  auto topic = unique_topic("loop");
  auto& server = started({0}, o);
  subs_.push_back(
      server.reply_to(topic, [](const Request&, Response&) { throw std::runtime_error("boom"); }));
  auto& client = started({1});
  auto r = raw(owner).command({"CLUSTER", "SETSLOT", std::to_string(slot), "MIGRATING", other_id});
  ASSERT_TRUE(r && r->type == REDIS_REPLY_STATUS);
  EXPECT_EQ(client.request_sync(topic, 1).code(), 500);
  EXPECT_TRUE(log->wait_for("after 5 redirections (last: MOVED " + std::to_string(slot), 1, 10s));
  EXPECT_EQ(server.stats().publish_failures, 1u);
  raw(owner).command({"CLUSTER", "SETSLOT", std::to_string(slot), "STABLE"});
}

TEST_F(Cluster, DeadSeedsFailStartClearly) {
  auto o = redis::Options::from_url(
      "redis-cluster://:Sup3rSecretPw@127.0.0.1:" + std::to_string(free_port()) +
      ",127.0.0.1:" + std::to_string(free_port()));
  o.connect_timeout = scaled(3s);
  const auto t0 = Clock::now();
  auto err = start_error(redis::make_backend(o));
  EXPECT_NE(err.find("no cluster seed answered"), std::string::npos) << err;
  EXPECT_NE(err.find("Connection refused"), std::string::npos) << err;
  EXPECT_EQ(err.find("Secret"), std::string::npos) << err;
  EXPECT_LT(Clock::now() - t0, o.connect_timeout);  // no need to wait for the deadline
}

#if defined(GILMOUR_ECHO_SERVER) && defined(GILMOUR_ECHO_CLIENT)
TEST_F(Cluster, ExamplesTakeTheClusterUrl) {
  ChildProcess server({GILMOUR_ECHO_SERVER, "--redis", topo_->url({0}), "--no-health"});
  ASSERT_TRUE(server.started());
  ASSERT_TRUE(server.wait_for_output("(group _default)\n"));
  auto r = run_program({GILMOUR_ECHO_CLIENT, "--redis", topo_->url({3}), "hello"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("Pong hello"), std::string::npos) << r.out << r.err;
  server.signal(SIGTERM);
  EXPECT_EQ(server.wait().exit_code, 0);
}
#endif

// Defined last, so it runs last: the suite's cluster loses a master.
TEST_F(Cluster, KilledMasterUnderTrafficFailsOverWithEveryRequestCompletedOnce) {
  auto server_watch = watched();
  auto client_watch = watched();
  auto& server = started({0, 1, 2}, server_watch.options);
  auto& client = started({3, 4, 5}, client_watch.options);
  auto topic = unique_topic("failover");
  HandledCount handled;
  subs_.push_back(server.reply_to(topic, handled.echo()));
  RequestTraffic traffic(client, topic, *client_watch.log, scaled(750ms));
  ASSERT_TRUE(traffic.wait_ok(100, 10s));

  // The master holding the replier's subscription (the channel's slot).
  const int victim = topo_->master_of_slot(keyslot("gilmour.request." + topic));
  ASSERT_NE(victim, 0);
  const auto killed = Clock::now();
  const int ok_at_kill = traffic.ok_total();
  topo_->kill_port(victim);
  ASSERT_TRUE(server_watch.log->wait_for(kLost, 1, 5s));
  ASSERT_TRUE(topo_->wait_failed_over(victim, ClusterTopology::kNodeTimeout * 2 + 10s));
  const auto switched = Clock::now();
  const int ok_during = traffic.ok_total() - ok_at_kill;
  traffic.mark_new();
  auto first_ok = traffic.wait_first_new_ok(switched + scaled(2s));
  ASSERT_NE(first_ok, Clock::time_point{})
      << "no successful request within " << scaled(2s).count() << " ms of the failover";
  std::cout << "[ failover ] slots moved " << ms_of(switched - killed)
            << " ms after the kill; first new success " << ms_of(first_ok - switched)
            << " ms after that (" << ms_of(first_ok - killed) << " ms after the kill); "
            << ok_during << " requests succeeded between the kill and the move\n";
  ASSERT_TRUE(server_watch.log->wait_for(kBack, 1, 5s));
  expect_failover_completed(traffic, handled, "cluster failover");
}

}  // namespace
}  // namespace gilmour::test
