// gilmour_bench_response_scheme: request/reply over a private redis-server,
// for both response schemes, against a raw hiredis+libuv floor doing the
// same Redis commands, with and without 100 idle engines' response patterns.
//
//   gilmour_bench_response_scheme [seconds-per-run, default 1.5]
//   gilmour_bench_response_scheme --count N [--inflight K] [--run floor|pattern|per-request]
//                                 [--port P] [--workers W]
//
// The second form runs exactly N requests of one configuration and prints
// the time taken: for `strace -c -f` (syscalls per request), with --port
// pointing at a redis-server started elsewhere so that its own syscalls are
// not counted; --workers sets EngineOptions::worker_threads (default 2, as
// in the first form; 0 is the engine's default). docs/performance.md has the
// procedure.
//
// What is measured, per configuration (in flight 1 or 64; 0 or 100 idle
// PSUBSCRIBEd connections):
// - raw floor: one libuv loop, four hiredis async connections. Requester:
//   PUBLISH gilmour.request.T; replier: SET <S>_default <S>_default NX EX 600
//   then PUBLISH gilmour.response.<S>; the requester's subscriber holds one
//   PSUBSCRIBE gilmour.response.raw.* (no JSON library, no thread hops).
// - engine, kEnginePattern: two engines (server, client) in this process.
// - engine, kPerRequest: the same, SUBSCRIBE/UNSUBSCRIBE per request.
// - engine, pattern+inline: kEnginePattern with the reply handler on
//   inline_delivery and the request callbacks on inline_callback.
// Latency is from request() to the completion callback; throughput counts
// completions inside the measuring window. Ratios are to the raw floor of the
// same configuration, measured in the same run.
// Finally the cost of PUBLISH itself on the server: 200k pipelined PUBLISHes
// to a channel nobody listens on, with 0 and 100 patterns on the server.
#include <hiredis/adapters/libuv.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>
#include <uv.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <functional>
#include <gilmour/gilmour.hpp>
#include <iostream>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "bench_common.hpp"
#include "raw_replier.hpp"
#include "support/redis_server.hpp"

