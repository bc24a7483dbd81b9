#include "common.hpp"

#include <signal.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <iterator>
#include <mutex>
#include <thread>

namespace gilmour::cli {

namespace {

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

/// The library's error text without its "gilmour: " / "gilmour::redis: "
/// prefix (the tool prints its own).
std::string plain(std::string text) {
  for (std::string_view p : {"gilmour::redis: ", "gilmour: "}) {
    if (starts_with(text, p)) text.erase(0, p.size());
  }
  return text;
}

}  // namespace

EngineOptions engine_options(const Global& g) {
  static std::shared_ptr<spdlog::logger> logger = [&] {
    auto l = std::make_shared<spdlog::logger>(
        "gilmour-cli", std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
    l->set_pattern("gilmour: [%l] %v");
    return l;
  }();
  logger->set_level(g.verbose ? spdlog::level::debug : spdlog::level::warn);
  EngineOptions o;
  o.logger = logger;
  o.worker_threads = 4;
  // A little more than the backend's own connect timeout, so that its
  // precise error ("Connection refused", "WRONGPASS") is what start() reports.
  o.connect_timeout = std::chrono::milliseconds(g.connect_timeout_ms + 1000);
  o.drain_timeout = std::chrono::seconds(5);
  o.error_policy = ErrorPolicy::kIgnore;
  return o;
}

std::unique_ptr<Gilmour> make_engine(const Global& g, EngineOptions options) {
  try {
    auto ro = redis::Options::from_url(g.url);
    ro.connect_timeout = std::chrono::milliseconds(g.connect_timeout_ms);
    return std::make_unique<Gilmour>(redis::make_backend(ro), std::move(options));
  } catch (const InvalidArgument& e) {
    throw Failure(kExitUsage, plain(e.what()));  // the library redacts the password
  }
}

void start_engine(Gilmour& engine, const Global& g) {
  try {
    engine.start();
  } catch (const ConnectionError& e) {
    throw Failure(kExitUnreachable, "cannot connect to Redis at " + redis::redact_url(g.url) +
                                        ": " + plain(e.what()));
  }
}

nlohmann::json parse_data(const std::string& text, bool as_string) {
  std::string s = text;
  if (text == "-") {
    s.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  }
  if (as_string) return s;
  auto j = nlohmann::json::parse(s, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return s;
  return j;
}

std::string dump(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string text_of(const nlohmann::json& j) {
  if (j.is_string()) return j.get<std::string>();
  return dump(j);
}

std::string timestamp(std::chrono::system_clock::time_point t) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(ms % 1000));
  return buf;
}

ChannelInfo classify_channel(std::string_view channel) {
  struct Prefix {
    std::string_view prefix, kind;
    bool strip;
  };
  static constexpr Prefix kPrefixes[] = {
      {"gilmour.request.", "request", true},   {"gilmour.slot.", "signal", true},
      {"gilmour.response.", "response", true}, {"gilmour.health.", "health", false},
      {"gilmour.error", "error", false},
  };
  for (auto& p : kPrefixes) {
    if (starts_with(channel, p.prefix)) {
      return {std::string(p.kind),
              std::string(p.strip ? channel.substr(p.prefix.size()) : channel)};
    }
  }
  return {"message", std::string(channel)};
}

std::string describe_channel(std::string_view channel) {
  auto info = classify_channel(channel);
  if (info.kind == "request") return info.topic;
  if (info.kind == "signal") return info.topic + " (slot)";
  return std::string(channel);
}

// ---------------------------------------------------------------- stop

namespace stop {
namespace {
// Never destroyed: the signal thread may still use it while main() returns.
struct State {
  std::mutex mu;
  std::condition_variable cv;
  bool requested = false;
  bool by_signal = false;
  std::atomic<bool> graceful{false};
};
State& state() {
  static State* s = new State;  // NOLINT(cppcoreguidelines-owning-memory): see above
  return *s;
}
}  // namespace

void install() {
  ::signal(SIGPIPE, SIG_IGN);  // a closed stdout is an error on write, not a death
  state();                     // constructed before the thread starts
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::thread([set] {
    for (;;) {
      int sig = 0;
      if (sigwait(&set, &sig) != 0) continue;
      auto& st = state();
      std::lock_guard<std::mutex> lock(st.mu);
      if (!st.graceful.load() || st.by_signal) {
        std::fflush(stdout);
        std::_Exit(kExitInterrupted);
      }
      st.requested = true;
      st.by_signal = true;
      st.cv.notify_all();
    }
  }).detach();
}

void graceful(bool on) { state().graceful.store(on); }

void request() {
  auto& st = state();
  std::lock_guard<std::mutex> lock(st.mu);
  st.requested = true;
  st.cv.notify_all();
}

bool requested() {
  auto& st = state();
  std::lock_guard<std::mutex> lock(st.mu);
  return st.requested;
}

bool wait_for(std::chrono::milliseconds d) {
  auto& st = state();
  std::unique_lock<std::mutex> lock(st.mu);
  return st.cv.wait_for(lock, d, [&] { return st.requested; });
}

void wait() {
  auto& st = state();
  std::unique_lock<std::mutex> lock(st.mu);
  st.cv.wait(lock, [&] { return st.requested; });
}

bool by_signal() {
  auto& st = state();
  std::lock_guard<std::mutex> lock(st.mu);
  return st.by_signal;
}
}  // namespace stop

}  // namespace gilmour::cli
