// gilmour bench request|signal|reply TOPIC: load with K operations in
// flight, a live progress line on a terminal, and a summary.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <iostream>
#include <map>
#include <mutex>

#include "commands.hpp"

namespace gilmour::cli {

namespace {

using Clock = std::chrono::steady_clock;

/// One chain of operations: the next starts when the previous completed, so
/// a lane's fields are only touched by one operation at a time.
struct Lane {
  std::vector<double> latencies_ms;
  long long ok = 0;
  long long failed = 0;
  long long receivers = 0;
  std::map<int, long long> codes;
};

double percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  auto rank = static_cast<std::size_t>(std::ceil(p * static_cast<double>(sorted.size())));
  return sorted[std::min(sorted.size() - 1, rank == 0 ? 0 : rank - 1)];
}

std::string fixed(double v, int digits = 3) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

class Progress {
 public:
  Progress() : tty_(::isatty(2) == 1) {}
  void show(double elapsed_s, long long done, long long failed, const char* unit) {
    if (!tty_) return;
    double rate = elapsed_s > 0 ? static_cast<double>(done) / elapsed_s : 0;
    std::fprintf(stderr, "\r\033[K%6.1fs  %lld %s  %.0f/s  %lld failed", elapsed_s, done, unit,
                 rate, failed);
    std::fflush(stderr);
  }
  void clear() {
    if (!tty_) return;
    std::fprintf(stderr, "\r\033[K");
    std::fflush(stderr);
  }

 private:
  bool tty_;
};

/// Runs until the duration passed or a stop was requested, showing progress.
double run_for(double duration_s, const std::atomic<long long>& done,
               const std::atomic<long long>& failed, const char* unit) {
  Progress progress;
  auto start = Clock::now();
  auto end = duration_s > 0 ? start + std::chrono::duration_cast<Clock::duration>(
                                          std::chrono::duration<double>(duration_s))
                            : Clock::time_point::max();
  for (;;) {
    auto now = Clock::now();
    if (now >= end) break;
    auto step = std::chrono::milliseconds(1000);
    if (end != Clock::time_point::max()) {
      step = std::min(step, std::chrono::duration_cast<std::chrono::milliseconds>(end - now) +
                                std::chrono::milliseconds(1));
    }
    if (stop::wait_for(step)) break;
    progress.show(std::chrono::duration<double>(Clock::now() - start).count(), done.load(),
                  failed.load(), unit);
  }
  progress.clear();
  return std::chrono::duration<double>(Clock::now() - start).count();
}

/// Issues operations on `inflight` lanes until told to stop, then waits for
/// the last ones to complete.
class Driver {
 public:
  using Op = std::function<void(Lane&, std::function<void()> next)>;
  explicit Driver(int inflight) : lanes_(static_cast<std::size_t>(inflight)) {}
  void set_op(Op op) { op_ = std::move(op); }

  void start() {
    active_ = static_cast<int>(lanes_.size());
    for (auto& l : lanes_) issue(l);
  }
  /// Stops issuing; true when every lane completed within `wait`.
  bool finish(std::chrono::milliseconds wait) {
    stopping_ = true;
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, wait, [&] { return active_ == 0; });
  }
  std::vector<Lane>& lanes() { return lanes_; }
  std::atomic<long long> done{0};
  std::atomic<long long> failed{0};

 private:
  void issue(Lane& l) {
    if (stopping_.load()) {
      std::lock_guard<std::mutex> lock(mu_);
      if (--active_ == 0) cv_.notify_all();
      return;
    }
    op_(l, [this, &l] { issue(l); });
  }
  std::vector<Lane> lanes_;
  Op op_;
  std::atomic<bool> stopping_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  int active_ = 0;
};

void summarize(const BenchArgs& a, double elapsed, std::vector<Lane>& lanes, const char* unit) {
  std::vector<double> lat;
  long long ok = 0, failed = 0, receivers = 0;
  std::map<int, long long> codes;
  for (auto& l : lanes) {
    lat.insert(lat.end(), l.latencies_ms.begin(), l.latencies_ms.end());
    ok += l.ok;
    failed += l.failed;
    receivers += l.receivers;
    for (auto& [c, n] : l.codes) codes[c] += n;
  }
  std::sort(lat.begin(), lat.end());
  long long total = ok + failed;
  double rate = elapsed > 0 ? static_cast<double>(total) / elapsed : 0;
  double p50 = percentile(lat, 0.50), p90 = percentile(lat, 0.90), p99 = percentile(lat, 0.99);
  double max = lat.empty() ? 0 : lat.back();
  if (a.json) {
    nlohmann::json c = nlohmann::json::object();
    for (auto& [code, n] : codes) c[std::to_string(code)] = n;
    nlohmann::json j = {
        {"mode", a.mode}, {"topic", a.topic}, {"duration_s", elapsed}, {"inflight", a.inflight},
        {"total", total}, {"ok", ok},         {"failed", failed},      {"rate", rate},
        {"p50_ms", p50},  {"p90_ms", p90},    {"p99_ms", p99},         {"max_ms", max},
        {"codes", c}};
    if (a.mode == "signal") {
      j["receivers_avg"] = total ? static_cast<double>(receivers) / static_cast<double>(total) : 0;
    }
    std::cout << dump(j) << std::endl;
    return;
  }
  std::cout << "bench " << a.mode << " " << a.topic << ": " << total << " " << unit << " in "
            << fixed(elapsed, 2) << " s with " << a.inflight << " in flight\n"
            << "  " << fixed(rate, 0) << " " << unit << "/s, " << ok << " ok, " << failed
            << " failed";
  if (!codes.empty() && a.mode == "request") {
    std::cout << " (codes:";
    for (auto& [code, n] : codes) std::cout << " " << code << "x" << n;
    std::cout << ")";
  }
  if (a.mode == "signal" && total) {
    std::cout << ", " << fixed(static_cast<double>(receivers) / static_cast<double>(total), 2)
              << " receivers each";
  }
  std::cout << "\n  latency ms: p50 " << fixed(p50) << "  p90 " << fixed(p90) << "  p99 "
            << fixed(p99) << "  max " << fixed(max) << std::endl;
}

