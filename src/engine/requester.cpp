// Outbound: signals and requests, the pending map, responses.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <future>

#include "codec.hpp"
#include "engine/engine_util.hpp"
#include "engine_impl.hpp"
#include "gilmour/error.hpp"
#include "topic.hpp"

namespace gilmour::detail {

namespace {

constexpr const char* kShuttingDown = "shutting down";

}  // namespace

Status Engine::admit_outbound(std::size_t bytes, const char* what) {
  if (budget_.try_acquire(bytes)) return Status();
  // kBlock never waits on the I/O thread: only it makes room.
  if (opts_.overflow_policy == OverflowPolicy::kBlock && !io_.on_io_thread() &&
      opts_.overflow_block_timeout.count() > 0 && !budget_.closed()) {
    ThreadPool::BlockingScope blocking;
    if (budget_.acquire_until(bytes,
                              std::chrono::steady_clock::now() + opts_.overflow_block_timeout)) {
      return Status();
    }
    if (budget_.closed()) return Status::error(StatusCode::kClosing, kShuttingDown);
  }
  counters_.overloaded.fetch_add(1, std::memory_order_relaxed);
  auto text = fmt::format(
      "overloaded: {} refused, the engine holds {} messages / {} bytes of outbound work "
      "(max_outstanding {}, max_outstanding_bytes {})",
      what, budget_.count(), budget_.bytes(), opts_.max_outstanding, opts_.max_outstanding_bytes);
  warn_rate_limited(last_outbound_log_, outbound_suppressed_, "gilmour: " + text);
  return Status::error(StatusCode::kOverloaded, std::move(text));
}

void Engine::signal(std::string_view topic, nlohmann::json data, SignalCallback done,
                    SignalOptions options) {
  validate_topic(topic, "signal()", /*allow_wildcard=*/false);
  require_running("signal()");
  auto seq = seq_.fetch_add(1) + 1;
  std::string sender = id_ + "." + std::to_string(seq);
  std::string payload = encode_envelope(data, code::kOk, sender, -1, trace_for(sender, nullptr));
  check_outgoing(payload, "signal()");
  auto refuse = [&done](Status st) {
    if (!done) return;
    SignalResult r;
    r.status = std::move(st);
    done(r);
  };
  const std::size_t bytes = payload.size();
  if (Status admitted = admit_outbound(bytes, "signal"); !admitted) {
    if (admitted.code() == StatusCode::kClosing && !done) {
      counters_.signals_dropped_at_stop.fetch_add(1, std::memory_order_relaxed);
    }
    refuse(std::move(admitted));
    return;
  }
  counters_.signals_sent.fetch_add(1, std::memory_order_relaxed);
  signals_inflight_.add();
  // Returns the signal's room and ends its count for stop(), once.
  auto settle = [this, bytes] {
    budget_.release(bytes);
    signals_inflight_.done();
  };
  bool posted =
      io_.try_post([self = shared_from_this(), payload = std::move(payload), done, settle,
                    confirm = options.confirm_subscribers, t = std::string(topic)]() mutable {
        if (self->outbound_closed()) {
          self->counters_.signals_dropped_at_stop.fetch_add(1, std::memory_order_relaxed);
          settle();
          if (done) {
            SignalResult r;
            r.status = Status::error(StatusCode::kClosing, kShuttingDown);
            self->hand_off([done, r, log = self->log_] {
              call_logged(log, "signal callback", [&] { done(r); });
            });
          }
          return;
        }
        // Built here, not by the caller: what the caller allocates, this
        // thread frees, and each such pair contends for the caller's malloc arena.
        self->backend_->publish(
            slot_channel(t), std::move(payload),
            [self, done, confirm, t, settle](const Status& st, std::int64_t n) {
              settle();
              SignalResult r;
              r.status = st;
              r.receivers = st ? n : 0;
              if (!st && self->outbound_closed()) {
                // The backend closed under it at stop(): counted there, logged once.
                self->counters_.signals_dropped_at_stop.fetch_add(1, std::memory_order_relaxed);
              } else if (!st) {
                self->counters_.publish_failures.fetch_add(1);
                self->log_->warn("gilmour: signal on {} not published: {}", t, st.message());
              } else if (confirm && n == 0) {
                self->counters_.no_listeners.fetch_add(1);
                r.status = Status::error(StatusCode::kNoListeners, "No active listeners for: " + t);
              }
              if (done) {
                self->hand_off([done, r, log = self->log_] {
                  call_logged(log, "signal callback", [&] { done(r); });
                });
              }
            });
      });
  if (!posted) {
    settle();
    if (!done) counters_.signals_dropped_at_stop.fetch_add(1, std::memory_order_relaxed);
    refuse(Status::error(StatusCode::kClosing, "engine stopped"));
  }
}

std::string_view Engine::trace_for(std::string_view sender, const CallContext* ctx) {
  if (!ctx) ctx = tl_call_context;
  return ctx && !ctx->trace_id.empty() ? std::string_view(ctx->trace_id) : sender;
}

void Engine::request(std::string_view topic, nlohmann::json data,
                     std::function<void(Message)> complete, bool complete_on_io,
                     RequestOptions options, const CallContext* ctx) {
  validate_topic(topic, "request()", /*allow_wildcard=*/false);
  if (options.timeout.count() < 0) throw InvalidArgument("gilmour: request(): negative timeout");
  require_running("request()");
  auto timeout = options.timeout.count() > 0 ? options.timeout : opts_.request_timeout;
  // Inside a handler or a composition: bounded by what is left of its deadline.
  if (const CallContext* c = ctx ? ctx : tl_call_context) timeout = c->remaining_or(timeout);
  auto seq = seq_.fetch_add(1) + 1;
  std::string sender = id_ + "." + std::to_string(seq);
  std::string payload =
      encode_envelope(data, code::kOk, sender, timeout.count(), trace_for(sender, ctx));
  check_outgoing(payload, "request()");
  // The callback form completes on the executor; if the request is refused
  // (overloaded) or cannot even reach the I/O thread (the engine is
  // stopping), it completes here, inline.
  auto user = std::make_shared<std::function<void(Message)>>(std::move(complete));
  auto log = log_;
  auto call_user = [user, log](Message m) {
    call_logged(log, "request callback", [&] { (*user)(std::move(m)); });
  };
  const std::size_t bytes = payload.size();
  if (Status admitted = admit_outbound(bytes, "request"); !admitted) {
    call_user(Message(admitted.message(), code::kUnavailable));
    return;
  }
  // Completion returns the request's room first (on the I/O thread, or here
  // when the post fails), then hands the answer on.
  std::function<void(Message)> on_io;
  if (complete_on_io) {
    on_io = [this, bytes, call_user](Message m) {
      budget_.release(bytes);
      call_user(std::move(m));
    };
  } else {
    on_io = [this, bytes, call_user](Message m) {
      budget_.release(bytes);
      hand_off([call_user, m = std::move(m)]() mutable { call_user(std::move(m)); });
    };
  }
  counters_.requests_sent.fetch_add(1, std::memory_order_relaxed);
  bool posted = io_.try_post([self = shared_from_this(), seq, payload = std::move(payload),
                              t = std::string(topic), timeout,
                              confirm = options.confirm_subscribers,
                              on_io = std::move(on_io)]() mutable {
    self->start_request(seq, std::move(payload), std::move(t), timeout, confirm, std::move(on_io));
  });
  if (!posted) {
    budget_.release(bytes);
    call_user(Message("engine stopped", code::kUnavailable));
  }
}

void Engine::start_request(std::uint64_t seq, std::string payload, std::string topic,
                           std::chrono::milliseconds timeout, bool confirm,
                           std::function<void(Message)> complete) {
  if (outbound_closed()) {
    counters_.requests_failed_at_stop.fetch_add(1, std::memory_order_relaxed);
    complete(Message(kShuttingDown, code::kUnavailable));
    return;
  }
  if (state_.load() == kStopped || !connected_) {
    complete(Message("engine stopped", code::kUnavailable));
    return;
  }
  if (backend_down_.load()) {
    // Fails fast, as a publish would: the backend holds subscribe() calls
    // (the per-request scheme's) until it is back.
    counters_.publish_failures.fetch_add(1, std::memory_order_relaxed);
    complete(
        Message("request not sent: not connected to " + backend_->describe() + " (reconnecting)",
                code::kUnavailable));
    return;
  }
  if (timeout.count() <= 0) {  // an inherited deadline already passed: not sent
    counters_.client_timeouts.fetch_add(1, std::memory_order_relaxed);
    complete(timeout_message());
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
  pending_.emplace(seq, std::move(p));
  std::string channel = request_channel(topic);
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
  route_->prepare(*backend_, seq,
                  [self, seq, publish = std::move(publish)](const Status& st) mutable {
                    if (!st) {
                      self->finish_request(
                          seq, Message("request not sent: " + st.message(), code::kUnavailable));
                      return;
                    }
                    publish();
                  });
}

void Engine::finish_request(std::uint64_t seq, Message m) {
  auto it = pending_.find(seq);
  if (it == pending_.end()) return;
  auto p = std::move(it->second);
  pending_.erase(it);
  io_.cancel(p.timer);
  route_->release(*backend_, seq);
  m.set_sender(id_ + "." + std::to_string(seq));
  p.complete(std::move(m));
}

void Engine::fail_pending_at_stop() {
  auto pending = std::move(pending_);
  pending_.clear();
  counters_.requests_failed_at_stop.fetch_add(pending.size(), std::memory_order_relaxed);
  for (auto& [seq, p] : pending) {
    io_.cancel(p.timer);
    p.complete(Message(kShuttingDown, code::kUnavailable));
  }
}

void Engine::on_response(std::string_view channel, std::string_view payload) {
  auto digits = channel.substr(route_->prefix().size());
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

}  // namespace gilmour::detail
