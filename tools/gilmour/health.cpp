// gilmour health [--watch]: every process registered in
// gilmour.known_host.health, its topics, and whether it answers a ping now.
#include <spdlog/spdlog.h>

#include <iostream>

#include "commands.hpp"

namespace gilmour::cli {

namespace {

bool all_answered(const HealthReport& r) {
  for (auto& p : r.processes)
    if (!p.responded) return false;
  return r.essential_unheard.empty();
}

void print_text(const HealthReport& r) {
  std::size_t failed = 0;
  std::cout << r.timestamp << " " << r.processes.size() << " registered process"
            << (r.processes.size() == 1 ? "" : "es") << "\n";
  for (auto& p : r.processes) {
    if (p.responded) {
      std::cout << "  ok          " << p.ident << "  topics:";
      if (p.channels.empty()) std::cout << " (none)";
      for (std::size_t i = 0; i < p.channels.size(); ++i) {
        std::cout << (i ? ", " : " ") << describe_channel(p.channels[i]);
      }
    } else {
      ++failed;
      std::cout << "  NO ANSWER   " << p.ident << "  (" << p.error << ")";
    }
    std::cout << "\n";
  }
  for (auto& t : r.essential_unheard) std::cout << "  NO LISTENER essential topic " << t << "\n";
  if (failed) std::cout << "  " << failed << " not answering\n";
  std::cout << std::flush;
}

void print_json(const HealthReport& r) {
  nlohmann::json procs = nlohmann::json::array();
  for (auto& p : r.processes) {
    nlohmann::json topics = nlohmann::json::array();
    for (auto& c : p.channels) topics.push_back(describe_channel(c));
    procs.push_back({{"ident", p.ident},
                     {"alive", p.responded},
                     {"channels", p.channels},
                     {"topics", topics},
                     {"error", p.error}});
  }
  nlohmann::json j = {{"timestamp", r.timestamp},
                      {"healthy", all_answered(r)},
                      {"processes", procs},
                      {"essential_unheard", r.essential_unheard}};
  std::cout << dump(j) << std::endl;
}

}  // namespace

int run_health(const Global& g, const HealthArgs& a) {
  auto opts = engine_options(g);
  if (!g.verbose) {
    // The bulletin warns about every silent process; the report says it already.
    opts.logger = opts.logger->clone("gilmour-cli-health");
    opts.logger->set_level(spdlog::level::err);
  }
  auto engine = make_engine(g, std::move(opts));
  start_engine(*engine, g);
  HealthBulletinOptions bo;
  bo.timeout = std::chrono::milliseconds(a.timeout_ms);
  bo.interval = std::chrono::milliseconds(static_cast<long long>(a.interval_s * 1000));
  bo.retries = 1;  // one check is the verdict; --prune removes who failed it
  bo.prune = a.prune;
  bo.essential_topics = a.essential;
  HealthBulletin bulletin(*engine, bo);
  if (a.watch) stop::graceful(true);
  int code = kExitOk;
  for (;;) {
    auto report = bulletin.check();
    a.json ? print_json(report) : print_text(report);
    code = all_answered(report) ? kExitOk : kExitFailed;
    if (!a.watch || stop::wait_for(bo.interval)) break;
  }
  engine->stop();
  return code;
}

}  // namespace gilmour::cli
