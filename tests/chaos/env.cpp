#include "chaos/env.hpp"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/spdlog.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cstdlib>
#include <ctime>
#include <iostream>
#include <thread>

#include "chaos/redis_admin.hpp"
#include "support/timing.hpp"

namespace gilmour::chaos {

Env::Env(std::string program)
    : program_(std::move(program)),
      prefix_("chaos." + std::to_string(::getpid())),
      topics_(prefix_) {}

void Env::report(const std::string& what) const { std::cerr << program_ << ": " << what << "\n"; }

bool Env::start() {
  if (!dir_.make("gilmour-chaos-")) {
    report("cannot make a work directory: " + dir_.error());
    return false;
  }
  if (!redis_.start({"--dir", dir()})) {
    report(redis_.error());
    return false;
  }
  return true;
}

std::unique_ptr<Child> Env::spawn_replier(const std::string& name, bool events,
                                          std::vector<std::string> extra) {
  std::vector<std::string> argv = {"replier", "--redis", redis_.url(), "--prefix", prefix_};
  if (events) {
    argv.emplace_back("--log");
    argv.push_back(dir() + "/" + name + ".events");
  }
  argv.insert(argv.end(), extra.begin(), extra.end());
  return std::make_unique<Child>(argv, dir() + "/" + name + ".log");
}

std::unique_ptr<Gilmour> Env::requester(std::size_t workers) {
  try {
    auto sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(dir() + "/requester.log");
    auto logger = std::make_shared<spdlog::logger>("gilmour", sink);
    logger->set_level(spdlog::level::warn);
    auto g =
        std::make_unique<Gilmour>(redis::make_backend(std::string_view(redis_.url())),
                                  EngineOptions{}.set_worker_threads(workers).set_logger(logger));
    g->start();
    return g;
  } catch (const std::exception& e) {
    report(std::string("requester: ") + e.what());
    return nullptr;
  }
}

std::optional<std::chrono::milliseconds> wait_listeners(
    Gilmour& g, const std::string& channel, const std::function<bool(std::int64_t)>& pred,
    std::chrono::milliseconds timeout) {
  auto start = std::chrono::steady_clock::now();
  if (!test::eventually([&] { return pred(g.listener_count(channel).get()); }, timeout,
                        std::chrono::milliseconds(10))) {
    return std::nullopt;
  }
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                               start);
}

std::string describe_machine(int redis_port) {
  char date[32];
  std::time_t now = std::time(nullptr);
  std::tm utc{};
  ::gmtime_r(&now, &utc);
  std::strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", &utc);
  utsname u{};
  ::uname(&u);
  auto info = redis_command(redis_port, {"INFO", "server"}, std::chrono::seconds(2));
  std::string load;
  double avg[3] = {0, 0, 0};
  if (::getloadavg(avg, 3) == 3) load = std::to_string(avg[0]).substr(0, 4);
  return std::string(date) + ", " + std::to_string(std::thread::hardware_concurrency()) +
         " cores, load " + load + ", " + u.sysname + " " + u.release + ", redis " +
         (info ? info_field(*info, "redis_version") : "?");
}

}  // namespace gilmour::chaos
