// `gilmour stats [IDENT] [--prometheus]`: asks gilmour.stats.<ident> (our
// extension, answered by gilmour-cpp processes with health checks on) of one
// or every registered process, and prints the counters.
#include <iostream>

#include "commands.hpp"

namespace gilmour::cli {

namespace {

void print_one(const std::string& ident, const Message& m, const StatsArgs& a) {
  if (a.prometheus) {
    std::cout << to_prometheus(stats_from_json(m.data().value("stats", nlohmann::json())), ident);
  } else if (a.json) {
    std::cout << m.data().dump() << "\n";
  } else {
    std::cout << ident << "\n";
    const auto counters = m.data().value("stats", nlohmann::json::object());
    for (auto& [name, value] : counters.items()) {
      std::cout << "  " << name << " " << value.dump() << "\n";
    }
  }
}

}  // namespace

int run_stats(const Global& g, const StatsArgs& a) {
  auto engine = make_engine(g, engine_options(g));
  start_engine(*engine, g);
  std::vector<std::string> idents;
  if (!a.ident.empty()) {
    idents.push_back(a.ident);
  } else {
    for (auto& [ident, state] : engine->known_hosts().get()) idents.push_back(ident);
  }
  auto ro = RequestOptions{}
                .set_timeout(std::chrono::milliseconds(a.timeout_ms))
                .set_confirm_subscribers();
  std::vector<std::pair<std::string, std::future<Message>>> asked;
  for (auto& ident : idents) {
    asked.emplace_back(ident, engine->request("gilmour.stats." + ident, nullptr, ro));
  }
  int code = kExitOk;
  for (auto& [ident, f] : asked) {
    auto m = f.get();
    if (!m.ok()) {
      // Go and Ruby processes do not answer (404): not an error of theirs.
      std::cerr << "gilmour: " << ident << ": no stats (" << m.code() << " " << m.error_text()
                << ")\n";
      if (!a.ident.empty()) code = kExitFailed;
      continue;
    }
    print_one(ident, m, a);
  }
  engine->stop();
  return code;
}

}  // namespace gilmour::cli
