// Library roles: the engine as a user runs it, one process per role.
#include <condition_variable>
#include <cstdio>
#include <functional>
#include <gilmour/gilmour.hpp>
#include <thread>

#include "roles.hpp"

namespace gilmour::bench {
namespace {

using namespace std::chrono_literals;

constexpr const char* kEcho = "bench.echo";
constexpr const char* kSignal = "bench.signal";

// --redis URL (a cluster, say) or the orchestrator's redis-server on --port.
std::string redis_url(const Args& a) { return a.str("redis", "127.0.0.1:" + a.str("port")); }

EngineOptions engine_options(const Args& a) {
  EngineOptions o;
  o.logger = quiet_logger();
  o.error_policy = ErrorPolicy::kIgnore;
  if (a.has("workers")) o.worker_threads = static_cast<std::size_t>(a.num("workers", 0));
  if (a.has("lock-delay-ms")) {
    o.saturated_lock_delay = std::chrono::milliseconds(static_cast<int>(a.num("lock-delay-ms", 0)));
  }
  return o;
}

bool inline_mode(const Args& a) { return a.str("mode", "default") == "inline"; }

/// Sends requests until one is answered (the replier may still be joining).
bool wait_for_replier(Gilmour& g) {
  for (int i = 0; i < 50; ++i) {
    auto m = g.request(kEcho, nlohmann::json{{"n", 0}}, RequestOptions{}.set_timeout(1s)).get();
    if (m.code() == 200) return true;
  }
  return false;
}

/// Closed loop: `inflight` requests outstanding until `w.stop` (or `count`
/// completions, when positive).
class Loop {
 public:
  Loop(Gilmour& g, Window& w, const RequestOptions& ro, long count)
      : g_(g), w_(w), ro_(ro), count_(count) {}

  void start(int inflight) {
    outstanding_ = inflight;
    for (int i = 0; i < inflight; ++i) fire();
  }
  /// Waits (up to `limit`) for every outstanding request to complete.
  bool drain(std::chrono::seconds limit) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, limit, [&] { return outstanding_.load() == 0; });
  }
  long completed() const { return completed_.load(); }
  long failed() const { return failed_.load(); }

 private:
  void fire() {
    if (count_ > 0 && issued_.fetch_add(1) >= count_) return finish();
    auto t0 = Clock::now();
    g_.request(
        kEcho, nlohmann::json{{"n", 1}},
        [this, t0](const Message& m) {
          bool ok = m.code() == 200;
          if (!ok) failed_.fetch_add(1);
          completed_.fetch_add(1);
          w_.record(t0, ok);
          if (w_.stop.load()) return finish();
          fire();
        },
        ro_);
  }
  void finish() {
    if (outstanding_.fetch_sub(1) == 1) {
      std::lock_guard<std::mutex> lock(mu_);
      cv_.notify_all();
    }
  }

  Gilmour& g_;
  Window& w_;
  RequestOptions ro_;
  long count_;
  std::atomic<long> issued_{0};
  std::atomic<long> completed_{0};
  std::atomic<long> failed_{0};
  std::atomic<int> outstanding_{0};
  std::mutex mu_;
  std::condition_variable cv_;
};

}  // namespace

int role_replier(const Args& a) {
  Gilmour g(redis::make_backend(redis_url(a)), engine_options(a));
  g.start();
  auto sleep = std::chrono::milliseconds(static_cast<int>(a.num("sleep-ms", 0)));
  HandlerOptions ho;
  ho.set_inline_delivery(inline_mode(a));
  if (a.has("group")) ho.set_group(a.str("group"));
  if (a.has("max-pending")) ho.set_max_pending(static_cast<std::size_t>(a.num("max-pending", 0)));
  auto sub = g.reply_to(
      kEcho,
      [sleep](const Request& r, Response& res) {
        if (sleep.count() > 0) std::this_thread::sleep_for(sleep);  // the simulated work
        res.set_data(r.data());
      },
      ho);
  say_ready();
  serve_forever();
}