namespace {

using gilmour::bench::Clock;
using gilmour::bench::raw_lock_then_respond;
using gilmour::bench::Result;
using namespace std::chrono_literals;

/// The shared Window with this bench's 300 ms warm-up.
struct Window : gilmour::bench::Window {
  Result measure(std::chrono::duration<double> seconds) {
    return gilmour::bench::Window::measure(300ms, seconds);
  }
};

// ------------------------------------------------------------------ engine

Result run_engine(int port, gilmour::ResponseScheme scheme, int inflight,
                  std::chrono::duration<double> seconds, bool inline_mode = false) {
  auto quiet =
      std::make_shared<spdlog::logger>("bench", std::make_shared<spdlog::sinks::null_sink_mt>());
  gilmour::EngineOptions o;
  o.logger = quiet;
  o.worker_threads = 2;
  o.error_policy = gilmour::ErrorPolicy::kIgnore;
  std::string url = "127.0.0.1:" + std::to_string(port);
  gilmour::Gilmour server(gilmour::redis::make_backend(url), o);
  server.start();
  auto sub = server.reply_to(
      "bench.echo",
      [](const gilmour::Request& r, gilmour::Response& res) { res.set_data(r.data()); },
      gilmour::HandlerOptions{}.set_inline_delivery(inline_mode));
  o.response_scheme = scheme;
  gilmour::Gilmour client(gilmour::redis::make_backend(url), o);
  client.start();
  auto ro = gilmour::RequestOptions{}.set_inline_callback(inline_mode);

  Window w;
  std::atomic<int> outstanding{0};
  std::mutex done_mu;
  std::condition_variable done_cv;
  std::function<void()> fire = [&] {
    auto t0 = Clock::now();
    client.request(
        "bench.echo", nlohmann::json{{"n", 1}},
        [&, t0](const gilmour::Message& m) {
          w.record(t0, m.code() == 200);
          if (!w.stop.load()) {
            fire();
            return;
          }
          if (outstanding.fetch_sub(1) == 1) {
            std::lock_guard<std::mutex> lock(done_mu);
            done_cv.notify_all();
          }
        },
        ro);
  };
  outstanding.store(inflight);
  for (int i = 0; i < inflight; ++i) fire();
  Result r = w.measure(seconds);
  std::unique_lock<std::mutex> lock(done_mu);
  done_cv.wait_for(lock, 10s, [&] { return outstanding.load() == 0; });
  lock.unlock();
  client.stop();
  server.stop();
  return r;
}

/// Exactly `count` requests (closed loop, `inflight` at a time), each engine
/// with `workers` worker threads (0: the engine's default); returns the
/// seconds taken from the first request to the last completion.
double count_engine(int port, gilmour::ResponseScheme scheme, int inflight, long count,
                    std::size_t workers) {
  auto quiet =
      std::make_shared<spdlog::logger>("bench", std::make_shared<spdlog::sinks::null_sink_mt>());
  gilmour::EngineOptions o;
  o.logger = quiet;
  o.worker_threads = workers;
  o.error_policy = gilmour::ErrorPolicy::kIgnore;
  std::string url = "127.0.0.1:" + std::to_string(port);
  gilmour::Gilmour server(gilmour::redis::make_backend(url), o);
  server.start();
  auto sub = server.reply_to("bench.echo", [](const gilmour::Request& r, gilmour::Response& res) {
    res.set_data(r.data());
  });
  o.response_scheme = scheme;
  gilmour::Gilmour client(gilmour::redis::make_backend(url), o);
  client.start();
  std::atomic<long> issued{0};
  std::atomic<long> completed{0};
  std::atomic<long> failed{0};
  std::mutex done_mu;
  std::condition_variable done_cv;
  std::function<void()> fire = [&] {
    if (issued.fetch_add(1) >= count) return;
    client.request("bench.echo", nlohmann::json{{"n", 1}}, [&](const gilmour::Message& m) {
      if (m.code() != 200) failed.fetch_add(1);
      if (completed.fetch_add(1) + 1 == count) {
        std::lock_guard<std::mutex> lock(done_mu);
        done_cv.notify_all();
        return;
      }
      fire();
    });
  };
  auto t0 = Clock::now();
  for (int i = 0; i < inflight; ++i) fire();
  {
    std::unique_lock<std::mutex> lock(done_mu);
    done_cv.wait(lock, [&] { return completed.load() >= count; });
  }
  double took = std::chrono::duration<double>(Clock::now() - t0).count();
  if (failed.load()) std::printf("(%ld requests failed)\n", failed.load());
  client.stop();
  server.stop();
  return took;
}

// ------------------------------------------------------------------ raw floor

/// The floor: the same commands with hiredis's async API on one libuv loop.
class RawFloor {
 public:
  RawFloor(int port, int inflight) : inflight_(inflight), starts_(1024) {
    uv_loop_init(&loop_);
    // Sent once by the main thread after the window; the loop ends once the
    // contexts are freed (after the last response) and this handle is closed.
    uv_async_init(&loop_, &wake_, [](uv_async_t* a) {
      auto* self = static_cast<RawFloor*>(a->data);
      self->wake_seen_ = true;
      if (self->freed_) uv_close(reinterpret_cast<uv_handle_t*>(&self->wake_), nullptr);
    });
    wake_.data = this;
    req_cmd_ = connect(port);
    req_sub_ = connect(port);
    rep_cmd_ = connect(port);
    rep_sub_ = connect(port);
  }
  ~RawFloor() { uv_loop_close(&loop_); }

  /// Exactly `count` requests; returns the seconds taken.
  double run_count(long count) {
    limit_ = static_cast<std::uint64_t>(count);
    const char* sub_argv[] = {"SUBSCRIBE", "gilmour.request.bench-raw"};
    redisAsyncCommandArgv(rep_sub_, on_request, this, 2, sub_argv, nullptr);
    const char* psub_argv[] = {"PSUBSCRIBE", "gilmour.response.raw.*"};
    redisAsyncCommandArgv(req_sub_, on_response, this, 2, psub_argv, nullptr);
    auto t0 = Clock::now();
    std::thread loop([this] { uv_run(&loop_, UV_RUN_DEFAULT); });
    uv_async_send(&wake_);  // no window to wait for: end after the last response
    loop.join();
    return std::chrono::duration<double>(Clock::now() - t0).count();
  }

  Result run(std::chrono::duration<double> seconds) {
    const char* sub_argv[] = {"SUBSCRIBE", "gilmour.request.bench-raw"};
    redisAsyncCommandArgv(rep_sub_, on_request, this, 2, sub_argv, nullptr);
    const char* psub_argv[] = {"PSUBSCRIBE", "gilmour.response.raw.*"};
    redisAsyncCommandArgv(req_sub_, on_response, this, 2, psub_argv, nullptr);
    std::thread loop([this] { uv_run(&loop_, UV_RUN_DEFAULT); });
    Result r = w_.measure(seconds);
    uv_async_send(&wake_);
    loop.join();
    return r;
  }

 private:
  redisAsyncContext* connect(int port) {
    redisAsyncContext* ac = redisAsyncConnect("127.0.0.1", port);
    redisLibuvAttach(ac, &loop_);
    return ac;
  }

