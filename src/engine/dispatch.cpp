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
  // No copy: nothing below changes subs_ synchronously (dispatch submits to
  // the executor; the lock callback runs later, on a later loop turn).
  for (auto& h : it->second.handlers) {
    if (!h->active.load()) continue;
    if (h->group.empty()) {
      dispatch(h, msg, ch, sent);
      continue;
    }
    backend_->acquire_lock(
        msg->sender() + h->group, opts_.lock_ttl,
        [self = shared_from_this(), h, msg, ch, sent](const Status& st, bool won) {
          if (!st) {
            self->log_->warn("gilmour: exclusion lock for {} failed: {}", ch, st.message());
            return;
          }
          if (!won) {
            self->counters_.lock_lost.fetch_add(1, std::memory_order_relaxed);
            return;
          }
          self->dispatch(h, msg, ch, sent);
        });
  }
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

void Engine::dispatch(const std::shared_ptr<HandlerEntry>& h,
                      const std::shared_ptr<const Message>& msg, const std::string& channel,
                      const CallContext& sent) {
  auto req = std::make_shared<Request::Impl>();
  req->topic = h->topic;
  req->channel = channel;
  req->message = msg;
  auto timeout = h->timeout.count() > 0 ? h->timeout : opts_.handler_timeout;
  bool budget_bound = bound_by_sender(*req, sent, timeout);
  auto self = shared_from_this();
  if (h->kind == HandlerKind::kReply) {
    counters_.requests_handled.fetch_add(1, std::memory_order_relaxed);
    auto st = std::make_shared<ReplyState>();
    st->engine = self;
    st->handler = h;
    st->request = std::move(req);
    st->budget_bound = budget_bound;
    st->token = std::make_unique<InflightToken>(self);
    if (h->inline_delivery) {
      // Runs to its end here; only a deferred answer needs the deadline.
      run_inline(*h, [&] { run_reply(st); });
      if (!st->done.load()) arm_reply_deadline(st, timeout);
      return;
    }
    arm_reply_deadline(st, timeout);
    h->invocations.add();
    submit_for(h, [self, st] {
      InvocationDone done{*st->handler};
      self->run_reply(st);
    });
  } else {
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
    h->invocations.add();
    submit_for(h, [self, h, req, st, token] {
      InvocationDone done{*h};
      self->run_slot(h, req, st);
    });
  }
}

void Engine::submit_for(const std::shared_ptr<HandlerEntry>& h, std::function<void()> task) {
  try {
    if (h->serial) {
      h->serial->submit(std::move(task));
    } else {
      executor_->submit(std::move(task));
    }
  } catch (...) {
    h->invocations.done();
    throw;
  }
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
  if (!st->done.exchange(true)) {
    io_.post([self = shared_from_this(), st] { self->io_.cancel(st->timer); });
  }
}

}  // namespace gilmour::detail
