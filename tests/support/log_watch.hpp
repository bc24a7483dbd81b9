// A spdlog sink that records what an engine logs and lets a test wait for a
// line, e.g. the engine's "lost ..." / "reconnected to ..." transitions: an
// event to wait on instead of sleeping.
//
// Thread safety: every member may be called from any thread.
#pragma once

#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "support/timing.hpp"

namespace gilmour::test {

class LogWatch final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  /// Lines logged so far that contain `needle`.
  std::size_t count(const std::string& needle) {
    std::lock_guard<std::mutex> lock(mu_);
    return count_locked(needle);
  }
  /// Waits until at least `n` lines contain `needle`, for at most
  /// scaled(timeout).
  bool wait_for(const std::string& needle, std::size_t n, std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, scaled(timeout), [&] { return count_locked(needle) >= n; });
  }
  std::vector<std::string> lines() {
    std::lock_guard<std::mutex> lock(mu_);
    return lines_;
  }
  /// A logger writing here (level info), for EngineOptions::logger.
  static std::pair<std::shared_ptr<LogWatch>, std::shared_ptr<spdlog::logger>> make(
      const std::string& name) {
    auto sink = std::make_shared<LogWatch>();
    auto logger = std::make_shared<spdlog::logger>(name, sink);
    logger->set_level(spdlog::level::info);
    return {sink, logger};
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    std::lock_guard<std::mutex> lock(mu_);
    lines_.emplace_back(msg.payload.data(), msg.payload.size());
    cv_.notify_all();
  }
  void flush_() override {}

 private:
  std::size_t count_locked(const std::string& needle) const {
    std::size_t n = 0;
    for (auto& l : lines_) {
      if (l.find(needle) != std::string::npos) ++n;
    }
    return n;
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> lines_;
};

}  // namespace gilmour::test
