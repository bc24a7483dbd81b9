// Fixture of the Redis-only tests: the suite's shared redis-server (or a
// test's own), engines stopped at TearDown, raw clients, and helpers to read
// envelopes.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "support/backends.hpp"
#include "support/log_watch.hpp"
#include "support/redis_raw.hpp"
#include "support/redis_server.hpp"

namespace gilmour::test {

class RedisTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = shared_redis();
    if (!server_) {
      if (RedisServer::required()) FAIL() << "Redis is required under CI";
      GTEST_SKIP() << "redis-server unavailable";
    }
  }
  void TearDown() override {
    for (auto& e : engines_) e->stop();
    engines_.clear();
  }

  /// Backend options for `s` with fast reconnection, for tests (connect and
  /// command timeouts of 2 s, scaled()).
  static redis::Options options_for(const RedisServer& s) {
    redis::Options o;
    o.host = s.host();
    o.port = s.port();
    o.connect_timeout = scaled(2s);
    o.command_timeout = scaled(2s);
    o.reconnect_min = 20ms;
    o.reconnect_max = 200ms;
    return o;
  }
  static RawTarget target(const RedisServer& s) { return RawTarget{s.host(), s.port(), "", ""}; }
  RawTarget target() const { return target(*server_); }

  /// A started engine on `s` (the shared server by default).
  Gilmour& started(EngineOptions o = test_options(), RedisServer* s = nullptr) {
    return started_with(options_for(s ? *s : *server_), std::move(o));
  }
  Gilmour& started_with(const redis::Options& ro, EngineOptions o = test_options()) {
    engines_.push_back(std::make_unique<Gilmour>(redis::make_backend(ro), std::move(o)));
    engines_.back()->start();
    return *engines_.back();
  }

  /// Starts a private server (AUTH, restart tests); skips or fails as SetUp.
  std::unique_ptr<RedisServer> own_server(std::vector<std::string> extra = {}) {
    auto s = std::make_unique<RedisServer>();
    if (!s->start(std::move(extra))) {
      ADD_FAILURE() << "cannot start a private redis-server: " << s->error();
      return nullptr;
    }
    return s;
  }

  RedisServer* server_ = nullptr;
  std::vector<std::unique_ptr<Gilmour>> engines_;
};

/// The sender of an envelope (its "sender" field), or "" when there is none.
inline std::string sender_of(const std::string& payload) {
  auto j = nlohmann::json::parse(payload, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("sender") || !j["sender"].is_string()) {
    return "";
  }
  return j["sender"].get<std::string>();
}

/// A fresh random UUID, as Go's requester uses for its sender.
inline std::string go_uuid() {
  static std::atomic<unsigned> n{0};
  char buf[40];
  unsigned a = static_cast<unsigned>(::getpid()) * 2654435761u + (++n) * 40503u;
  std::snprintf(buf, sizeof buf, "%08x-%04x-4%03x-a%03x-%012x", a, (a >> 7) & 0xffff,
                n.load() & 0xfff, (a >> 3) & 0xfff, a ^ 0x5bd1e995u);
  return buf;
}

}  // namespace gilmour::test
