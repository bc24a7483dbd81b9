// Test time bounds that scale with the machine: every upper bound and wait of
// the suites goes through scaled(), multiplied by one factor:
// $GILMOUR_TEST_TIME_FACTOR when set (a positive number), else the build's
// default (1, or 5 when built with a sanitizer; see docs/testing.md).
// Lower bounds ("took at least 250 ms") and "not yet" checks are not scaled.
#pragma once

#include <chrono>
#include <cmath>
#include <cstdint>

namespace gilmour::test {

/// The factor: $GILMOUR_TEST_TIME_FACTOR (parsed once; a value that is not a
/// positive number is ignored with a warning on stderr), else
/// GILMOUR_TEST_DEFAULT_TIME_FACTOR from the build.
double time_factor();

/// `d` multiplied by time_factor(), rounded up to a millisecond.
template <typename Rep, typename Period>
std::chrono::milliseconds scaled(std::chrono::duration<Rep, Period> d) {
  double ms = std::chrono::duration<double, std::milli>(d).count() * time_factor();
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::ceil(ms)));
}

}  // namespace gilmour::test
