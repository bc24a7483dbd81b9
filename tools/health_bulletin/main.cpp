// gilmour-health-bulletin [--redis URL] [--interval S] [--timeout S] [--retries N]
//                         [--essential TOPIC]... [--error-policy P] [--once] [--no-prune]
//                         [--verbose]
//
// Watches the Gilmour processes registered in gilmour.known_host.health:
// pings each every interval, reports (and prunes) those that fail `retries`
// rounds in a row, and reports essential topics nobody listens on. Reports
// go to stdout, and as error records through the error policy (default
// publish, on gilmour.error).
//
// Redis: --redis URL, else $GILMOUR_REDIS_URL, else redis://127.0.0.1:6379.
// (There is no in-process mode: an in-process bus only holds this process.)
//
// Exit status: 0 healthy (--once) or stopped by SIGINT/SIGTERM; 1 the --once
// round reported a problem (a process that did not answer, a dead process, an
// essential topic without listener); 2 a usage error; 3 Redis could not be
// reached or was lost during the --once round (or another error stopped it).
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <charconv>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <gilmour/gilmour.hpp>
#include <iostream>
#include <string>

namespace {

constexpr int kExitProblem = 1;
constexpr int kExitUsage = 2;
constexpr int kExitUnreachable = 3;
constexpr const char* kDefaultRedis = "redis://127.0.0.1:6379";

[[noreturn]] void usage(int code) {
  (code ? std::cerr : std::cout)
      << "usage: gilmour-health-bulletin [--redis URL] [--interval S] [--timeout S]\n"
         "         [--retries N] [--essential TOPIC]... [--error-policy publish|queue|ignore]\n"
         "         [--once] [--no-prune] [--verbose]\n"
         "Redis: --redis URL, else $GILMOUR_REDIS_URL, else "
      << kDefaultRedis
      << ".\n"
         "Exit status: 0 healthy, 1 a problem was reported (--once), 2 usage error,\n"
         "3 Redis unreachable.\n";
  std::exit(code);
}

[[noreturn]] void usage_error(const std::string& message) {
  std::cerr << "gilmour-health-bulletin: " << message << "\n";
  usage(kExitUsage);
}

double seconds_arg(const std::string& flag, const char* v) {
  char* end = nullptr;
  double d = std::strtod(v, &end);
  if (!end || end == v || *end || !std::isfinite(d) || d <= 0 || d > 86400.0 * 365) {
    usage_error(flag + " needs a positive number of seconds, not '" + v + "'");
  }
  return d;
}

int count_arg(const std::string& flag, const std::string& v) {
  int n = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (v.empty() || ec != std::errc() || p != v.data() + v.size() || n <= 0) {
    usage_error(flag + " needs a positive integer, not '" + v + "'");
  }
  return n;
}

std::chrono::milliseconds ms(double s) {
  return std::chrono::milliseconds(std::max(1LL, static_cast<long long>(std::ceil(s * 1000))));
}

/// A problem is anything the report shows other than "alive": a process
/// that did not answer this round (even before it is declared dead), a dead
/// process, an essential topic without listener.
bool has_problem(const gilmour::HealthReport& r) {
  if (!r.healthy()) return true;
  for (auto& p : r.processes) {
    if (!p.responded) return true;
  }
  return false;
}

void print(const std::string& where, const gilmour::HealthReport& r) {
  std::cout << r.timestamp << " redis=" << where << " processes=" << r.processes.size()
            << " dead=" << r.dead.size() << " essential_unheard=" << r.essential_unheard.size()
            << "\n";
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
  bool redis_given = false;
  gilmour::HealthBulletinOptions opts;
  gilmour::EngineOptions eopts;
  bool once = false, verbose = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> const char* {
      if (i + 1 >= argc) usage_error(a + " needs a value");
      return argv[++i];
    };
    if (a == "--redis") {
      redis = next();
      redis_given = true;
    } else if (a == "--interval") {
      opts.interval = ms(seconds_arg(a, next()));
    } else if (a == "--timeout") {
      opts.timeout = ms(seconds_arg(a, next()));
    } else if (a == "--retries") {
      opts.retries = count_arg(a, next());
    } else if (a == "--essential") {
      std::string t = next();
      if (t.empty() || t.find('*') != std::string::npos) {
        usage_error("--essential needs a topic without '*', not '" + t + "'");
      }
      opts.essential_topics.push_back(std::move(t));
    } else if (a == "--error-policy") {
      try {
        eopts.error_policy = gilmour::parse_error_policy(next());
      } catch (const gilmour::Error& e) {
        usage_error(e.what());
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
      usage_error("unknown argument " + a);
    }
  }
  if (!redis_given) {
    const char* env = std::getenv("GILMOUR_REDIS_URL");
    redis = env && *env ? env : kDefaultRedis;
  }
  std::string where;
  try {
    if (redis.empty()) usage_error("--redis needs a URL, e.g. " + std::string(kDefaultRedis));
    where = gilmour::redis::Options::from_url(redis).address();
  } catch (const gilmour::Error& e) {
    usage_error(std::string(redis_given ? "--redis" : "GILMOUR_REDIS_URL") + ": " + e.what());
  }
  try {
    auto logger = std::make_shared<spdlog::logger>(
        "gilmour-health", std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
    logger->set_level(verbose ? spdlog::level::debug : spdlog::level::warn);
    eopts.logger = logger;
    gilmour::Gilmour g(gilmour::redis::make_backend(redis), eopts);
    try {
      g.start();
    } catch (const gilmour::ConnectionError& e) {
      std::cerr << "gilmour-health-bulletin: cannot reach Redis at " << where << ": " << e.what()
                << "\n";
      return kExitUnreachable;
    }
    opts.on_report = [where](const gilmour::HealthReport& r) { print(where, r); };
    gilmour::HealthBulletin bulletin(g, opts);
    if (once) {
      auto r = bulletin.check();
      // The round reads the hash without telling a failed read from an empty
      // hash: make sure Redis still answers before calling it healthy.
      bool reachable = g.listener_count("gilmour.health.bulletin-probe").get() >= 0;
      g.stop();
      if (!reachable) {
        std::cerr << "gilmour-health-bulletin: lost Redis at " << where << " during the check\n";
        return kExitUnreachable;
      }
      return has_problem(r) ? kExitProblem : 0;
    }
    bulletin.start();
    int sig = 0;
    sigwait(&set, &sig);
    bulletin.stop();
    g.stop();
  } catch (const std::exception& e) {
    std::cerr << "gilmour-health-bulletin: " << e.what() << "\n";
    return kExitUnreachable;
  }
  return 0;
}
