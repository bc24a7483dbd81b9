// The Redis world: every backend connects to the suite's shared
// redis-server (shared_redis()); raw access goes through synchronous hiredis.
#include <mutex>

#include "support/backends.hpp"
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

}  // namespace

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