  void publish_request() {
    std::uint64_t seq = ++seq_;
    starts_[seq & 1023] = Clock::now();
    char sender[48];
    int sl = std::snprintf(sender, sizeof sender, "raw.%llu", static_cast<unsigned long long>(seq));
    std::string payload = R"({"data":{"n":1},"code":200,"sender":")";
    payload.append(sender, static_cast<std::size_t>(sl));
    payload += "\"}";
    const char* argv[] = {"PUBLISH", "gilmour.request.bench-raw", payload.data()};
    size_t len[] = {7, std::strlen(argv[1]), payload.size()};
    redisAsyncCommandArgv(req_cmd_, nullptr, nullptr, 3, argv, len);
  }

  // Replier: SET <S>_default NX EX 600, then PUBLISH the response.
  static void on_request(redisAsyncContext*, void* reply, void* priv) {
    auto* self = static_cast<RawFloor*>(priv);
    auto* r = static_cast<redisReply*>(reply);
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 3) return;
    if (std::strcmp(r->element[0]->str, "message") != 0) {
      self->maybe_start();
      return;
    }
    raw_lock_then_respond(self->rep_cmd_, r);
  }
  // Requester: the response completes a request; the next one goes out.
  static void on_response(redisAsyncContext*, void* reply, void* priv) {
    auto* self = static_cast<RawFloor*>(priv);
    auto* r = static_cast<redisReply*>(reply);
    if (!r || r->type != REDIS_REPLY_ARRAY) return;
    if (std::strcmp(r->element[0]->str, "pmessage") != 0) {
      self->maybe_start();
      return;
    }
    std::string_view channel(r->element[2]->str, r->element[2]->len);
    auto seq = std::stoull(std::string(channel.substr(channel.rfind('.') + 1)));
    self->w_.record(self->starts_[seq & 1023], true);
    if (!self->w_.stop.load() && self->seq_ < self->limit_) {
      self->publish_request();
    } else if (--self->outstanding_ == 0) {
      self->shutdown();
    }
  }
  void maybe_start() {  // both subscriptions confirmed: fill the window
    if (++confirmed_ != 2) return;
    outstanding_ = static_cast<int>(std::min<std::uint64_t>(inflight_, limit_));
    for (int i = 0; i < outstanding_; ++i) publish_request();
  }
  void shutdown() {
    for (auto* ac : {req_cmd_, req_sub_, rep_cmd_, rep_sub_}) redisAsyncFree(ac);
    freed_ = true;
    if (wake_seen_) uv_close(reinterpret_cast<uv_handle_t*>(&wake_), nullptr);
  }

  int inflight_;
  int outstanding_ = 0;
  int confirmed_ = 0;
  bool freed_ = false;
  bool wake_seen_ = false;
  std::uint64_t seq_ = 0;
  std::uint64_t limit_ = UINT64_MAX;  // requests to send (count mode)
  std::vector<Clock::time_point> starts_;
  uv_loop_t loop_{};
  uv_async_t wake_{};
  redisAsyncContext* req_cmd_ = nullptr;
  redisAsyncContext* req_sub_ = nullptr;
  redisAsyncContext* rep_cmd_ = nullptr;
  redisAsyncContext* rep_sub_ = nullptr;
  Window w_;
};

// ------------------------------------------------------------------ helpers

redisContext* sync_connect(int port) {
  redisContext* c = redisConnect("127.0.0.1", port);
  if (!c || c->err) {
    std::cerr << "cannot connect to the bench redis-server\n";
    std::_Exit(1);  // nothing to clean up yet
  }
  return c;
}

/// `n` idle connections, each with one engine-like response pattern.
std::vector<redisContext*> idle_patterns(int port, int n) {
  std::vector<redisContext*> out;
  std::mt19937_64 rng(42);
  for (int i = 0; i < n; ++i) {
    redisContext* c = sync_connect(port);
    char pattern[80];
    std::snprintf(pattern, sizeof pattern, "gilmour.response.%016llx-idle-engine.*",
                  static_cast<unsigned long long>(rng()));
    auto* r = static_cast<redisReply*>(redisCommand(c, "PSUBSCRIBE %s", pattern));
    freeReplyObject(r);
    out.push_back(c);
  }
  return out;
}

/// Pipelined PUBLISHes to a channel nobody listens on: the server's cost of
/// PUBLISH itself (pattern matching included), in ns per PUBLISH.
double publish_cost_ns(int port, int count) {
  redisContext* c = sync_connect(port);
  auto t0 = Clock::now();
  constexpr int kBatch = 1000;
  for (int done = 0; done < count; done += kBatch) {
    for (int i = 0; i < kBatch; ++i) {
      redisAppendCommand(c, "PUBLISH gilmour.request.nobody-listens %s",
                         R"({"data":{"n":1},"code":200,"sender":"x.1"})");
    }
    for (int i = 0; i < kBatch; ++i) {
      void* r = nullptr;
      redisGetReply(c, &r);
      freeReplyObject(r);
    }
  }
  double ns = std::chrono::duration<double, std::nano>(Clock::now() - t0).count() / count;
  redisFree(c);
  return ns;
}

