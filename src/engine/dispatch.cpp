// Inbound: decode, exclusion lock, hand-off to the executor (or the
// handler's serial queue), and slot invocations.
#include <spdlog/spdlog.h>

#include <algorithm>

#include "codec.hpp"
#include "engine/engine_util.hpp"
#include "engine_impl.hpp"
#include "gilmour/error.hpp"
#include "topic.hpp"

namespace gilmour::detail {

void Engine::on_message(std::string_view channel, std::string_view pattern,
                        std::string_view payload) {
  // First, before anything looks at or copies the payload.
  if (drop_oversized(channel, payload.size())) return;
  const auto& responses = route_->prefix();
  if (channel.size() > responses.size() && channel.compare(0, responses.size(), responses) == 0) {
    on_response(channel, payload);
    return;
  }
  lookup_key_.assign(pattern.empty() ? channel : pattern);  // reused: no allocation per message
  auto it = subs_.find(lookup_key_);
  if (it == subs_.end() || it->second.handlers.empty()) return;
  DecodeError why;
  EnvelopeExtras extras;
  auto decoded = decode_envelope(payload, &why, &extras);
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
  CallContext sent = sender_context(extras);
  std::string ch(channel);
  const auto bytes = static_cast<std::int64_t>(payload.size());
  // No copy: nothing below changes subs_ synchronously (dispatch submits to
  // the executor; lock callbacks and delayed attempts run on later loop turns).
  for (auto& h : it->second.handlers) {
    if (!h->active.load()) continue;
    if (h->group.empty()) {
      dispatch(h, msg, ch, bytes, sent);
      continue;
    }
    // Load-aware exclusion: a handler whose queue is full lets a group member
    // with room take the lock first, and tries once itself after a delay
    // (docs/reliability.md). The delayed attempts are bounded by the engine's
    // default queue bounds (a handler's own may be far smaller: they are only
    // held for the delay).
    if (h->pending.full() && opts_.saturated_lock_delay.count() > 0 &&
        static_cast<std::size_t>(h->deferred_locks) < opts_.max_pending &&
        static_cast<std::size_t>(h->deferred_bytes) < opts_.max_pending_bytes) {
      ++h->deferred_locks;
      h->deferred_bytes += bytes;
      counters_.lock_deferred.fetch_add(1, std::memory_order_relaxed);
      io_.schedule(opts_.saturated_lock_delay,
                   [self = shared_from_this(), h, msg, ch, bytes, sent] {
                     --h->deferred_locks;
                     h->deferred_bytes -= bytes;
                     if (h->active.load()) self->lock_then_dispatch(h, msg, ch, bytes, sent);
                   });
      continue;
    }
    lock_then_dispatch(h, msg, ch, bytes, sent);
  }
}

void Engine::lock_then_dispatch(const std::shared_ptr<HandlerEntry>& h,
                                const std::shared_ptr<const Message>& msg,
                                const std::string& channel, std::int64_t bytes,
                                const CallContext& sent) {
  backend_->acquire_lock(
      msg->sender() + h->group, opts_.lock_ttl,
      [self = shared_from_this(), h, msg, channel, bytes, sent](const Status& st, bool won) {
        if (!st) {
          self->log_->warn("gilmour: exclusion lock for {} failed: {}", channel, st.message());
          return;
        }
        if (!won) {
          self->counters_.lock_lost.fetch_add(1, std::memory_order_relaxed);
          return;
        }
        self->dispatch(h, msg, channel, bytes, sent);
      });
}

void Engine::warn_rate_limited(std::atomic<std::int64_t>& last,
                               std::atomic<std::uint64_t>& suppressed, const std::string& text) {
  auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::steady_clock::now().time_since_epoch())
                 .count();
  auto prev = last.load();
  if (now - prev < 1000 || !last.compare_exchange_strong(prev, now)) {
    suppressed.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  log_->warn("{} ({} more suppressed)", text, suppressed.exchange(0));
}

void Engine::warn_malformed(std::string_view channel, std::string_view reason) {
  counters_.malformed_dropped.fetch_add(1, std::memory_order_relaxed);
  warn_rate_limited(last_malformed_log_, malformed_suppressed_,
                    fmt::format("gilmour: dropped a malformed message on {}: {}", channel, reason));
}

bool Engine::drop_oversized(std::string_view channel, std::size_t size) {
  if (size <= opts_.max_payload) return false;
  counters_.oversized_dropped.fetch_add(1, std::memory_order_relaxed);
  warn_rate_limited(last_oversized_log_, oversized_suppressed_,
                    fmt::format("gilmour: dropped a message of {} bytes on {}: over max_payload "
                                "({} bytes)",
                                size, channel, opts_.max_payload));
  return true;
}

void Engine::check_outgoing(const std::string& payload, const char* what) const {
  if (payload.size() <= opts_.max_payload) return;
  throw InvalidArgument(
      fmt::format("gilmour: {}: the message is {} bytes, over "
                  "EngineOptions::max_payload ({} bytes)",
                  what, payload.size(), opts_.max_payload));
}

void Engine::dispatch(const std::shared_ptr<HandlerEntry>& h,
                      const std::shared_ptr<const Message>& msg, const std::string& channel,
                      std::int64_t bytes, const CallContext& sent) {
  auto req = std::make_shared<Request::Impl>();
  req->topic = h->topic;
  req->channel = channel;
  req->message = msg;
  auto timeout = h->timeout.count() > 0 ? h->timeout : opts_.handler_timeout;
  bool budget_bound = bound_by_sender(*req, sent, timeout);
  auto self = shared_from_this();
  // Inline handlers run here and now: nothing queues, so no bound applies.
  const bool refuse = !h->inline_delivery && h->pending.full();
  if (h->kind == HandlerKind::kReply) {
    auto st = std::make_shared<ReplyState>();
    st->engine = self;
    st->handler = h;
    st->request = std::move(req);
    if (refuse) {
      refuse_overloaded(st, channel);
      return;
    }
    counters_.requests_handled.fetch_add(1, std::memory_order_relaxed);
    st->budget_bound = budget_bound;
    st->token = std::make_unique<InflightToken>(self);
    if (h->inline_delivery) {
      // Runs to its end here; only a deferred answer needs the deadline.
      run_inline(*h, [&] { run_reply(st); });
      if (!st->done.load()) arm_reply_deadline(st, timeout);
      return;
    }
    arm_reply_deadline(st, timeout);
    st->bytes = bytes;
    h->invocations.add();
    submit_for(h, [self, st] {
      InvocationDone done{*st->handler};
      if (begin(*st)) self->run_reply(st);
    });
    track(st);
  } else {
    if (refuse) {
      drop_overloaded(*h, channel);
      return;
    }
    counters_.signals_received.fetch_add(1, std::memory_order_relaxed);
    auto st = std::make_shared<SlotState>();
    if (h->inline_delivery) {
      st->done = true;  // no deadline: it runs to its end here
      run_inline(*h, [&] { run_slot(h, req, st); });
      return;
    }
    auto token = std::make_shared<InflightToken>(self);
    st->timer = io_.schedule(timeout, [self, st, req] {
      if (st->done.exchange(true)) return;
      self->counters_.server_timeouts.fetch_add(1, std::memory_order_relaxed);
      auto m = timeout_message();
      self->report_error(self->make_record(*req, m.code(), m.data()));
    });
    st->handler = h;
    st->bytes = bytes;
    h->invocations.add();
    submit_for(h, [self, req, st, token] {
      InvocationDone done{*st->handler};
      if (begin(*st)) self->run_slot(st->handler, req, st);
    });
    track(st);
  }
}

void Engine::submit_for(const std::shared_ptr<HandlerEntry>& h, std::function<void()> task) {
  try {
    if (h->serial) {
      h->serial->submit(std::move(task));
    } else {
      hand_off(std::move(task));
    }
  } catch (...) {
    h->invocations.done();
    throw;
  }
}

void Engine::hand_off(std::function<void()> task) {
  if (own_pool_ && io_.on_io_thread()) {
    handoff_.push_back(std::move(task));
  } else {
    executor_->submit(std::move(task));
  }
}

void Engine::flush_handoff() {
  if (!handoff_.empty()) own_pool_->submit_bulk(handoff_);
}

template <typename F>
void Engine::run_inline(const HandlerEntry& h, F&& f) {
  auto started = std::chrono::steady_clock::now();
  h.invocations.add();
  {
    InvocationDone done{h};
    f();
  }
  auto took = std::chrono::steady_clock::now() - started;
  if (took <= opts_.inline_warn_threshold) return;
  counters_.slow_inline.fetch_add(1, std::memory_order_relaxed);
  warn_rate_limited(
      last_slow_log_, slow_suppressed_,
      fmt::format("gilmour: inline handler for {} ran {} ms, holding up the engine's I/O", h.topic,
                  std::chrono::duration_cast<std::chrono::milliseconds>(took).count()));
}

void Engine::run_slot(const std::shared_ptr<HandlerEntry>& h,
                      const std::shared_ptr<const Request::Impl>& req,
                      const std::shared_ptr<SlotState>& st) {
  if (h->active.load()) {
    Request r;
    r.impl_ = req;
    auto err = run_user([&] {
      HandlerScope scope(this, h.get(), &req->ctx);
      h->slot(r);
    });
    if (err) {
      counters_.handler_errors.fetch_add(1, std::memory_order_relaxed);
      report_error(make_record(*req, code::kHandlerError, std::move(*err)));
    }
  }
  // No hop back to the I/O thread: `done` makes the deadline timer a no-op
  // if it fires first; the loop cancels it and forgets the invocation at
  // its next iteration, without being woken for it. An inline run has
  // neither.
  bool cancel = !st->done.exchange(true);
  if (!h->inline_delivery) {
    io_.post_lazy([self = shared_from_this(), st, cancel] {
      if (cancel) self->io_.cancel(st->timer);
      self->untrack(*st);
    });
  }
}

}  // namespace gilmour::detail