int role_requester(const Args& a) {
  Gilmour g(redis::make_backend(redis_url(a)), engine_options(a));
  g.start();
  if (!wait_for_replier(g)) {
    std::fprintf(stderr, "requester: no replier answered\n");
    return 1;
  }
  auto ro = RequestOptions{}.set_inline_callback(inline_mode(a)).set_timeout(10s);
  auto inflight = static_cast<int>(a.num("inflight", 1));
  Window w;
  if (a.has("count")) {  // a fixed number of requests, for the memory figures
    long rss_before = rss_kib();
    auto t0 = Clock::now();
    Loop loop(g, w, ro, static_cast<long>(a.num("count", 0)));
    loop.start(inflight);
    bool drained = loop.drain(std::chrono::seconds(3600));
    double took = std::chrono::duration<double>(Clock::now() - t0).count();
    print_result({{"completed", static_cast<double>(loop.completed())},
                  {"errors", static_cast<double>(loop.failed() + (drained ? 0 : 1))},
                  {"seconds", took},
                  {"rss_before_kib", static_cast<double>(rss_before)},
                  {"rss_after_kib", static_cast<double>(rss_kib())}});
    g.stop();
    return 0;
  }
  Loop loop(g, w, ro, 0);
  loop.start(inflight);
  // A loop that did not drain counts as one error more.
  measure_and_report(w, a, [&] { return loop.drain(20s) ? std::size_t{0} : std::size_t{1}; });
  g.stop();
  return 0;
}

/// Fire-and-forget signals as fast as the engine takes them: its own bound on
/// outbound work (max_outstanding, OverflowPolicy::kBlock) is the window.
int role_signaller(const Args& a) {
  EngineOptions o = engine_options(a);
  o.overflow_policy = OverflowPolicy::kBlock;
  o.max_outstanding = static_cast<std::size_t>(a.num("window", 1000));
  Gilmour g(redis::make_backend(redis_url(a)), o);
  g.start();
  std::uint64_t sent = 0;
  auto t0 = Clock::now();
  auto end = t0 + std::chrono::duration_cast<Clock::duration>(
                      std::chrono::duration<double>(a.num("seconds", 1)));
  while (Clock::now() < end) {
    g.signal(kSignal, nlohmann::json{{"n", 1}});
    ++sent;
  }
  auto settled = [&] {
    Stats st = g.stats();
    return st.signals_sent + st.publish_failures + st.overloaded >= sent;
  };
  while (!settled() && Clock::now() < end + 60s) {
    std::this_thread::sleep_for(1ms);  // polling the counters until the last one is published
  }
  double took = std::chrono::duration<double>(Clock::now() - t0).count();
  Stats st = g.stats();
  print_result({{"sent", static_cast<double>(sent)},
                {"rate", static_cast<double>(sent) / took},
                {"errors", static_cast<double>(st.publish_failures + st.overloaded)}});
  g.stop();
  return 0;
}

int role_slot(const Args& a) {
  Gilmour g(redis::make_backend(redis_url(a)), engine_options(a));
  g.start();
  DeliveryCounter counter;
  auto sub = g.slot(
      kSignal, [&counter](const Request&) { counter.hit(); },
      HandlerOptions{}.set_inline_delivery(inline_mode(a)));
  say_ready();
  counter.report_when_quiet(kQuietAfterLast,
                            std::chrono::seconds(static_cast<int>(a.num("give-up", 120))));
  g.stop();
  return 0;
}

int role_idle(const Args& a) {
  Gilmour g(redis::make_backend(redis_url(a)), engine_options(a));
  g.start();
  std::vector<Subscription> subs;
  for (int i = 0; i < static_cast<int>(a.num("slots", 0)); ++i) {
    subs.push_back(g.slot("bench.idle.slot." + std::to_string(i), [](const Request&) {}));
  }
  for (int i = 0; i < static_cast<int>(a.num("handlers", 0)); ++i) {
    subs.push_back(
        g.reply_to("bench.idle.reply." + std::to_string(i), [](const Request&, Response&) {}));
  }
  say_ready();
  serve_forever();
}

}  // namespace gilmour::bench
