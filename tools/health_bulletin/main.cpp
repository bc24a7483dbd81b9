// gilmour-health-bulletin [--redis URL] [--interval S] [--timeout S] [--retries N]
//                         [--essential TOPIC]... [--error-policy P] [--once] [--no-prune]
//
// Watches the Gilmour processes registered in gilmour.known_host.health:
// pings each every interval, reports (and prunes) those that fail `retries`
// rounds in a row, and reports essential topics nobody listens on. Reports
// go to stdout, and as error records through the error policy (default
// publish, on gilmour.error). --once runs one round and exits 1 when it
// found a problem.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdlib>
#include <gilmour/gilmour.hpp>
#include <iostream>
#include <string>

namespace {

[[noreturn]] void usage(int code) {
  (code ? std::cerr : std::cout)
      << "usage: gilmour-health-bulletin [--redis URL] [--interval S] [--timeout S]\n"
         "         [--retries N] [--essential TOPIC]... [--error-policy publish|queue|ignore]\n"
         "         [--once] [--no-prune] [--verbose]\n";
  std::exit(code);
}

double seconds_arg(const std::string& flag, const char* v) {
  char* end = nullptr;
  double d = std::strtod(v, &end);
  if (!end || *end || d <= 0) {
    std::cerr << "gilmour-health-bulletin: " << flag << " needs a positive number\n";
    usage(2);
  }
  return d;
}

std::chrono::milliseconds ms(double s) {
  return std::chrono::milliseconds(static_cast<long long>(s * 1000));
}

void print(const gilmour::HealthReport& r) {
  std::cout << r.timestamp << " processes=" << r.processes.size() << " dead=" << r.dead.size()
            << " essential_unheard=" << r.essential_unheard.size() << "\n";
  for (auto& p : r.processes) {
    std::cout << "  " << (p.responded ? "alive " : "FAILED") << " " << p.ident;
    if (!p.responded) std::cout << " (" << p.failures << " in a row: " << p.error << ")";
    std::cout << "\n";
  }
  for (auto& d : r.dead) std::cout << "  DEAD   " << d << " (pruned)\n";
  for (auto& t : r.essential_unheard) std::cout << "  NO LISTENER on essential topic " << t << "\n";
  std::cout << std::flush;
}

}  // namespace

int main(int argc, char** argv) {
  // Block the stop signals before any thread starts, so every thread
  // inherits the mask and sigwait() below receives them.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::string redis;
  gilmour::HealthBulletinOptions opts;
  gilmour::EngineOptions eopts;
  bool once = false, verbose = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> const char* {
      if (i + 1 >= argc) usage(2);
      return argv[++i];
    };
    if (a == "--redis") {
      redis = next();
    } else if (a == "--interval") {
      opts.interval = ms(seconds_arg(a, next()));
    } else if (a == "--timeout") {
      opts.timeout = ms(seconds_arg(a, next()));
    } else if (a == "--retries") {
      opts.retries = static_cast<int>(seconds_arg(a, next()));
    } else if (a == "--essential") {
      opts.essential_topics.emplace_back(next());
    } else if (a == "--error-policy") {
      try {
        eopts.error_policy = gilmour::parse_error_policy(next());
      } catch (const gilmour::Error& e) {
        std::cerr << "gilmour-health-bulletin: " << e.what() << "\n";
        return 2;
      }
    } else if (a == "--once") {
      once = true;
    } else if (a == "--no-prune") {
      opts.prune = false;
    } else if (a == "--verbose") {
      verbose = true;
    } else if (a == "--help" || a == "-h") {
      usage(0);
    } else {
      std::cerr << "gilmour-health-bulletin: unknown argument " << a << "\n";
      usage(2);
    }
  }
  try {
    auto logger = std::make_shared<spdlog::logger>(
        "gilmour-health", std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
    logger->set_level(verbose ? spdlog::level::debug : spdlog::level::warn);
    eopts.logger = logger;
    auto backend =
        redis.empty() ? gilmour::inproc::make_backend() : gilmour::redis::make_backend(redis);
    gilmour::Gilmour g(backend, eopts);
    g.start();
    opts.on_report = print;
    gilmour::HealthBulletin bulletin(g, opts);
    if (once) {
      auto r = bulletin.check();
      g.stop();
      return r.healthy() ? 0 : 1;
    }
    bulletin.start();
    int sig = 0;
    sigwait(&set, &sig);
    bulletin.stop();
    g.stop();
  } catch (const std::exception& e) {
    std::cerr << "gilmour-health-bulletin: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
