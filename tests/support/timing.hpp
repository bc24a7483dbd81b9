// Test time bounds that scale with the machine: every upper bound and wait of
// the suites goes through scaled(), multiplied by one factor:
// $GILMOUR_TEST_TIME_FACTOR when set (a positive number), else the build's
// default (1, or 5 when built with a sanitizer; see docs/testing.md).
// Lower bounds ("took at least 250 ms") and "not yet" checks are not scaled.
// Also the suites' one polling wait (eventually()) and their one way to let
// time pass (let_time_pass()).
//
// Header-only, so that programs compiling single support sources (bench/)
// need nothing more.
#pragma once

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <thread>

// Set by tests/CMakeLists.txt (PUBLIC on gilmour_test_support).
#ifndef GILMOUR_TEST_DEFAULT_TIME_FACTOR
#define GILMOUR_TEST_DEFAULT_TIME_FACTOR 1
#endif

namespace gilmour::test {

/// The factor: $GILMOUR_TEST_TIME_FACTOR (read once; a value that is not a
/// positive number is ignored with a warning on stderr), else
/// GILMOUR_TEST_DEFAULT_TIME_FACTOR from the build.
inline double time_factor() {
  static const double factor = [] {
    double f = GILMOUR_TEST_DEFAULT_TIME_FACTOR;
    if (const char* env = std::getenv("GILMOUR_TEST_TIME_FACTOR"); env && *env) {
      char* end = nullptr;
      double v = std::strtod(env, &end);
      if (end && *end == '\0' && v > 0 && std::isfinite(v)) {
        f = v;
      } else {
        std::fprintf(
            stderr, "gilmour tests: ignoring GILMOUR_TEST_TIME_FACTOR=%s (not a positive number)\n",
            env);
      }
    }
    return f;
  }();
  return factor;
}

/// `d` multiplied by time_factor(), rounded up to a millisecond.
template <typename Rep, typename Period>
std::chrono::milliseconds scaled(std::chrono::duration<Rep, Period> d) {
  double ms = std::chrono::duration<double, std::milli>(d).count() * time_factor();
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::ceil(ms)));
}

/// Polls `pred` every `interval` until it holds or scaled(`timeout`) has
/// passed; returns whether it held. The suite's one polling wait, for
/// conditions nothing signals: an engine's counters, another process's state
/// (a sentinel's view, a server's command counts), a thread exiting. Where a
/// condition can be waited on (a future, a condition variable, a log line, a
/// FIFO), wait on that instead.
template <typename Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout = std::chrono::seconds(10),
                std::chrono::milliseconds interval = std::chrono::milliseconds(5)) {
  const auto until = std::chrono::steady_clock::now() + scaled(timeout);
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(interval);
  }
  return true;
}

/// Lets `d` of real time pass on this thread: a handler's simulated work, a
/// fault's outage, traffic before or after a fault. It models elapsed time,
/// never synchronisation: to wait for something, wait on it (eventually(), a
/// future, a condition variable, a log line). With eventually()'s interval,
/// the suites' only sleep.
template <typename Rep, typename Period>
void let_time_pass(std::chrono::duration<Rep, Period> d) {
  std::this_thread::sleep_for(d);
}

}  // namespace gilmour::test
