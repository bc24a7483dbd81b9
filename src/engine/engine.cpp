// The engine's lifecycle: construction, start(), stop(), connection
// state and stats.
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <future>
#include <thread>

#include "codec.hpp"
#include "engine/engine_util.hpp"
#include "engine_impl.hpp"
#include "gilmour/error.hpp"
#include "topic.hpp"

namespace gilmour::detail {

namespace {

std::shared_ptr<spdlog::logger> default_logger() {
  static auto logger = [] {
    auto l = std::make_shared<spdlog::logger>("gilmour",
                                              std::make_shared<spdlog::sinks::stderr_sink_mt>());
    l->set_level(spdlog::level::warn);
    return l;
  }();
  return logger;
}

}  // namespace

InflightToken::InflightToken(const std::shared_ptr<Engine>& e) : engine_(e) { e->inflight_add(); }
InflightToken::~InflightToken() {
  if (auto e = engine_.lock()) e->inflight_done();
}

Engine::Engine(std::shared_ptr<Backend> backend, EngineOptions options)
    : backend_(std::move(backend)),
      opts_(std::move(options)),
      budget_(opts_.max_outstanding, opts_.max_outstanding_bytes) {
  if (!backend_) throw InvalidArgument("gilmour: backend is null");
  auto non_negative = [](std::chrono::milliseconds d, const char* name) {
    if (d.count() <= 0)
      throw InvalidArgument(std::string("gilmour: EngineOptions::") + name + " must be positive");
  };
  non_negative(opts_.request_timeout, "request_timeout");
  non_negative(opts_.handler_timeout, "handler_timeout");
  non_negative(opts_.connect_timeout, "connect_timeout");
  if (opts_.drain_timeout.count() < 0) {
    throw InvalidArgument("gilmour: EngineOptions::drain_timeout must not be negative");
  }
  if (opts_.lock_ttl.count() <= 0)
    throw InvalidArgument("gilmour: EngineOptions::lock_ttl must be positive");
  if (opts_.error_channel.empty() || opts_.error_queue.empty()) {
    throw InvalidArgument("gilmour: error channel and queue names must not be empty");
  }
  if (opts_.max_outstanding == 0 || opts_.max_outstanding_bytes == 0) {
    throw InvalidArgument("gilmour: EngineOptions::max_outstanding(_bytes) must be positive");
  }
  if (opts_.overflow_block_timeout.count() < 0) {
    throw InvalidArgument("gilmour: EngineOptions::overflow_block_timeout must not be negative");
  }
  if (opts_.max_pending == 0 || opts_.max_pending_bytes == 0) {
    throw InvalidArgument(
        "gilmour: EngineOptions::max_pending and max_pending_bytes must be positive");
  }
  if (opts_.saturated_lock_delay.count() < 0) {
    throw InvalidArgument("gilmour: EngineOptions::saturated_lock_delay must not be negative");
  }
  if (opts_.error_queue_max == 0)
    throw InvalidArgument("gilmour: error_queue_max must be positive");
  if (opts_.max_payload == 0 || opts_.max_payload > kMaxPayload) {
    throw InvalidArgument("gilmour: EngineOptions::max_payload must be between 1 and " +
                          std::to_string(kMaxPayload) + " bytes");
  }
  log_ = opts_.logger ? opts_.logger : default_logger();
  policy_.store(opts_.error_policy);
  id_ = make_uuid();
  ident_ = make_process_ident();
  route_ = make_response_route(opts_.response_scheme, std::string(kResponsePrefix) + id_ + ".");
  if (opts_.executor) {
    executor_ = opts_.executor;
  } else {
    std::size_t n = opts_.worker_threads;
    if (n == 0) n = std::max<std::size_t>(2, std::thread::hardware_concurrency());
    own_pool_ = std::make_shared<ThreadPool>(n);
    executor_ = own_pool_;
    io_.set_batch_end([this] { flush_handoff(); });
  }
  health_enabled_ = opts_.health_check;
}

Engine::~Engine() {
  io_.stop_and_join();
  if (own_pool_) own_pool_->shutdown();
}

// ---------------------------------------------------------------- validation

void Engine::require_running(const char* what) const {
  int s = state_.load();
  if (s != kRunning && s != kStopping) {
    throw InvalidState(std::string("gilmour: ") + what + ": engine is not running");
  }
}

// ---------------------------------------------------------------- lifecycle

bool Engine::wait_io(std::function<void(std::function<void(const Status&)>)> op,
                     std::chrono::milliseconds timeout, Status* out) {
  auto p = std::make_shared<std::promise<Status>>();
  auto f = p->get_future();
  io_.post([op = std::move(op), p] { op([p](const Status& st) { p->set_value(st); }); });
  if (f.wait_for(timeout) != std::future_status::ready) return false;
  *out = f.get();
  return true;
}

void Engine::start() {
  int expected = kNew;
  if (!state_.compare_exchange_strong(expected, kStarting)) {
    throw InvalidState("gilmour: start(): engine already started or stopped");
  }
  // The I/O thread runs from the first start() on; a failed start leaves it
  // running so that start() may be retried.
  if (!io_started_.exchange(true)) io_.start();
  // connect_timeout bounds the whole of start(), clean-up after a failure
  // included: each step waits for what is left of it.
  auto deadline = std::chrono::steady_clock::now() + opts_.connect_timeout;
  auto left = [deadline] {
    auto d = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    return std::max(d, std::chrono::milliseconds(0));
  };
  Status st;
  auto fail = [&](const std::string& why) {
    // Undo what was done, so that start() may be retried.
    Status ignored;
    wait_io(
        [this](auto done) {
          clear_subscriptions(Status::error(StatusCode::kClosing, "start failed"));
          connected_ = false;
          backend_->close(std::move(done));
        },
        left(), &ignored);
    state_.store(kNew);
    throw ConnectionError("gilmour: cannot start on " + backend_->describe() + ": " + why);
  };
  if (!wait_io([this](auto done) { backend_->open(io_, *this, std::move(done)); }, left(), &st)) {
    fail("connect timed out");
  }
  if (!st) fail(st.message());

  {
    std::lock_guard<std::mutex> lock(reg_mu_);
    if (health_enabled_ && !health_entry_) {
      health_entry_ = make_health_entry();
      entries_.push_back(health_entry_);
      entries_.push_back(make_stats_entry());
      for (auto* e : {entries_[entries_.size() - 2].get(), entries_.back().get()}) bound_queue(*e);
    }
  }
  // Subscribe the response pattern and every handler. The registry is read on
  // the I/O thread after connected_ is set, so a handler added concurrently
  // is either in this list or attaches itself afterwards (attach() is
  // idempotent).
  bool ok = wait_io(
      [this](std::function<void(const Status&)> done) {
        connected_ = true;
        std::vector<std::shared_ptr<HandlerEntry>> entries;
        {
          std::lock_guard<std::mutex> lock(reg_mu_);
          entries = entries_;
        }
        StatusJoin join(std::move(done));
        route_->open(*backend_, join.part());
        for (auto& e : entries) attach(e, join.part());
        join.seal();
      },
      left(), &st);
  if (!ok) fail("subscriptions not confirmed in time");
  if (!st) fail(st.message());
  bool health;
  {
    std::lock_guard<std::mutex> lock(reg_mu_);
    health = health_enabled_;
  }
  if (health) {
    ok = wait_io(
        [this](auto done) {
          backend_->hash_set(std::string(kHealthHash), ident_, "true", std::move(done));
        },
        left(), &st);
    if (!ok || !st) fail("cannot register health: " + (ok ? st.message() : "timed out"));
  }
  state_.store(kRunning);
  log_->debug("gilmour engine {} started on {}", id_, backend_->describe());
}

bool Engine::stop(std::chrono::milliseconds drain) {
  if (tl_handler_engine == this) {
    throw InvalidState("gilmour: stop() called from one of the engine's own handlers");
  }
  if (io_.on_io_thread()) throw InvalidState("gilmour: stop() called on the I/O thread");
  int s = state_.load();
  for (;;) {
    if (s == kStopping || s == kStopped) return true;
    if (s == kStarting) {
      std::this_thread::yield();
      s = state_.load();
      continue;
    }
    if (state_.compare_exchange_weak(s, kStopping)) break;
  }
  if (s == kNew) {
    state_.store(kStopped);
    if (io_started_.load()) io_.stop_and_join();
    return true;
  }
  // One deadline for the drain (steps 1 and 2), whatever the backlog: what
  // is still outstanding then is ended in step 3, which does no backend work
  // per message, so the close after the deadline is short.
  auto deadline = std::chrono::steady_clock::now() + drain;
  auto left = [deadline] {
    return std::max(std::chrono::duration_cast<std::chrono::milliseconds>(
                        deadline - std::chrono::steady_clock::now()),
                    std::chrono::milliseconds(0));
  };
  budget_.close();  // callers waiting for room are refused now
  Status st;
  // 1. Take no new messages; deregister health. Queued behind the backlog;
  // if that takes past the deadline, step 3 still runs after it.
  wait_io(
      [this](std::function<void(const Status&)> done) {
        StatusJoin join(std::move(done));
        for (auto& [key, subs] : subs_) backend_->unsubscribe(key, subs.pattern, join.part());
        clear_subscriptions(Status::error(StatusCode::kClosing, "engine stopping"));
        bool health;
        {
          std::lock_guard<std::mutex> lock(reg_mu_);
          health = health_entry_ != nullptr;
        }
        if (health) backend_->hash_delete(std::string(kHealthHash), ident_, join.part());
        join.seal();
      },
      std::min(opts_.connect_timeout, left()), &st);
  // 2. Let running handlers finish and queued signals go out.
  bool drained = inflight_.wait_zero(left());
  signals_inflight_.wait_zero(left());
  // From here what is still queued for the I/O thread completes at once.
  outbound_closed_.store(true);
  if (!drained) log_->warn("gilmour: stop(): handlers still running after the drain deadline");
  // No invocation starts from now on (queued ones are skipped: a reply gets
  // 503), and every Subscription reports inactive.
  {
    std::lock_guard<std::mutex> lock(reg_mu_);
    for (auto& e : entries_) e->active.store(false);
  }
  // 3. End outbound work (outbound_closed_ above: requests and signals still
  // queued for the I/O thread complete at once); waiting requests get 503
  // "shutting down". Close the backend.
  wait_io(
      [this](std::function<void(const Status&)> done) {
        // Before the backend closes, so that the 503 answers are published.
        refuse_queued_at_stop();
        fail_pending_at_stop();
        route_->close(*backend_);
        connected_ = false;
        backend_->close(std::move(done));
      },
      opts_.connect_timeout, &st);
  io_.stop_and_join();
  auto failed = counters_.requests_failed_at_stop.load();
  auto dropped = counters_.signals_dropped_at_stop.load();
  if (failed != 0 || dropped != 0) {
    log_->warn(
        "gilmour: stop(): {} outstanding requests completed with 503 shutting down, {} signals "
        "not published",
        failed, dropped);
  }
  // Queued callbacks run; a handler stuck past the deadline is not waited for
  // (its worker finishes on its own and its late answer is dropped).
  if (own_pool_) own_pool_->shutdown(drained ? left() : std::chrono::milliseconds(0));
  state_.store(kStopped);
  return drained;
}

void Engine::clear_subscriptions(const Status& why) {
  for (auto& [key, subs] : subs_) {
    for (auto& h : subs.handlers) h->attached = false;
    for (auto& w : subs.waiters) w(why);
  }
  subs_.clear();
}

void Engine::on_connection_state(ConnectionState state, std::string_view detail) {
  switch (state) {
    case ConnectionState::kConnected:
      log_->info("gilmour: connected to {}", backend_->describe());
      return;  // start() returning says it
    case ConnectionState::kDisconnected:
      log_->warn("gilmour: lost {}: {}", backend_->describe(), detail);
      backend_down_.store(true);
      break;
    case ConnectionState::kReconnected: {
      counters_.reconnects.fetch_add(1, std::memory_order_relaxed);
      log_->warn("gilmour: reconnected to {}", backend_->describe());
      // Nothing to do for subscriptions: the backend owns the set across
      // reconnects and has completed each subscribe() made while it was down
      // when the server confirmed its restore (gilmour/backend.hpp).
      backend_down_.store(false);
      break;
    }
  }
  if (opts_.on_connection_state) {
    executor_->submit(
        [hook = opts_.on_connection_state, state, d = std::string(detail), log = log_] {
          call_logged(log, "on_connection_state hook", [&] { hook(state, d); });
        });
  }
}

Stats Engine::stats() const {
  Stats s;
  auto r = [](const std::atomic<std::uint64_t>& a) { return a.load(std::memory_order_relaxed); };
  s.requests_sent = r(counters_.requests_sent);
  s.responses_received = r(counters_.responses_received);
  s.requests_handled = r(counters_.requests_handled);
  s.responses_sent = r(counters_.responses_sent);
  s.signals_sent = r(counters_.signals_sent);
  s.signals_received = r(counters_.signals_received);
  s.lock_lost = r(counters_.lock_lost);
  s.handler_errors = r(counters_.handler_errors);
  s.server_timeouts = r(counters_.server_timeouts);
  s.client_timeouts = r(counters_.client_timeouts);
  s.no_listeners = r(counters_.no_listeners);
  s.publish_failures = r(counters_.publish_failures);
  s.malformed_dropped = r(counters_.malformed_dropped);
  s.oversized_dropped = r(counters_.oversized_dropped);
  s.stray_responses = r(counters_.stray_responses);
  s.errors_reported = r(counters_.errors_reported);
  s.reconnects = r(counters_.reconnects);
  s.slow_inline = r(counters_.slow_inline);
  s.overloaded = r(counters_.overloaded);
  s.requests_failed_at_stop = r(counters_.requests_failed_at_stop);
  s.signals_dropped_at_stop = r(counters_.signals_dropped_at_stop);
  s.slow_consumer_dropped = r(counters_.slow_consumer_dropped);
  s.lock_deferred = r(counters_.lock_deferred);
  s.requests_refused_at_stop = r(counters_.requests_refused_at_stop);
  s.inbound_dropped_at_stop = r(counters_.inbound_dropped_at_stop);
  s.expired_dropped = r(counters_.expired_dropped);
  return s;
}

}  // namespace gilmour::detail
