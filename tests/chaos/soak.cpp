// The soak run: N requests (default 1,000,000) from this process to a
// replier process over a private redis-server, K in flight, sampling the
// resident set size and open file descriptors of both processes every few
// seconds. Prints the samples' start / after warm-up / peak / end figures
// and Redis's key count and memory before and after.
//
// Exit status: 0 when every request was answered 200 and, for both
// processes, RSS grew by at most --max-rss-growth-mib (default 16) and the
// fd count by at most --max-fd-growth (default 4) between the end of the
// warm-up (the first 10% of the requests) and the end; 1 otherwise; 2 when
// the run could not be set up.
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <functional>
#include <iostream>
#include <map>
#include <mutex>

#include "chaos/env.hpp"
#include "chaos/redis_admin.hpp"
#include "support/timing.hpp"

namespace gilmour::chaos {

namespace {

using namespace std::chrono_literals;
using test::scaled;
using Clock = std::chrono::steady_clock;

struct Sample {
  std::int64_t rss_kib = 0;
  std::int64_t fds = 0;
};

/// The samples of one process: first, at the end of the warm-up, peak after
/// the warm-up, last.
struct Series {
  Sample start, warm, peak, end;
  bool warmed = false;
  void add(const Sample& s, bool warm_done) {
    if (start.rss_kib == 0) start = s;
    if (warm_done && !warmed) {
      warm = s;
      warmed = true;
    }
    if (warmed && s.rss_kib > peak.rss_kib) peak = s;
    if (warmed && s.fds > peak.fds) peak.fds = s.fds;
    end = s;
  }
};

std::string mib(std::int64_t kib) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", static_cast<double>(kib) / 1024.0);
  return buf;
}

/// The requests, closed loop: each completion sends the next.
class Load {
 public:
  Load(Gilmour& g, std::string topic, std::int64_t total)
      : g_(g), topic_(std::move(topic)), total_(total) {}
  void start(int inflight) {
    for (int i = 0; i < inflight; ++i) send();
  }
  /// Waits until every request completed, for at most `timeout`.
  bool wait(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [this] { return completed_ == total_; });
  }
  std::int64_t sent() const { return next_.load(); }
  std::int64_t completed() {
    std::lock_guard<std::mutex> lock(mu_);
    return completed_;
  }
  std::map<int, std::int64_t> failures() {
    std::lock_guard<std::mutex> lock(mu_);
    return failures_;
  }

 private:
  void send() {
    std::int64_t id = next_++;
    if (id >= total_) return;
    try {
      g_.request(
          topic_, id, [this, id](const Message& m) { done(id, m); },
          RequestOptions{}.set_timeout(scaled(30s)));
    } catch (const std::exception&) {
      done(id, Message(nullptr, -1));
    }
  }
  void done(std::int64_t id, const Message& m) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++completed_;
      if (!m.ok() || m.data() != nlohmann::json(id)) ++failures_[m.ok() ? 0 : m.code()];
      if (completed_ == total_) cv_.notify_all();
    }
    send();
  }
  Gilmour& g_;
  std::string topic_;
  std::int64_t total_;
  std::atomic<std::int64_t> next_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  std::int64_t completed_ = 0;
  std::map<int, std::int64_t> failures_;  // code (0: wrong data, -1: threw) -> count
};

std::string redis_figures(int port) {
  auto keys = redis_command(port, {"DBSIZE"}, scaled(5s));
  auto info = redis_command(port, {"INFO", "memory"}, scaled(5s));
  return (keys ? *keys : "?") + " keys, used_memory " +
         (info ? info_field(*info, "used_memory_human") : "?");
}

}  // namespace

