#include <spdlog/spdlog.h>

#include <condition_variable>
#include <mutex>
#include <thread>

#include "gilmour/error.hpp"
#include "gilmour/health.hpp"
#include "topic.hpp"

namespace gilmour {

struct HealthBulletin::Impl {
  Gilmour& engine;
  HealthBulletinOptions opts;
  std::mutex round_mu;                  // rounds never overlap
  std::map<std::string, int> failures;  // guarded by round_mu
  std::mutex mu;
  std::condition_variable cv;
  bool stopping = false;  // guarded by mu
  std::thread thread;

  Impl(Gilmour& e, HealthBulletinOptions o) : engine(e), opts(std::move(o)) {}

  HealthReport round();
  void report(int code, std::string topic, std::string text);
};

void HealthBulletin::Impl::report(int code, std::string topic, std::string text) {
  ErrorRecord r;
  r.topic = std::move(topic);
  r.sender = engine.health_ident();
  r.timestamp = ErrorRecord::now_timestamp();
  r.backtrace = std::move(text);
  r.code = code;
  r.multi_process = true;
  engine.report_error(std::move(r));
}

HealthReport HealthBulletin::Impl::round() {
  std::lock_guard<std::mutex> lock(round_mu);
  HealthReport rep;
  rep.timestamp = ErrorRecord::now_timestamp();
  auto log = engine.logger();
  log->debug("gilmour health: ensuring that gilmour servers respond to health ping");
  auto hosts = engine.known_hosts().get();

  struct Ping {
    std::string ident;
    std::future<Message> reply;
  };
  std::vector<Ping> pings;
  RequestOptions ro;
  ro.timeout = opts.timeout;
  ro.confirm_subscribers = true;  // a vanished process fails at once (404)
  for (auto& [ident, value] : hosts) {
    if (ident == engine.health_ident() || ident.empty() || detail::has_wildcard(ident)) continue;
    pings.push_back(
        {ident, engine.request(std::string(detail::kHealthPrefix) + ident, "ping", ro)});
  }
  std::map<std::string, int> next;  // forget processes no longer in the hash
  for (auto& p : pings) {
    HealthReport::Process proc;
    proc.ident = p.ident;
    Message m = p.reply.get();
    int prev = failures.count(p.ident) ? failures[p.ident] : 0;
    if (m.ok()) {
      proc.responded = true;
      if (m.data().is_array()) {
        for (auto& c : m.data()) {
          if (c.is_string()) proc.channels.push_back(c.get<std::string>());
        }
      }
      next[p.ident] = 0;
    } else {
      proc.failures = prev + 1;
      proc.error = std::to_string(m.code()) + " " + m.error_text();
      if (proc.failures >= opts.retries) {
        rep.dead.push_back(p.ident);
        std::string text = "process " + p.ident + " did not answer " +
                           std::to_string(proc.failures) + " health pings (last: " + proc.error +
                           ")";
        log->warn("gilmour health: {}", text);
        report(m.code(), std::string(detail::kHealthPrefix) + p.ident, text);
        if (opts.prune) {
          auto st = engine.forget_host(p.ident).get();
          if (!st) log->warn("gilmour health: cannot prune {}: {}", p.ident, st.message());
        }
      } else {
        next[p.ident] = proc.failures;
      }
    }
    rep.processes.push_back(std::move(proc));
  }
  failures = std::move(next);

  log->debug("gilmour health: ensuring topics have at least one subscriber");
  for (auto& topic : opts.essential_topics) {
    auto n = engine.listener_count(topic).get();
    if (n == 0) {
      rep.essential_unheard.push_back(topic);
      std::string text = "essential topic " + topic + " has no listener";
      log->warn("gilmour health: {}", text);
      report(code::kNotFound, topic, text);
    } else if (n < 0) {
      log->warn("gilmour health: cannot count listeners of {}", topic);
    }
  }
  if (opts.on_report) opts.on_report(rep);
  return rep;
}

HealthBulletin::HealthBulletin(Gilmour& engine, HealthBulletinOptions options) {
  if (options.interval.count() <= 0 || options.timeout.count() <= 0) {
    throw InvalidArgument("gilmour: HealthBulletin: interval and timeout must be positive");
  }
  if (options.retries <= 0)
    throw InvalidArgument("gilmour: HealthBulletin: retries must be positive");
  for (auto& t : options.essential_topics) {
    detail::validate_topic(t, "HealthBulletin: essential topic", /*allow_wildcard=*/false);
  }
  impl_ = std::make_unique<Impl>(engine, std::move(options));
}

HealthBulletin::~HealthBulletin() { stop(); }

HealthReport HealthBulletin::check() { return impl_->round(); }

void HealthBulletin::start() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (impl_->thread.joinable()) return;
  impl_->stopping = false;
  impl_->thread = std::thread([impl = impl_.get()] {
    std::unique_lock<std::mutex> lock(impl->mu);
    while (!impl->stopping) {
      lock.unlock();
      try {
        impl->round();
      } catch (const std::exception& e) {
        impl->engine.logger()->warn("gilmour health: round failed: {}", e.what());
      }
      lock.lock();
      impl->cv.wait_for(lock, impl->opts.interval, [impl] { return impl->stopping; });
    }
  });
}

void HealthBulletin::stop() {
  std::thread t;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stopping = true;
    t = std::move(impl_->thread);
  }
  impl_->cv.notify_all();
  if (t.joinable()) t.join();
}

}  // namespace gilmour
