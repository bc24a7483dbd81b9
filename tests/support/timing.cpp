#include "support/timing.hpp"

#include <cstdio>
#include <cstdlib>
#include <string>

#ifndef GILMOUR_TEST_DEFAULT_TIME_FACTOR
#define GILMOUR_TEST_DEFAULT_TIME_FACTOR 1
#endif

namespace gilmour::test {

double time_factor() {
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

}  // namespace gilmour::test
