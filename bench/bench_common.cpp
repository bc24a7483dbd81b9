#include "bench_common.hpp"

#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <sstream>
#include <thread>

namespace gilmour::bench {

double percentile(std::vector<std::uint32_t>& v, double p) {
  if (v.empty()) return 0;
  auto k = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

std::uint32_t clamp_us(long long us) {
  return static_cast<std::uint32_t>(
      std::clamp<long long>(us, 0, std::numeric_limits<std::uint32_t>::max()));
}

void Window::record(Clock::time_point t0, bool ok) {
  if (!measuring.load(std::memory_order_relaxed)) return;
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count();
  std::lock_guard<std::mutex> lock(mu);
  if (ok) {
    lat_us.push_back(clamp_us(us));
  } else {
    ++errors;
  }
}

Result Window::measure(std::chrono::duration<double> warmup,
                       std::chrono::duration<double> seconds) {
  std::this_thread::sleep_for(warmup);  // a benchmark's warm-up, not a test's synchronisation
  auto t0 = Clock::now();
  measuring.store(true);
  std::this_thread::sleep_for(seconds);
  measuring.store(false);
  auto took = std::chrono::duration<double>(Clock::now() - t0).count();
  stop.store(true);
  std::lock_guard<std::mutex> lock(mu);
  Result r;
  r.throughput = static_cast<double>(lat_us.size()) / took;
  r.p50_us = percentile(lat_us, 0.50);
  r.p99_us = percentile(lat_us, 0.99);
  r.errors = errors;
  return r;
}

Args::Args(int argc, char** argv, int first) {
  for (int i = first; i < argc; ++i) {
    std::string key = argv[i];
    if (key.rfind("--", 0) != 0) continue;
    key = key.substr(2);
    if (i + 1 < argc && std::string(argv[i + 1]).rfind("--", 0) != 0) {
      values_[key] = argv[++i];
    } else {
      values_[key] = "1";
    }
  }
}

std::string Args::str(const std::string& key, const std::string& fallback) const {
  auto it = values_.find(key);
  return it == values_.end() ? fallback : it->second;
}

double Args::num(const std::string& key, double fallback) const {
  auto it = values_.find(key);
  return it == values_.end() ? fallback : std::atof(it->second.c_str());
}

void print_result(const Fields& fields) {
  std::printf("RESULT");
  for (const auto& [k, v] : fields) std::printf(" %s=%.3f", k.c_str(), v);
  std::printf("\n");
  std::fflush(stdout);
}

Result measure_and_report(Window& w, const Args& a,
                          const std::function<std::size_t()>& extra_errors) {
  Result r = w.measure(std::chrono::duration<double>(a.num("warmup", 0.3)),
                       std::chrono::duration<double>(a.num("seconds", 1)));
  const std::size_t extra = extra_errors ? extra_errors() : 0;
  print_result({{"rps", r.throughput},
                {"p50_us", r.p50_us},
                {"p99_us", r.p99_us},
                {"errors", static_cast<double>(r.errors + extra)}});
  return r;
}

Fields parse_result(const std::string& out) {
  Fields f;
  auto at = out.rfind("RESULT ");
  if (at == std::string::npos) return f;
  std::istringstream line(out.substr(at + 7, out.find('\n', at) - at - 7));
  std::string kv;
  while (line >> kv) {
    auto eq = kv.find('=');
    if (eq != std::string::npos) f[kv.substr(0, eq)] = std::atof(kv.c_str() + eq + 1);
  }
  return f;
}

Fields median(const std::vector<Fields>& runs) {
  Fields out;
  for (const auto& run : runs) {
    for (const auto& kv : run) out[kv.first] = 0;
  }
  for (auto& [key, value] : out) {
    std::vector<double> v;
    for (const auto& run : runs) {
      auto it = run.find(key);
      v.push_back(it == run.end() ? 0 : it->second);
    }
    std::sort(v.begin(), v.end());
    value = v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
  }
  return out;
}

long rss_kib(pid_t pid) {
  std::ifstream in(pid ? "/proc/" + std::to_string(pid) + "/status" : "/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  }
  return -1;
}

std::shared_ptr<spdlog::logger> quiet_logger() {
  return std::make_shared<spdlog::logger>("bench", std::make_shared<spdlog::sinks::null_sink_mt>());
}

void DeliveryCounter::hit() {
  auto now = Clock::now();
  std::lock_guard<std::mutex> lock(mu_);
  if (count_++ == 0) first_ = now;
  last_ = now;
}

void DeliveryCounter::report_when_quiet(std::chrono::milliseconds quiet,
                                        std::chrono::seconds give_up) {
  auto deadline = Clock::now() + give_up;
  for (;;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // polling the counter
    std::lock_guard<std::mutex> lock(mu_);
    if ((count_ > 0 && Clock::now() - last_ > quiet) || Clock::now() > deadline) break;
  }
  std::lock_guard<std::mutex> lock(mu_);
  double span = std::chrono::duration<double>(last_ - first_).count();
  print_result({{"delivered", static_cast<double>(count_)},
                {"rate", span > 0 ? static_cast<double>(count_) / span : 0}});
}

void say_ready() {
  std::printf("READY\n");
  std::fflush(stdout);
}

void serve_forever() {
  for (;;) ::pause();
}

}  // namespace gilmour::bench
