// The fixture of every backend-parameterised suite: a World per test (skipped
// when a backend is unavailable locally, failed under CI), engines that are
// stopped at the end of the test.
#pragma once

#include <gtest/gtest.h>

#include "support/backends.hpp"
#include "support/redis_server.hpp"

namespace gilmour::test {

class BackendTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    std::string why;
    world_ = make_world(GetParam(), &why);
    if (!world_) {
      if (GetParam() == "redis" && RedisServer::required()) {
        FAIL() << "Redis is required under CI: " << why;
      }
      GTEST_SKIP() << why;
    }
  }
  void TearDown() override {
    subs_.clear();
    for (auto& e : engines_) e->stop();
    engines_.clear();
  }

  /// An engine on this test's world, stopped at TearDown.
  Gilmour& engine(EngineOptions o = test_options()) {
    engines_.push_back(std::make_unique<Gilmour>(world_->backend(), std::move(o)));
    return *engines_.back();
  }
  /// As engine(), started.
  Gilmour& started(EngineOptions o = test_options()) {
    auto& g = engine(std::move(o));
    g.start();
    return g;
  }

  std::unique_ptr<World> world_;
  std::vector<std::unique_ptr<Gilmour>> engines_;
  std::vector<Subscription> subs_;  // released before the engines stop
};

}  // namespace gilmour::test
