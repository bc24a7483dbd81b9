#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <future>
#include <thread>

#include "codec.hpp"
#include "engine_impl.hpp"
#include "gilmour/error.hpp"
#include "topic.hpp"

namespace gilmour {
namespace detail {

namespace {

thread_local const Engine* tl_handler_engine = nullptr;

/// Marks the current thread as running a handler of `e` (stop() from a
/// handler would wait for itself).
class HandlerScope {
 public:
  explicit HandlerScope(const Engine* e) : prev_(tl_handler_engine) { tl_handler_engine = e; }
  ~HandlerScope() { tl_handler_engine = prev_; }
  HandlerScope(const HandlerScope&) = delete;
  HandlerScope& operator=(const HandlerScope&) = delete;

 private:
  const Engine* prev_;
};

std::shared_ptr<spdlog::logger> default_logger() {
  static auto logger = [] {
    auto l = std::make_shared<spdlog::logger>("gilmour",
                                              std::make_shared<spdlog::sinks::stderr_sink_mt>());
    l->set_level(spdlog::level::warn);
    return l;
  }();
  return logger;
}

std::string topic_of_channel(const std::string& channel) {
  for (auto prefix : {kRequestPrefix, kSlotPrefix}) {
    if (channel.compare(0, prefix.size(), prefix) == 0) return channel.substr(prefix.size());
  }
  return channel;
}

Message timeout_message() { return Message("Execution timed out", code::kTimeout); }

/// Runs user code (a handler, callback or hook); returns the error text when
/// it threw, nothing otherwise. No exception leaves it.
template <typename F>
std::optional<std::string> run_user(F&& f) noexcept {
  try {
    f();
    return std::nullopt;
  } catch (const std::exception& e) {
    return std::string(e.what());
  } catch (...) {
    return std::string("unknown exception");
  }
}

/// Runs a user callback and logs (rather than propagates) what it throws.
template <typename F>
void call_logged(const std::shared_ptr<spdlog::logger>& log, const char* what, F&& f) noexcept {
  if (auto err = run_user(std::forward<F>(f))) log->warn("gilmour: {} threw: {}", what, *err);
}

/// Joins backend callbacks: `done` runs once, with the first error (or ok),
/// after every callback handed out by part() has run and seal() was called.
class StatusJoin {
 public:
  explicit StatusJoin(std::function<void(const Status&)> done) : s_(std::make_shared<Shared>()) {
    s_->done = std::move(done);
  }
  std::function<void(const Status&)> part() {
    ++s_->remaining;
    return [s = s_](const Status& st) { s->arrive(st); };
  }
  void seal() { s_->arrive(Status()); }

 private:
  struct Shared {
    std::size_t remaining = 1;  // the seal
    Status first;
    std::function<void(const Status&)> done;
    void arrive(const Status& st) {
      if (!st && first.ok()) first = st;
      if (--remaining == 0) done(first);
    }
  };
  std::shared_ptr<Shared> s_;
};

}  // namespace

InflightToken::InflightToken(const std::shared_ptr<Engine>& e) : engine_(e) { e->inflight_add(); }
InflightToken::~InflightToken() {
  if (auto e = engine_.lock()) e->inflight_done();
}

Engine::Engine(std::shared_ptr<Backend> backend, EngineOptions options)
    : backend_(std::move(backend)), opts_(std::move(options)) {
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
  if (opts_.error_queue_max == 0)
    throw InvalidArgument("gilmour: error_queue_max must be positive");
  log_ = opts_.logger ? opts_.logger : default_logger();
  policy_.store(opts_.error_policy);
  id_ = make_uuid();
  ident_ = make_process_ident();
  response_prefix_ = std::string(kResponsePrefix) + id_ + ".";
  if (opts_.executor) {
    executor_ = opts_.executor;
  } else {
    std::size_t n = opts_.worker_threads;
    if (n == 0) n = std::max<std::size_t>(4, std::thread::hardware_concurrency());
    own_pool_ = std::make_shared<ThreadPool>(n);
    executor_ = own_pool_;
  }
  health_enabled_ = opts_.health_check;
}

Engine::~Engine() {
  io_.stop_and_join();
  if (own_pool_) own_pool_->shutdown();
}

// ---------------------------------------------------------------- validation

void Engine::check_topic(std::string_view topic, const char* what) const {
  if (topic.empty()) throw InvalidArgument(std::string("gilmour: ") + what + ": empty topic");
  if (has_wildcard(topic)) {
    throw InvalidArgument(std::string("gilmour: ") + what +
                          ": topic may not contain '*': " + std::string(topic));
  }
}

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
  Status st;
  auto fail = [&](const std::string& why) {
    // Undo what was done, so that start() may be retried.
    Status ignored;
    wait_io(
        [this](auto done) {
          clear_subscriptions(Status::error("start failed"));
          connected_ = false;
          backend_->close(std::move(done));
        },
        opts_.connect_timeout, &ignored);
    state_.store(kNew);
    throw ConnectionError("gilmour: cannot start on " + backend_->describe() + ": " + why);
  };
  if (!wait_io([this](auto done) { backend_->open(io_, *this, std::move(done)); },
               opts_.connect_timeout, &st)) {
    fail("connect timed out");
  }
  if (!st) fail(st.message());