nlohmann::json payload(const BenchArgs& a) {
  if (a.size >= 0) return std::string(static_cast<std::size_t>(a.size), 'x');
  return parse_data(a.data);
}

int bench_request(const BenchArgs& a, Gilmour& engine) {
  auto listeners = engine.listener_count(a.topic).get();
  if (listeners == 0) {
    throw Failure(kExitFailed, "bench request: nobody listens on " + a.topic +
                                   " (for a test replier: gilmour bench reply " + a.topic + ")");
  }
  auto data = payload(a);
  RequestOptions ro;
  ro.timeout = std::chrono::milliseconds(a.timeout_ms);
  ro.confirm_subscribers = true;
  Driver driver(a.inflight);
  driver.set_op([&](Lane& l, std::function<void()> next) {
    auto t0 = Clock::now();
    engine.request(
        a.topic, data,
        [&driver, &l, t0, next = std::move(next)](Message m) {
          l.latencies_ms.push_back(
              std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
          ++l.codes[m.code()];
          if (m.ok()) {
            ++l.ok;
          } else {
            ++l.failed;
            driver.failed.fetch_add(1);
          }
          driver.done.fetch_add(1);
          next();
        },
        ro);
  });
  driver.start();
  double elapsed = run_for(a.duration_s > 0 ? a.duration_s : 5, driver.done, driver.failed, "req");
  if (!driver.finish(std::chrono::milliseconds(a.timeout_ms) + std::chrono::seconds(10))) {
    throw Failure(kExitFailed, "bench request: requests still pending after their timeout");
  }
  summarize(a, elapsed, driver.lanes(), "req");
  long long failed = driver.failed.load();
  return failed == 0 && driver.done.load() > 0 ? kExitOk : kExitFailed;
}

int bench_signal(const BenchArgs& a, Gilmour& engine) {
  auto data = payload(a);
  Driver driver(a.inflight);
  driver.set_op([&](Lane& l, std::function<void()> next) {
    auto t0 = Clock::now();
    engine.signal(a.topic, data, [&driver, &l, t0, next = std::move(next)](const SignalResult& r) {
      l.latencies_ms.push_back(
          std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
      if (r.ok()) {
        ++l.ok;
        l.receivers += r.receivers;
      } else {
        ++l.failed;
        driver.failed.fetch_add(1);
      }
      driver.done.fetch_add(1);
      next();
    });
  });
  driver.start();
  double elapsed = run_for(a.duration_s > 0 ? a.duration_s : 5, driver.done, driver.failed, "sig");
  if (!driver.finish(std::chrono::seconds(30))) {
    throw Failure(kExitFailed, "bench signal: publishes still pending");
  }
  summarize(a, elapsed, driver.lanes(), "signals");
  return driver.failed.load() == 0 && driver.done.load() > 0 ? kExitOk : kExitFailed;
}

}  // namespace

int run_bench(const Global& g, const BenchArgs& a) {
  auto opts = engine_options(g);
  auto engine = make_engine(g, std::move(opts));
  std::atomic<long long> served{0};
  Subscription sub;
  if (a.mode == "reply") {
    if (a.topic.find('*') != std::string::npos) {
      throw Failure(kExitUsage, "bench reply: a reply topic may not contain '*'");
    }
    sub = engine->reply_to(a.topic, [&served](const Request& req, Response& res) {
      res.set_data(req.data());
      served.fetch_add(1, std::memory_order_relaxed);
    });
  }
  start_engine(*engine, g);
  stop::graceful(true);
  int code = kExitOk;
  if (a.mode == "request") {
    code = bench_request(a, *engine);
  } else if (a.mode == "signal") {
    code = bench_signal(a, *engine);
  } else {
    std::atomic<long long> none{0};
    std::cerr << "gilmour: bench reply serving " << a.topic << std::endl;
    double elapsed = run_for(a.duration_s, served, none, "replies");
    long long n = served.load();
    if (a.json) {
      std::cout << dump({{"mode", "reply"},
                         {"topic", a.topic},
                         {"duration_s", elapsed},
                         {"served", n},
                         {"rate", elapsed > 0 ? static_cast<double>(n) / elapsed : 0}})
                << std::endl;
    } else {
      std::cout << "bench reply " << a.topic << ": " << n << " requests served in "
                << fixed(elapsed, 2) << " s, " << fixed(elapsed > 0 ? n / elapsed : 0, 0)
                << " req/s" << std::endl;
    }
  }
  sub.cancel();
  engine->stop();
  return code;
}

}  // namespace gilmour::cli
