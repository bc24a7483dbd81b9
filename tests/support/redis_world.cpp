// The Redis worlds: every backend connects to the suite's shared
// redis-server (shared_redis()), or, for the opt-in "cluster" kind, to a
// Redis Cluster shared by the test process (shared_cluster()); raw access
// goes through synchronous hiredis (to the key's master in a cluster).
#include <cstdlib>
#include <mutex>

#include "support/backends.hpp"
#include "support/cluster_topology.hpp"
#include "support/redis_raw.hpp"
#include "support/redis_server.hpp"

namespace gilmour::test {

namespace {

class RedisWorld final : public World {
 public:
  explicit RedisWorld(RedisServer& server)
      : server_(server), raw_(RawTarget{server.host(), server.port(), "", ""}) {}

  bool ok() const { return raw_.ok(); }
  std::string error() const { return raw_.error(); }

  std::string kind() const override { return "redis"; }
  std::shared_ptr<Backend> backend() override {
    redis::Options o;
    o.host = server_.host();
    o.port = server_.port();
    return redis::make_backend(o);
  }
  std::unique_ptr<Capture> capture(const std::string& channel, bool pattern) override {
    auto c = std::make_unique<RawSubscriber>(RawTarget{server_.host(), server_.port(), "", ""},
                                             channel, pattern);
    if (!c->ok()) throw std::runtime_error("raw subscriber failed: " + c->error());
    return c;
  }
  std::int64_t publish(const std::string& channel, const std::string& payload) override {
    std::lock_guard<std::mutex> lock(mu_);
    return raw_.publish(channel, payload);
  }
  std::vector<std::string> list_range(const std::string& key) override {
    std::lock_guard<std::mutex> lock(mu_);
    return raw_.list_range(key);
  }
  std::vector<std::pair<std::string, std::string>> hash_get_all(const std::string& key) override {
    std::lock_guard<std::mutex> lock(mu_);
    return raw_.hash_get_all(key);
  }
  void hash_set(const std::string& key, const std::string& field,
                const std::string& value) override {
    std::lock_guard<std::mutex> lock(mu_);
    raw_.hash_set(key, field, value);
  }

 private:
  RedisServer& server_;
  std::mutex mu_;
  RawRedis raw_;
};

/// The Redis Cluster world: backends seeded with every node; captures on
/// node 0 (classic pub/sub is broadcast); keys read and written on their
/// slot's master; raw publishes sent to slot 0's master, the backend's
/// pub/sub home (so the count is the backend's, and a raw publish reaches
/// the engines in order with their own, without a hop over the bus).
class ClusterWorld final : public World {
 public:
  explicit ClusterWorld(ClusterTopology& topo) : topo_(topo) {}

  std::string kind() const override { return "cluster"; }
  std::shared_ptr<Backend> backend() override {
    return redis::make_backend(redis::Options::from_url(topo_.url()));
  }
  std::unique_ptr<Capture> capture(const std::string& channel, bool pattern) override {
    auto c = std::make_unique<RawSubscriber>(
        RawTarget{"127.0.0.1", topo_.nodes()[0]->port(), "", ""}, channel, pattern);
    if (!c->ok()) throw std::runtime_error("raw subscriber failed: " + c->error());
    return c;
  }
  std::int64_t publish(const std::string& channel, const std::string& payload) override {
    return RawRedis(RawTarget{"127.0.0.1", topo_.master_of_slot(0), "", ""})
        .publish(channel, payload);
  }
  std::vector<std::string> list_range(const std::string& key) override {
    return on_master_of(key).list_range(key);
  }
  std::vector<std::pair<std::string, std::string>> hash_get_all(const std::string& key) override {
    return on_master_of(key).hash_get_all(key);
  }
  void hash_set(const std::string& key, const std::string& field,
                const std::string& value) override {
    on_master_of(key).hash_set(key, field, value);
  }

 private:
  /// A connection to the master serving `key`'s slot.
  RawRedis on_master_of(const std::string& key) {
    std::lock_guard<std::mutex> lock(mu_);
    RawRedis any(RawTarget{"127.0.0.1", topo_.nodes()[0]->port(), "", ""});
    auto slot = any.command({"CLUSTER", "KEYSLOT", key});
    int port = slot ? topo_.master_of_slot(static_cast<int>(slot->integer)) : 0;
    return RawRedis(RawTarget{"127.0.0.1", port, "", ""});
  }
  ClusterTopology& topo_;
  std::mutex mu_;
};

/// The cluster shared by the test process, started on first use; null
/// (with `why`) when it did not come up.
ClusterTopology* shared_cluster(std::string* why) {
  static std::mutex mu;
  static std::unique_ptr<ClusterTopology> topo;
  static std::string error;
  std::lock_guard<std::mutex> lock(mu);
  if (!topo && error.empty()) {
    topo = std::make_unique<ClusterTopology>();
    if (!topo->start()) {
      error = topo->error();
      topo.reset();
    }
  }
  if (!topo && why) *why = error;
  return topo.get();
}

}  // namespace

std::unique_ptr<World> make_cluster_world(std::string* why) {
  if (RedisServer::binary().empty()) {
    if (why) *why = "redis-server not found (set GILMOUR_REDIS_SERVER)";
    return nullptr;
  }
  ClusterTopology* topo = shared_cluster(why);
  return topo ? std::make_unique<ClusterWorld>(*topo) : nullptr;
}

std::unique_ptr<World> make_redis_world(std::string* why) {
  RedisServer* server = shared_redis();
  if (!server) {
    if (why) {
      *why = RedisServer::binary().empty() ? "redis-server not found (set GILMOUR_REDIS_SERVER)"
                                           : "redis-server did not start";
    }
    return nullptr;
  }
  auto w = std::make_unique<RedisWorld>(*server);
  if (!w->ok()) {
    if (why) *why = "cannot connect to the test redis-server: " + w->error();
    return nullptr;
  }
  return w;
}

}  // namespace gilmour::test