void flushall(int port) {
  redisContext* c = sync_connect(port);
  freeReplyObject(redisCommand(c, "FLUSHALL"));
  redisFree(c);
}

}  // namespace

/// The --count form; see the file comment.
int count_main(int argc, char** argv) {
  long count = 0;
  int inflight = 1;
  int port = 0;
  std::size_t workers = 2;
  std::string run = "pattern";
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--count") {
      count = std::atol(argv[i + 1]);
    } else if (a == "--inflight") {
      inflight = std::atoi(argv[i + 1]);
    } else if (a == "--port") {
      port = std::atoi(argv[i + 1]);
    } else if (a == "--workers") {
      workers = static_cast<std::size_t>(std::atoi(argv[i + 1]));
    } else if (a == "--run") {
      run = argv[i + 1];
    } else {
      std::cerr << "unknown option " << a << "\n";
      return 2;
    }
  }
  if (count <= 0 || inflight <= 0) {
    std::cerr << "--count and --inflight must be positive\n";
    return 2;
  }
  gilmour::test::RedisServer server;
  if (port == 0) {
    if (!server.start()) {
      std::cerr << "cannot start redis-server: " << server.error() << "\n";
      return 1;
    }
    port = server.port();
  }
  flushall(port);
  double took = 0;
  if (run == "floor") {
    took = RawFloor(port, inflight).run_count(count);
  } else if (run == "pattern") {
    took = count_engine(port, gilmour::ResponseScheme::kEnginePattern, inflight, count, workers);
  } else if (run == "per-request") {
    took = count_engine(port, gilmour::ResponseScheme::kPerRequest, inflight, count, workers);
  } else {
    std::cerr << "--run: floor, pattern or per-request\n";
    return 2;
  }
  std::printf("%s: %ld requests, %d in flight, %.3f s, %.0f req/s\n", run.c_str(), count, inflight,
              took, static_cast<double>(count) / took);
  return 0;
}

int main(int argc, char** argv) {
  if (argc > 1 && argv[1][0] == '-' && argv[1][1] == '-') return count_main(argc, argv);
  double seconds = argc > 1 ? std::atof(argv[1]) : 1.5;
  gilmour::test::RedisServer server;
  if (!server.start()) {
    std::cerr << "cannot start redis-server: " << server.error() << "\n";
    return 1;
  }
  int port = server.port();
  std::printf(
      "gilmour response-scheme bench: redis-server on port %d, %.1f s per run, %u hardware "
      "threads\n\n",
      port, seconds, std::thread::hardware_concurrency());
  std::printf("%-22s %8s %6s %12s %9s %9s %10s %9s\n", "run", "inflight", "idle", "req/s", "p50 us",
              "p99 us", "x floor/s", "x p50");
  std::vector<redisContext*> idle;
  for (int idle_n : {0, 100}) {
    if (idle_n > 0) idle = idle_patterns(port, idle_n);
    for (int inflight : {1, 64}) {
      flushall(port);
      Result floor = RawFloor(port, inflight).run(std::chrono::duration<double>(seconds));
      auto print = [&](const char* name, const Result& r) {
        std::printf("%-22s %8d %6d %12.0f %9.0f %9.0f %10.2f %9.2f%s\n", name, inflight, idle_n,
                    r.throughput, r.p50_us, r.p99_us, r.throughput / floor.throughput,
                    r.p50_us / floor.p50_us, r.errors ? "  (errors!)" : "");
      };
      print("raw hiredis floor", floor);
      flushall(port);
      print("engine kEnginePattern", run_engine(port, gilmour::ResponseScheme::kEnginePattern,
                                                inflight, std::chrono::duration<double>(seconds)));
      flushall(port);
      print("engine kPerRequest", run_engine(port, gilmour::ResponseScheme::kPerRequest, inflight,
                                             std::chrono::duration<double>(seconds)));
      flushall(port);
      print("engine pattern+inline",
            run_engine(port, gilmour::ResponseScheme::kEnginePattern, inflight,
                       std::chrono::duration<double>(seconds), /*inline_mode=*/true));
      std::fflush(stdout);
    }
  }
  for (auto* c : idle) redisFree(c);
  idle.clear();
  std::printf("\nPUBLISH cost on the server (200k pipelined, nobody listening):\n");
  double p0 = publish_cost_ns(port, 200000);
  idle = idle_patterns(port, 100);
  double p100 = publish_cost_ns(port, 200000);
  for (auto* c : idle) redisFree(c);
  std::printf("  0 patterns: %.0f ns/PUBLISH   100 patterns: %.0f ns/PUBLISH   ratio %.2f\n", p0,
              p100, p100 / p0);
  return 0;
}
