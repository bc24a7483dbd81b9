#include "chaos/env.hpp"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/spdlog.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <thread>

#include "chaos/redis_admin.hpp"

namespace gilmour::chaos {

Env::Env() : prefix_("chaos." + std::to_string(::getpid())), topics_(prefix_) {}

Env::~Env() {
  if (!dir_.empty() && !keep_) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

bool Env::start() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "gilmour-chaos-XXXXXX").string();
  if (!::mkdtemp(tmpl.data())) {
    error_ = "cannot make a work directory under " + tmpl;
    return false;
  }
  dir_ = tmpl;
  if (!redis_.start({"--dir", dir_})) {
    error_ = redis_.error();
    return false;
  }
  return true;
}

std::unique_ptr<Child> Env::spawn_replier(const std::string& name, bool events,
                                          std::vector<std::string> extra) {
  std::vector<std::string> argv = {"replier", "--redis", redis_.url(), "--prefix", prefix_};
  if (events) {
    argv.emplace_back("--log");
    argv.push_back(dir_ + "/" + name + ".events");
  }
  argv.insert(argv.end(), extra.begin(), extra.end());
  return std::make_unique<Child>(argv, dir_ + "/" + name + ".log");
}

std::unique_ptr<Gilmour> Env::requester(std::size_t workers) {
  auto sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(dir_ + "/requester.log");
  auto logger = std::make_shared<spdlog::logger>("gilmour", sink);
  logger->set_level(spdlog::level::warn);
  auto g =
      std::make_unique<Gilmour>(redis::make_backend(std::string_view(redis_.url())),
                                EngineOptions{}.set_worker_threads(workers).set_logger(logger));
  g->start();
  return g;
}

std::optional<std::chrono::milliseconds> wait_listeners(
    Gilmour& g, const std::string& channel, const std::function<bool(std::int64_t)>& pred,
    std::chrono::milliseconds timeout) {
  auto start = std::chrono::steady_clock::now();
  while (!pred(g.listener_count(channel).get())) {
    if (std::chrono::steady_clock::now() - start > timeout) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));  // polling NUMSUB
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