  {
    std::lock_guard<std::mutex> lock(reg_mu_);
    if (health_enabled_ && !health_entry_) {
      health_entry_ = make_health_entry();
      entries_.push_back(health_entry_);
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
        if (opts_.response_scheme == ResponseScheme::kEnginePattern) {
          backend_->subscribe(response_prefix_ + "*", true, join.part());
        }
        for (auto& e : entries) attach(e, join.part());
        join.seal();
      },
      opts_.connect_timeout, &st);
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
        opts_.connect_timeout, &st);
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
  Status st;
  // 1. Take no new messages; deregister health.
  wait_io(
      [this](std::function<void(const Status&)> done) {
        StatusJoin join(std::move(done));
        for (auto& [key, subs] : subs_) backend_->unsubscribe(key, subs.pattern, join.part());
        clear_subscriptions(Status::error("engine stopping"));
        bool health;
        {
          std::lock_guard<std::mutex> lock(reg_mu_);
          health = health_entry_ != nullptr;
        }
        if (health) backend_->hash_delete(std::string(kHealthHash), ident_, join.part());
        join.seal();
      },
      opts_.connect_timeout, &st);
  // 2. Let running handlers finish.
  bool drained;
  {
    std::unique_lock<std::mutex> lock(drain_mu_);
    drained = drain_cv_.wait_for(lock, drain, [this] { return inflight_ == 0; });
  }
  if (!drained) log_->warn("gilmour: stop(): handlers still running after the drain deadline");
  // No invocation starts from now on (queued ones are skipped: a reply gets
  // 503), and every Subscription reports inactive.
  {
    std::lock_guard<std::mutex> lock(reg_mu_);
    for (auto& e : entries_) e->active.store(false);
  }
  // 3. Complete waiting requests; close the backend.
  wait_io(
      [this](std::function<void(const Status&)> done) {
        auto pending = std::move(pending_);
        pending_.clear();
        for (auto& [seq, p] : pending) {
          io_.cancel(p.timer);
          p.complete(Message("engine stopped", code::kUnavailable));
        }
        if (opts_.response_scheme == ResponseScheme::kEnginePattern) {
          backend_->unsubscribe(response_prefix_ + "*", true, [](const Status&) {});
        }
        connected_ = false;
        backend_->close(std::move(done));
      },
      opts_.connect_timeout, &st);
  io_.stop_and_join();
  // Queued callbacks run; a handler stuck past the deadline is not waited for
  // (its worker finishes on its own and its late answer is dropped).
  if (own_pool_) own_pool_->shutdown(drained ? opts_.drain_timeout : std::chrono::milliseconds(0));
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

void Engine::inflight_add() noexcept {
  std::lock_guard<std::mutex> lock(drain_mu_);
  ++inflight_;
}

void Engine::inflight_done() noexcept {
  std::lock_guard<std::mutex> lock(drain_mu_);
  if (--inflight_ == 0) drain_cv_.notify_all();
}

// ---------------------------------------------------------------- handlers

Subscription Engine::add_handler(std::shared_ptr<HandlerEntry> entry) {
  {
    std::lock_guard<std::mutex> lock(reg_mu_);
    if (entry->kind == HandlerKind::kReply) {
      auto key = std::make_pair(entry->channel, entry->group);
      if (reply_keys_.count(key)) {
        throw InvalidArgument("gilmour: reply_to(): a handler for topic '" + entry->topic +
                              "' and group '" + entry->group + "' already exists");
      }
      reply_keys_.insert(std::move(key));
    }
    entries_.push_back(entry);
  }
  Subscription sub;
  sub.engine_ = weak_from_this();
  sub.entry_ = entry;
  int s = state_.load();
  if (s == kRunning || s == kStarting) {
    if (io_.on_io_thread()) {
      attach(entry, [](const Status&) {});
    } else {
      Status st;
      bool ok = wait_io([this, entry](auto done) { attach(entry, std::move(done)); },
                        opts_.connect_timeout, &st);
      if (!ok || !st) {
        log_->warn(
            "gilmour: subscription to {} not confirmed yet ({}); it stands and is "
            "restored when the backend reconnects",
            entry->channel, ok ? st.message() : "timed out");
      }
    }
  }
  return sub;
}

void Engine::remove_handler(const std::shared_ptr<HandlerEntry>& entry) noexcept {
  if (!entry->active.exchange(false)) return;
  {
    std::lock_guard<std::mutex> lock(reg_mu_);
    if (entry->kind == HandlerKind::kReply) reply_keys_.erase({entry->channel, entry->group});
    entries_.erase(std::remove(entries_.begin(), entries_.end(), entry), entries_.end());
  }
  int s = state_.load();
  if (s == kRunning || s == kStarting) {
    try {
      io_.post([self = shared_from_this(), entry] { self->detach(entry); });
    } catch (...) {  // allocation failure: the handler stays inactive
    }
  }
}

void Engine::attach(const std::shared_ptr<HandlerEntry>& entry,
                    std::function<void(const Status&)> done) {
  if (state_.load() >= kStopping) {
    done(Status::error("engine stopping"));
    return;
  }
  if (entry->attached || !entry->active.load() || !connected_) {
    done(Status());
    return;
  }
  entry->attached = true;
  auto [it, inserted] = subs_.try_emplace(entry->channel);
  auto& subs = it->second;
  subs.handlers.push_back(entry);
  if (!inserted) {
    if (subs.confirmed) {
      done(Status());
    } else {
      subs.waiters.push_back(std::move(done));
    }
    return;
  }
  subs.pattern = entry->pattern;
  subs.waiters.push_back(std::move(done));
  backend_->subscribe(entry->channel, entry->pattern,
                      [self = shared_from_this(), key = entry->channel](const Status& st) {
                        auto it = self->subs_.find(key);
                        if (it == self->subs_.end()) return;
                        if (st) it->second.confirmed = true;
                        auto waiters = std::move(it->second.waiters);
                        it->second.waiters.clear();
                        for (auto& w : waiters) w(st);
                      });
}

void Engine::detach(const std::shared_ptr<HandlerEntry>& entry) {
  if (!entry->attached) return;
  entry->attached = false;
  auto it = subs_.find(entry->channel);
  if (it == subs_.end()) return;
  auto& hs = it->second.handlers;
  hs.erase(std::remove(hs.begin(), hs.end(), entry), hs.end());
  if (!hs.empty()) return;
  for (auto& w : it->second.waiters) w(Status::error("unsubscribed"));
  bool pattern = it->second.pattern;
  subs_.erase(it);
  backend_->unsubscribe(entry->channel, pattern, [](const Status&) {});
}

std::shared_ptr<HandlerEntry> Engine::make_health_entry() {
  auto h = std::make_shared<HandlerEntry>();
  h->kind = HandlerKind::kReply;
  h->topic = std::string(kHealthPrefix) + ident_;
  h->channel = h->topic;
  h->group = std::string(kHealthGroup);
  h->internal = true;
  h->reply = [this](const Request&, Response& res) { res.set_data(listened_channels()); };
  return h;
}

std::vector<std::string> Engine::listened_channels() const {
  std::lock_guard<std::mutex> lock(reg_mu_);
  std::vector<std::string> out;
  for (auto& e : entries_) {
    if (!e->internal && std::find(out.begin(), out.end(), e->channel) == out.end()) {
      out.push_back(e->channel);
    }
  }
  return out;
}

void Engine::enable_health_check() {
  bool now_running;
  {
    std::lock_guard<std::mutex> lock(reg_mu_);
    if (health_enabled_) return;
    health_enabled_ = true;
    now_running = state_.load() == kRunning;
  }
  if (!now_running) return;
  auto h = make_health_entry();
  {
    std::lock_guard<std::mutex> lock(reg_mu_);
    health_entry_ = h;
  }
  add_handler(h).detach();
  Status st;
  wait_io(
      [this](auto done) {
        backend_->hash_set(std::string(kHealthHash), ident_, "true", std::move(done));
      },
      opts_.connect_timeout, &st);
}

// ---------------------------------------------------------------- incoming

void Engine::on_message(std::string_view channel, std::string_view pattern,
                        std::string_view payload) {
  if (channel.size() > response_prefix_.size() &&
      channel.compare(0, response_prefix_.size(), response_prefix_) == 0) {
    on_response(channel, payload);
    return;
  }
  lookup_key_.assign(pattern.empty() ? channel : pattern);  // reused: no allocation per message
  auto it = subs_.find(lookup_key_);
  if (it == subs_.end() || it->second.handlers.empty()) return;
  DecodeError why;
  auto decoded = decode_envelope(payload, &why);
  if (!decoded) {
    warn_malformed(channel, why.reason);
    return;
  }
  if (decoded->sender().empty()) {
    warn_malformed(channel, "missing sender");
    return;
  }
  log_->trace("gilmour: {} <- {}", channel, payload);
  auto msg = std::make_shared<const Message>(std::move(*decoded));
  std::string ch(channel);
  // No copy: nothing below changes subs_ synchronously (dispatch submits to
  // the executor; the lock callback runs later, on a later loop turn).
  for (auto& h : it->second.handlers) {
    if (!h->active.load()) continue;
    if (h->group.empty()) {
      dispatch(h, msg, ch);
      continue;
    }
    backend_->acquire_lock(msg->sender() + h->group, opts_.lock_ttl,
                           [self = shared_from_this(), h, msg, ch](const Status& st, bool won) {
                             if (!st) {
                               self->log_->warn("gilmour: exclusion lock for {} failed: {}", ch,
                                                st.message());
                               return;
                             }
                             if (!won) {
                               self->counters_.lock_lost.fetch_add(1, std::memory_order_relaxed);
                               return;
                             }
                             self->dispatch(h, msg, ch);
                           });
  }
}

void Engine::warn_malformed(std::string_view channel, std::string_view reason) {
  counters_.malformed_dropped.fetch_add(1, std::memory_order_relaxed);
  auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::steady_clock::now().time_since_epoch())
                 .count();
  auto last = last_malformed_log_.load();
  if (now - last < 1000 || !last_malformed_log_.compare_exchange_strong(last, now)) {
    malformed_suppressed_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  auto suppressed = malformed_suppressed_.exchange(0);
  log_->warn("gilmour: dropped a malformed message on {}: {} ({} more suppressed)", channel, reason,
             suppressed);
}

void Engine::dispatch(const std::shared_ptr<HandlerEntry>& h,
                      const std::shared_ptr<const Message>& msg, const std::string& channel) {
  auto req = std::make_shared<Request::Impl>();
  req->topic = h->topic;
  req->channel = channel;
  req->message = msg;
  auto timeout = h->timeout.count() > 0 ? h->timeout : opts_.handler_timeout;
  auto self = shared_from_this();
  if (h->kind == HandlerKind::kReply) {
    counters_.requests_handled.fetch_add(1, std::memory_order_relaxed);
    auto st = std::make_shared<ReplyState>();
    st->engine = self;
    st->handler = h;
    st->request = std::move(req);
    st->token = std::make_unique<InflightToken>(self);
    st->timer = io_.schedule(timeout, [self, st] {
      if (st->done.exchange(true)) return;
      self->counters_.server_timeouts.fetch_add(1, std::memory_order_relaxed);
      auto m = timeout_message();
      self->backend_->publish(
          std::string(kResponsePrefix) + st->request->message->sender(),
          encode_envelope(m.data(), m.code(),
                          std::string(kResponsePrefix) + st->request->message->sender()),
          [](const Status&, std::int64_t) {});
      self->counters_.responses_sent.fetch_add(1, std::memory_order_relaxed);
      self->report_error(self->make_record(*st->request, m.code(), m.data()));
      st->token.reset();
    });
    submit_for(h, [self, st] { self->run_reply(st); });
  } else {
    counters_.signals_received.fetch_add(1, std::memory_order_relaxed);
    auto st = std::make_shared<SlotState>();
    auto token = std::make_shared<InflightToken>(self);
    st->timer = io_.schedule(timeout, [self, st, req] {
      if (st->done.exchange(true)) return;
      self->counters_.server_timeouts.fetch_add(1, std::memory_order_relaxed);
      auto m = timeout_message();
      self->report_error(self->make_record(*req, m.code(), m.data()));
    });
    submit_for(h, [self, h, req, st, token] { self->run_slot(h, req, st); });
  }
}

void Engine::submit_for(const std::shared_ptr<HandlerEntry>& h, std::function<void()> task) {
  if (!h->ordered) {
    executor_->submit(std::move(task));
    return;
  }
  // Ordered: one invocation at a time, in arrival order. A single drainer
  // task per handler runs its queue; it ends when the queue is empty.
  {
    std::lock_guard<std::mutex> lock(h->serial_mu);
    h->serial_queue.push_back(std::move(task));
    if (h->serial_running) return;
    h->serial_running = true;
  }
  executor_->submit([h] {
    for (;;) {
      std::function<void()> next;
      {
        std::lock_guard<std::mutex> lock(h->serial_mu);
        if (h->serial_queue.empty()) {
          h->serial_running = false;
          return;
        }
        next = std::move(h->serial_queue.front());
        h->serial_queue.pop_front();
      }
      next();
    }
  });
}

void Engine::run_reply(const std::shared_ptr<ReplyState>& st) {
  InflightToken running(shared_from_this());
  const auto& h = st->handler;
  if (!h->active.load()) {
    finish_reply(st, "handler removed", code::kUnavailable);
    return;
  }
  Request req;
  req.impl_ = st->request;
  Response res(st);
  auto err = run_user([&] {
    HandlerScope scope(this);
    h->reply(req, res);
  });
  if (err) {
    counters_.handler_errors.fetch_add(1, std::memory_order_relaxed);
    finish_reply(st, std::move(*err), code::kHandlerError);
    return;
  }
  if (!res.deferred_) {
    int c = res.message_.code();
    finish_reply(st, std::move(res.message_.data()), c);
  }
}

bool Engine::finish_reply(const std::shared_ptr<ReplyState>& st, nlohmann::json data, int code) {
  if (st->done.exchange(true)) return false;
  const std::string& sender = st->request->message->sender();
  std::string channel = std::string(kResponsePrefix) + sender;
  std::string payload = encode_envelope(data, code, channel);
  std::optional<ErrorRecord> record;
  if (code >= 300) record = make_record(*st->request, code, std::move(data));
  return io_.try_post([self = shared_from_this(), st, channel = std::move(channel),
                       payload = std::move(payload), record = std::move(record)]() mutable {
    self->io_.cancel(st->timer);
    self->backend_->publish(channel, std::move(payload), [self](const Status& s, std::int64_t) {
      if (!s) {
        self->counters_.publish_failures.fetch_add(1, std::memory_order_relaxed);
        self->log_->warn("gilmour: response not published: {}", s.message());
      }
    });
    self->counters_.responses_sent.fetch_add(1, std::memory_order_relaxed);
    if (record) self->report_error(std::move(*record));
    st->token.reset();
  });
}

void Engine::run_slot(const std::shared_ptr<HandlerEntry>& h,
                      const std::shared_ptr<const Request::Impl>& req,
                      const std::shared_ptr<SlotState>& st) {
  if (h->active.load()) {
    Request r;
    r.impl_ = req;
    auto err = run_user([&] {
      HandlerScope scope(this);
      h->slot(r);
    });
    if (err) {
      counters_.handler_errors.fetch_add(1, std::memory_order_relaxed);
      report_error(make_record(*req, code::kHandlerError, std::move(*err)));
    }
  }
  if (!st->done.exchange(true)) {
    io_.post([self = shared_from_this(), st] { self->io_.cancel(st->timer); });
  }
}

// ---------------------------------------------------------------- errors

ErrorRecord Engine::make_record(const Request::Impl& req, int code,
                                nlohmann::json backtrace) const {
  ErrorRecord r;
  r.topic = topic_of_channel(req.channel);
  r.request_data = req.message->to_json();
  r.sender = req.message->sender();
  r.timestamp = ErrorRecord::now_timestamp();
  r.backtrace = std::move(backtrace);
  r.code = code;
  return r;
}

void Engine::report_error(ErrorRecord record) {
  log_->debug("gilmour: error {} on {}", record.code, record.topic);
  if (opts_.error_hook) {
    auto hook = opts_.error_hook;
    auto copy = std::make_shared<ErrorRecord>(record);
    executor_->submit(
        [hook, copy, log = log_] { call_logged(log, "error hook", [&] { hook(*copy); }); });
  }
  if (policy_.load() == ErrorPolicy::kIgnore) return;
  if (io_.on_io_thread()) {
    publish_error(record);
  } else {
    io_.post(
        [self = shared_from_this(), record = std::move(record)] { self->publish_error(record); });
  }
}

void Engine::publish_error(const ErrorRecord& record) {
  auto on_done = [self = shared_from_this()](const Status& s) {
    if (!s) {
      self->counters_.publish_failures.fetch_add(1, std::memory_order_relaxed);
      self->log_->warn("gilmour: error record not reported: {}", s.message());
    }
  };
  switch (policy_.load()) {
    case ErrorPolicy::kPublish:
      counters_.errors_reported.fetch_add(1, std::memory_order_relaxed);
      backend_->publish(opts_.error_channel,
                        encode_envelope_text(record.dump(), record.code, make_uuid()),
                        [on_done](const Status& s, std::int64_t) { on_done(s); });
      break;
    case ErrorPolicy::kQueue:
      counters_.errors_reported.fetch_add(1, std::memory_order_relaxed);
      backend_->list_push_trim(opts_.error_queue, record.dump(),
                               static_cast<std::int64_t>(opts_.error_queue_max), on_done);
      break;
    case ErrorPolicy::kIgnore:
      break;
  }
}

// ---------------------------------------------------------------- outgoing

std::string Engine::response_channel(std::uint64_t seq) const {
  return response_prefix_ + std::to_string(seq);
}

void Engine::signal(std::string_view topic, nlohmann::json data, SignalCallback done,
                    SignalOptions options) {
  check_topic(topic, "signal()");
  require_running("signal()");
  auto seq = seq_.fetch_add(1) + 1;
  std::string channel = slot_channel(topic);
  std::string payload = encode_envelope(data, code::kOk, id_ + "." + std::to_string(seq));
  counters_.signals_sent.fetch_add(1, std::memory_order_relaxed);
  bool posted = io_.try_post([self = shared_from_this(), channel = std::move(channel),
                              payload = std::move(payload), done,
                              confirm = options.confirm_subscribers,
                              t = std::string(topic)]() mutable {
    self->backend_->publish(
        channel, std::move(payload), [self, done, confirm, t](const Status& st, std::int64_t n) {
          SignalResult r;
          r.status = st;
          r.receivers = st ? n : 0;
          if (!st) {
            self->counters_.publish_failures.fetch_add(1);
            self->log_->warn("gilmour: signal on {} not published: {}", t, st.message());
          } else if (confirm && n == 0) {
            self->counters_.no_listeners.fetch_add(1);
            r.status = Status::error("No active listeners for: " + t);
          }
          if (done) {
            self->executor_->submit([done, r, log = self->log_] {
              call_logged(log, "signal callback", [&] { done(r); });
            });
          }
        });
  });
  if (!posted && done) {
    SignalResult r;
    r.status = Status::error("engine stopped");
    done(r);
  }
}

void Engine::request(std::string_view topic, nlohmann::json data,
                     std::function<void(Message)> complete, bool complete_on_io,
                     RequestOptions options) {
  check_topic(topic, "request()");
  if (options.timeout.count() < 0) throw InvalidArgument("gilmour: request(): negative timeout");
  require_running("request()");
  auto timeout = options.timeout.count() > 0 ? options.timeout : opts_.request_timeout;
  auto seq = seq_.fetch_add(1) + 1;
  std::string payload = encode_envelope(data, code::kOk, id_ + "." + std::to_string(seq));
  // The callback form completes on the executor; if the request cannot even
  // reach the I/O thread (the engine is stopping), it completes here, inline.
  auto user = std::make_shared<std::function<void(Message)>>(std::move(complete));
  auto log = log_;
  auto call_user = [user, log](Message m) {
    call_logged(log, "request callback", [&] { (*user)(std::move(m)); });
  };
  std::function<void(Message)> on_io;
  if (complete_on_io) {
    on_io = call_user;
  } else {
    on_io = [executor = executor_, call_user](Message m) {
      executor->submit([call_user, m = std::move(m)]() mutable { call_user(std::move(m)); });
    };
  }
  counters_.requests_sent.fetch_add(1, std::memory_order_relaxed);
  bool posted =
      io_.try_post([self = shared_from_this(), seq, channel = request_channel(topic),
                    payload = std::move(payload), t = std::string(topic), timeout,
                    confirm = options.confirm_subscribers, on_io = std::move(on_io)]() mutable {
        self->start_request(seq, std::move(channel), std::move(payload), std::move(t), timeout,
                            confirm, std::move(on_io));
      });
  if (!posted) call_user(Message("engine stopped", code::kUnavailable));
}

void Engine::start_request(std::uint64_t seq, std::string channel, std::string payload,
                           std::string topic, std::chrono::milliseconds timeout, bool confirm,
                           std::function<void(Message)> complete) {
  if (state_.load() == kStopped || !connected_) {
    complete(Message("engine stopped", code::kUnavailable));
    return;
  }
  auto self = shared_from_this();
  Pending p;
  p.complete = std::move(complete);
  p.timer = io_.schedule(timeout, [self, seq] {
    auto it = self->pending_.find(seq);
    if (it == self->pending_.end()) return;
    it->second.timer = {};
    self->counters_.client_timeouts.fetch_add(1, std::memory_order_relaxed);
    self->finish_request(seq, timeout_message());
  });
  p.own_channel = opts_.response_scheme == ResponseScheme::kPerRequest;
  pending_.emplace(seq, std::move(p));
  auto publish = [self, seq, channel = std::move(channel), payload = std::move(payload),
                  topic = std::move(topic), confirm]() mutable {
    if (!self->pending_.count(seq)) return;
    self->backend_->publish(
        channel, std::move(payload), [self, seq, confirm, topic](const Status& st, std::int64_t n) {
          if (!st) {
            self->counters_.publish_failures.fetch_add(1, std::memory_order_relaxed);
            self->finish_request(seq,
                                 Message("request not sent: " + st.message(), code::kUnavailable));
          } else if (confirm && n == 0) {
            self->counters_.no_listeners.fetch_add(1, std::memory_order_relaxed);
            self->finish_request(seq,
                                 Message("No active listeners for: " + topic, code::kNotFound));
          }
        });
  };
  if (opts_.response_scheme == ResponseScheme::kPerRequest) {
    backend_->subscribe(response_channel(seq), false,
                        [self, seq, publish = std::move(publish)](const Status& st) mutable {
                          if (!st) {
                            self->finish_request(seq, Message("request not sent: " + st.message(),
                                                              code::kUnavailable));
                            return;
                          }
                          publish();
                        });
  } else {
    publish();
  }
}

void Engine::finish_request(std::uint64_t seq, Message m) {
  auto it = pending_.find(seq);
  if (it == pending_.end()) return;
  auto p = std::move(it->second);
  pending_.erase(it);
  io_.cancel(p.timer);
  if (p.own_channel) backend_->unsubscribe(response_channel(seq), false, [](const Status&) {});
  m.set_sender(id_ + "." + std::to_string(seq));
  p.complete(std::move(m));
}

void Engine::on_response(std::string_view channel, std::string_view payload) {
  auto digits = channel.substr(response_prefix_.size());
  std::uint64_t seq = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return;  // not one of our senders
    seq = seq * 10 + static_cast<std::uint64_t>(c - '0');
  }
  if (!pending_.count(seq)) {
    counters_.stray_responses.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  DecodeError why;
  auto m = decode_envelope(payload, &why);
  if (!m) {
    warn_malformed(channel, why.reason);
    return;
  }
  counters_.responses_received.fetch_add(1, std::memory_order_relaxed);
  log_->trace("gilmour: {} <- {}", channel, payload);
  finish_request(seq, std::move(*m));
}

Message Engine::request_sync(std::string_view topic, nlohmann::json data, RequestOptions options) {
  if (io_.on_io_thread()) {
    throw InvalidState("gilmour: request_sync() called on the engine's I/O thread");
  }
  auto p = std::make_shared<std::promise<Message>>();
  auto f = p->get_future();
  request(
      topic, std::move(data), [p](Message m) { p->set_value(std::move(m)); }, true, options);
  ThreadPool::BlockingScope blocking;
  return f.get();
}

void Engine::on_connection_state(ConnectionState state, std::string_view detail) {
  switch (state) {
    case ConnectionState::kConnected:
      log_->info("gilmour: connected to {}", backend_->describe());
      break;
    case ConnectionState::kDisconnected:
      log_->warn("gilmour: lost {}: {}", backend_->describe(), detail);
      break;
    case ConnectionState::kReconnected: {
      counters_.reconnects.fetch_add(1, std::memory_order_relaxed);
      log_->warn("gilmour: reconnected to {}", backend_->describe());
      // The backend has restored every subscription it keeps, including those
      // whose subscribe failed while it was down: they are confirmed now (a
      // later handler on such a channel would otherwise wait for a
      // confirmation that never comes).
      std::vector<std::function<void(const Status&)>> waiters;
      for (auto& [key, subs] : subs_) {
        if (subs.confirmed) continue;
        subs.confirmed = true;
        for (auto& w : subs.waiters) waiters.push_back(std::move(w));
        subs.waiters.clear();
      }
      for (auto& w : waiters) w(Status());
      break;
    }
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
  s.stray_responses = r(counters_.stray_responses);
  s.errors_reported = r(counters_.errors_reported);
  s.reconnects = r(counters_.reconnects);
  return s;
}

}  // namespace detail

// ==================================================================== public

ErrorPolicy parse_error_policy(std::string_view name) {
  if (name == "publish") return ErrorPolicy::kPublish;
  if (name == "queue") return ErrorPolicy::kQueue;
  if (name == "ignore" || name.empty()) return ErrorPolicy::kIgnore;
  throw InvalidArgument("gilmour: unknown error policy '" + std::string(name) +
                        "' (expected publish, queue or ignore)");
}

std::string_view to_string(ErrorPolicy policy) noexcept {
  switch (policy) {
    case ErrorPolicy::kPublish:
      return "publish";
    case ErrorPolicy::kQueue:
      return "queue";
    case ErrorPolicy::kIgnore:
      return "ignore";
  }
  return "ignore";
}

const std::string& Request::topic() const noexcept { return impl_->topic; }
const std::string& Request::channel() const noexcept { return impl_->channel; }
const Message& Request::message() const noexcept { return *impl_->message; }

Response::Response(std::shared_ptr<detail::ReplyState> state) : state_(std::move(state)) {}

Response& Response::set_data(nlohmann::json data) {
  message_.set_data(std::move(data));
  return *this;
}

Response& Response::set_code(int c) noexcept {
  message_.set_code(c);
  return *this;
}

Response::Deferred Response::defer() {
  Deferred d;
  if (deferred_) throw InvalidState("gilmour: Response::defer() called twice");
  deferred_ = true;
  d.state_ = state_;
  std::weak_ptr<detail::ReplyState> weak = state_;
  // A non-null pointer, so that valid() is true; its deleter answers 500 when
  // the last copy goes unanswered.
  d.guard_ = std::shared_ptr<void>(reinterpret_cast<void*>(1), [weak](void*) {
    auto st = weak.lock();
    if (!st || st->done.load()) return;
    if (auto e = st->engine.lock()) e->finish_reply(st, "response abandoned", code::kHandlerError);
  });
  return d;
}

bool Response::Deferred::respond(nlohmann::json data, int c) {
  if (!state_) throw InvalidState("gilmour: respond() on an empty Deferred");
  auto e = state_->engine.lock();
  if (!e) return false;
  return e->finish_reply(state_, std::move(data), c);
}

Subscription::~Subscription() { cancel(); }
Subscription::Subscription(Subscription&& other) noexcept
    : engine_(std::move(other.engine_)), entry_(std::move(other.entry_)) {}
Subscription& Subscription::operator=(Subscription&& other) noexcept {
  if (this != &other) {
    cancel();
    engine_ = std::move(other.engine_);
    entry_ = std::move(other.entry_);
  }
  return *this;
}

void Subscription::cancel() noexcept {
  if (!entry_) return;
  if (auto e = engine_.lock()) {
    e->remove_handler(entry_);
  } else {
    entry_->active.store(false);
  }
  entry_.reset();
  engine_.reset();
}

void Subscription::detach() noexcept {
  entry_.reset();
  engine_.reset();
}

bool Subscription::active() const noexcept { return entry_ && entry_->active.load(); }

const std::string& Subscription::topic() const noexcept {
  static const std::string empty;
  return entry_ ? entry_->topic : empty;
}

Gilmour::Gilmour(std::shared_ptr<Backend> backend, EngineOptions options)
    : impl_(std::make_shared<detail::Engine>(std::move(backend), std::move(options))) {}

Gilmour::~Gilmour() {
  if (impl_) impl_->stop(impl_->opts_.drain_timeout);
}
Gilmour::Gilmour(Gilmour&&) noexcept = default;
Gilmour& Gilmour::operator=(Gilmour&& other) noexcept {
  if (this != &other) {
    if (impl_) impl_->stop(impl_->opts_.drain_timeout);
    impl_ = std::move(other.impl_);
  }
  return *this;
}

void Gilmour::start() { impl_->start(); }
bool Gilmour::stop() { return impl_->stop(impl_->opts_.drain_timeout); }
bool Gilmour::stop(std::chrono::milliseconds drain) { return impl_->stop(drain); }
bool Gilmour::running() const noexcept { return impl_ && impl_->running(); }

namespace {
void check_handler_options(const HandlerOptions& o, const char* what) {
  if (o.timeout.count() < 0) {
    throw InvalidArgument(std::string("gilmour: ") + what + ": negative timeout");
  }
}
}  // namespace

Subscription Gilmour::slot(std::string_view topic, SlotHandler handler, HandlerOptions options) {
  if (topic.empty()) throw InvalidArgument("gilmour: slot(): empty topic");
  if (!handler) throw InvalidArgument("gilmour: slot(): null handler");
  check_handler_options(options, "slot()");
  auto e = std::make_shared<detail::HandlerEntry>();
  e->kind = detail::HandlerKind::kSlot;
  e->topic = std::string(topic);
  e->channel = detail::slot_channel(topic);
  e->pattern = detail::has_wildcard(topic);
  e->group = std::move(options.group);
  e->timeout = options.timeout;
  e->ordered = options.ordered;
  e->slot = std::move(handler);
  return impl_->add_handler(std::move(e));
}

Subscription Gilmour::reply_to(std::string_view topic, ReplyHandler handler,
                               HandlerOptions options) {
  if (topic.empty()) throw InvalidArgument("gilmour: reply_to(): empty topic");
  if (detail::has_wildcard(topic)) {
    throw InvalidArgument("gilmour: reply_to(): reply topics may not contain '*': " +
                          std::string(topic));
  }
  if (!handler) throw InvalidArgument("gilmour: reply_to(): null handler");
  check_handler_options(options, "reply_to()");
  auto e = std::make_shared<detail::HandlerEntry>();
  e->kind = detail::HandlerKind::kReply;
  e->topic = std::string(topic);
  e->channel = detail::request_channel(topic);
  e->group = options.group.empty() ? std::string(detail::kDefaultGroup) : std::move(options.group);
  e->timeout = options.timeout;
  e->ordered = options.ordered;
  e->reply = std::move(handler);
  return impl_->add_handler(std::move(e));
}

void Gilmour::signal(std::string_view topic, nlohmann::json data, SignalOptions options) {
  impl_->signal(topic, std::move(data), nullptr, options);
}

void Gilmour::signal(std::string_view topic, nlohmann::json data, SignalCallback done,
                     SignalOptions options) {
  if (!done) throw InvalidArgument("gilmour: signal(): null callback");
  impl_->signal(topic, std::move(data), std::move(done), options);
}

void Gilmour::request(std::string_view topic, nlohmann::json data, ReplyCallback done,
                      RequestOptions options) {
  if (!done) throw InvalidArgument("gilmour: request(): null callback");
  impl_->request(topic, std::move(data), std::move(done), false, options);
}

std::future<Message> Gilmour::request(std::string_view topic, nlohmann::json data,
                                      RequestOptions options) {
  auto p = std::make_shared<std::promise<Message>>();
  auto f = p->get_future();
  impl_->request(
      topic, std::move(data), [p](Message m) { p->set_value(std::move(m)); }, true, options);
  return f;
}

Message Gilmour::request_sync(std::string_view topic, nlohmann::json data, RequestOptions options) {
  return impl_->request_sync(topic, std::move(data), options);
}

void Gilmour::report_error(ErrorRecord record) {
  if (impl_->running()) impl_->report_error(std::move(record));
}

std::future<std::vector<std::pair<std::string, std::string>>> Gilmour::known_hosts() {
  return impl_->on_backend<std::vector<std::pair<std::string, std::string>>>(
      "known_hosts()", {}, [](Backend& b, auto done) {
        b.hash_get_all(std::string(detail::kHealthHash),
                       [done](const Status&, std::vector<std::pair<std::string, std::string>> all) {
                         done(std::move(all));
                       });
      });
}

std::future<Status> Gilmour::forget_host(const std::string& ident) {
  return impl_->on_backend<Status>("forget_host()", Status::error("engine stopped"),
                                   [ident](Backend& b, auto done) {
                                     b.hash_delete(std::string(detail::kHealthHash), ident,
                                                   [done](const Status& st) { done(st); });
                                   });
}

std::future<std::int64_t> Gilmour::listener_count(std::string_view topic) {
  if (topic.empty()) throw InvalidArgument("gilmour: listener_count(): empty topic");
  return impl_->on_backend<std::int64_t>(
      "listener_count()", -1, [channel = detail::request_channel(topic)](Backend& b, auto done) {
        b.subscriber_count(channel,
                           [done](const Status& st, std::int64_t n) { done(st ? n : -1); });
      });
}

Stats Gilmour::stats() const { return impl_->stats(); }
const std::string& Gilmour::id() const noexcept { return impl_->id_; }
const std::string& Gilmour::health_ident() const noexcept { return impl_->ident_; }
void Gilmour::enable_health_check() { impl_->enable_health_check(); }
void Gilmour::set_error_policy(ErrorPolicy policy) { impl_->policy_.store(policy); }
ErrorPolicy Gilmour::error_policy() const noexcept { return impl_->policy_.load(); }
const std::shared_ptr<Backend>& Gilmour::backend() const noexcept { return impl_->backend_; }
const std::shared_ptr<spdlog::logger>& Gilmour::logger() const noexcept { return impl_->log_; }

}  // namespace gilmour