int soak_main(const Args& args) {
  const std::int64_t total = args.number("requests", 1000000);
  const int inflight = static_cast<int>(args.number("inflight", 32));
  const auto every = std::chrono::milliseconds(args.number("sample-ms", 2000));
  const std::int64_t max_rss_kib = args.number("max-rss-growth-mib", 16) * 1024;
  const std::int64_t max_fds = args.number("max-fd-growth", 4);

  Env env("gilmour-soak");
  if (!env.start()) return 2;
  auto replier = env.spawn_replier("replier", false);
  auto g = env.requester(2);
  if (!g) return 2;
  if (!wait_listeners(*g, "gilmour.request." + env.topics().request, at_least(1), 30s)) {
    std::cerr << "gilmour-soak: the replier did not subscribe (log in " << env.dir() << ")\n";
    env.keep();
    return 2;
  }
  std::cout << "gilmour-soak: " << describe_machine(env.redis().port()) << "\n"
            << total << " requests, " << inflight
            << " in flight; redis before: " << redis_figures(env.redis().port()) << "\n"
            << std::flush;

  Load load(*g, env.topics().request, total);
  Series me, peer;
  const std::int64_t warmup = total / 10;
  auto sample = [&] {
    bool warm = load.completed() >= warmup;
    me.add({rss_kib(::getpid()), fd_count(::getpid())}, warm);
    peer.add({rss_kib(replier->pid()), fd_count(replier->pid())}, warm);
  };
  sample();
  auto t0 = Clock::now();
  load.start(inflight);
  auto next_print = t0;
  while (!load.wait(every)) {
    sample();
    if (Clock::now() >= next_print) {
      std::printf("  %7.1f s  %8lld done  requester %s MiB %lld fds  replier %s MiB %lld fds\n",
                  std::chrono::duration<double>(Clock::now() - t0).count(),
                  static_cast<long long>(load.completed()), mib(me.end.rss_kib).c_str(),
                  static_cast<long long>(me.end.fds), mib(peer.end.rss_kib).c_str(),
                  static_cast<long long>(peer.end.fds));
      std::fflush(stdout);
      next_print += 30s;
    }
  }
  double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  sample();
  auto failures = load.failures();
  std::int64_t failed = 0;
  for (auto& [c, n] : failures) failed += n;
  std::printf("%lld requests in %.1f s (%.0f/s), %lld failed",
              static_cast<long long>(load.completed()), secs,
              static_cast<double>(load.completed()) / secs, static_cast<long long>(failed));
  for (auto& [c, n] : failures) std::printf(" %d:%lld", c, static_cast<long long>(n));
  std::printf("\nredis after: %s\n", redis_figures(env.redis().port()).c_str());
  std::printf("%-10s %10s %10s %10s %10s %8s   %s\n", "process", "start MiB", "warm MiB",
              "peak MiB", "end MiB", "growth", "fds start/warm/peak/end");
  bool ok = failed == 0 && load.completed() == total;
  for (auto [name, s] : {std::pair<const char*, Series*>{"requester", &me}, {"replier", &peer}}) {
    std::int64_t growth = s->end.rss_kib - s->warm.rss_kib;
    std::string grew = (growth >= 0 ? "+" : "") + mib(growth);
    std::printf("%-10s %10s %10s %10s %10s %8s   %lld/%lld/%lld/%lld\n", name,
                mib(s->start.rss_kib).c_str(), mib(s->warm.rss_kib).c_str(),
                mib(s->peak.rss_kib).c_str(), mib(s->end.rss_kib).c_str(), grew.c_str(),
                static_cast<long long>(s->start.fds), static_cast<long long>(s->warm.fds),
                static_cast<long long>(s->peak.fds), static_cast<long long>(s->end.fds));
    ok = ok && growth <= max_rss_kib && s->end.fds - s->warm.fds <= max_fds;
  }
  g->stop();
  replier->stop(scaled(30s));
  std::printf("%s\n", ok ? "PASSED" : "FAILED: failed requests, or RSS/fd growth past the limits");
  return ok ? 0 : 1;
}

}  // namespace gilmour::chaos
