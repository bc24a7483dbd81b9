// gilmour-chaos: proof tools for the Redis backend (docs/reliability.md).
//
//   gilmour-chaos chaos [--faults a,b] [--rate N] [--signal-every K] [--timeout-ms T]
//                       [--steady-ms S]
//   gilmour-chaos soak [--requests N] [--inflight K] [--sample-ms MS]
//                      [--max-rss-growth-mib M] [--max-fd-growth F]
//   gilmour-chaos replier ...   (a child role; see roles.hpp)
//
// Both runs start their own redis-server on a free loopback port
// (GILMOUR_REDIS_SERVER overrides the binary) and scale their time bounds by
// GILMOUR_TEST_TIME_FACTOR (docs/testing.md).
#include <iostream>

#include "chaos/roles.hpp"

namespace gilmour::chaos {

Args::Args(const std::vector<std::string>& argv) {
  for (std::size_t i = 0; i < argv.size(); ++i) {
    if (argv[i].rfind("--", 0) != 0) continue;
    std::string name = argv[i].substr(2);
    bool has_value = i + 1 < argv.size() && argv[i + 1].rfind("--", 0) != 0;
    values_[name] = has_value ? argv[++i] : "";
  }
}

std::string Args::get(const std::string& name, const std::string& fallback) const {
  auto it = values_.find(name);
  return it == values_.end() ? fallback : it->second;
}

long long Args::number(const std::string& name, long long fallback) const {
  auto it = values_.find(name);
  return it == values_.end() ? fallback : std::stoll(it->second);
}

}  // namespace gilmour::chaos

int main(int argc, char** argv) {
  using namespace gilmour::chaos;
  std::string role = argc > 1 ? argv[1] : "";
  Args args(std::vector<std::string>(argv + (argc > 1 ? 2 : 1), argv + argc));
  try {
    if (role == "chaos") return chaos_main(args);
    if (role == "soak") return soak_main(args);
    if (role == "replier") return replier_main(args);
  } catch (const std::exception& e) {
    std::cerr << "gilmour-chaos " << role << ": " << e.what() << "\n";
    return 2;
  }
  std::cerr << "usage: gilmour-chaos chaos|soak [options]   (see docs/reliability.md)\n";
  return 2;
}
