// Shared pieces of the benchmarks: latency windows, percentiles, the
// argument map of a role, RESULT lines between processes, RSS.
//
// Thread safety: Window::record may be called from any thread; the rest is
// used by one thread.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace spdlog {
class logger;
}

namespace gilmour::bench {

using Clock = std::chrono::steady_clock;

/// What one closed-loop run measured.
struct Result {
  double throughput = 0;  ///< completions per second inside the window
  double p50_us = 0;
  double p99_us = 0;
  std::size_t errors = 0;  ///< completions that were not a success
};

/// The p-quantile (0..1) of `v` (reordered).
double percentile(std::vector<std::uint32_t>& v, double p);

/// Collects latencies during the measuring window of a closed-loop run.
struct Window {
  std::atomic<bool> measuring{false};
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::vector<std::uint32_t> lat_us;
  std::size_t errors = 0;

  /// One completion of a request sent at `t0`.
  void record(Clock::time_point t0, bool ok);
  /// Sleeps `warmup`, measures for `seconds`, then sets `stop`.
  Result measure(std::chrono::duration<double> warmup, std::chrono::duration<double> seconds);
};

class Args;

/// A closed-loop requester role's run: `w.measure()` over the role's
/// --warmup (default 0.3 s) and --seconds (default 1), then its RESULT line
/// (rps, p50_us, p99_us, errors; `extra_errors()`, called after the window,
/// is added to the errors).
Result measure_and_report(Window& w, const Args& a,
                          const std::function<std::size_t()>& extra_errors = nullptr);

/// "--key value" arguments; a "--flag" without a value maps to "1".
class Args {
 public:
  Args(int argc, char** argv, int first);
  std::string str(const std::string& key, const std::string& fallback = "") const;
  double num(const std::string& key, double fallback) const;
  bool has(const std::string& key) const { return values_.count(key) != 0; }

 private:
  std::map<std::string, std::string> values_;
};

/// A result line between processes: "RESULT k=v k=v ...".
using Fields = std::map<std::string, double>;
void print_result(const Fields& fields);
/// The fields of the last RESULT line of `out` (empty when there is none).
Fields parse_result(const std::string& out);

/// Per field, the median over `runs` (a field missing from a run counts as 0).
Fields median(const std::vector<Fields>& runs);

/// Resident set size of `pid` (0: this process) in KiB, from /proc.
long rss_kib(pid_t pid = 0);

/// A logger that drops everything (benchmarks must not pay for logging).
std::shared_ptr<spdlog::logger> quiet_logger();

/// Counts deliveries (any thread); report_when_quiet prints, once they
/// started and then none arrived for `quiet`, the count and the rate between
/// the first and the last.
class DeliveryCounter {
 public:
  void hit();
  void report_when_quiet(std::chrono::milliseconds quiet, std::chrono::seconds give_up);

 private:
  std::mutex mu_;
  long count_ = 0;
  Clock::time_point first_, last_;
};

/// Prints READY (flushed): a server-like role serves.
void say_ready();
/// Blocks until the process is killed (server-like roles after READY).
[[noreturn]] void serve_forever();

/// Clamps a sample of `us` microseconds into the uint32 range. of `us` microseconds into the uint32
/// range.
std::uint32_t clamp_us(long long us);

}  // namespace gilmour::bench
