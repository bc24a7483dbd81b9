// Deadlines that travel (docs/reliability.md, "Deadlines"): what an inbound
// request's envelope says about its requester's deadline and trace, the
// deadline a handler sees, and dropping replies whose requester gave up.
#include "engine_impl.hpp"

namespace gilmour::detail {

CallContext Engine::sender_context(const EnvelopeExtras& extras) {
  CallContext sent;
  // The budget counts from arrival on our own steady clock: no wall clocks
  // are compared, so clock skew between hosts cannot expire anything.
  if (extras.budget_ms >= 0) {
    sent.deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(extras.budget_ms);
  }
  sent.trace_id = extras.trace_id;
  return sent;
}

bool Engine::bound_by_sender(Request::Impl& req, const CallContext& sent,
                             std::chrono::milliseconds& timeout) {
  timeout = std::min(timeout, std::chrono::milliseconds(kMaxBudgetMs));
  auto own = std::chrono::steady_clock::now() + timeout;
  bool bound = sent.deadline && *sent.deadline < own;
  req.ctx.deadline = bound ? *sent.deadline : own;
  if (bound) timeout = req.ctx.remaining_or(timeout);
  req.trace_on_wire = !sent.trace_id.empty();
  req.ctx.trace_id = req.trace_on_wire ? sent.trace_id : req.message->sender();
  return bound;
}

void Engine::expire_reply(const std::shared_ptr<ReplyState>& st) {
  int queued = ReplyState::kQueued;
  bool never_ran = st->phase.compare_exchange_strong(queued, ReplyState::kExpired);
  if (never_ran && st->budget_bound) {
    // The requester has completed with its own 499 already: answering would
    // only publish a stray response and an error record per dropped request.
    if (st->done.exchange(true)) return;
    counters_.expired_dropped.fetch_add(1, std::memory_order_relaxed);
    st->token.reset();  // only the winner of `done` touches it
    // Never answered, so send_answer() will not forget it: do it here.
    if (io_.on_io_thread()) {
      untrack(*st);
    } else {
      io_.post([self = shared_from_this(), st] { self->untrack(*st); });
    }
    return;
  }
  auto m = timeout_message();
  if (finish_reply(st, m.data(), m.code())) {
    counters_.server_timeouts.fetch_add(1, std::memory_order_relaxed);
  }
}

bool Engine::begin_reply(const std::shared_ptr<ReplyState>& st) {
  if (*st->request->ctx.deadline <= std::chrono::steady_clock::now()) expire_reply(st);
  int queued = ReplyState::kQueued;
  return st->phase.compare_exchange_strong(queued, ReplyState::kRunning);
}

bool Engine::schedule_at(IoLoop::Clock::time_point when, std::function<void()> fn,
                         const SharedTimer& slot) {
  if (state_.load() != kRunning) return false;
  return io_.try_post([self = shared_from_this(), when, fn = std::move(fn), slot]() mutable {
    auto delay = std::chrono::ceil<std::chrono::milliseconds>(when - IoLoop::Clock::now());
    *slot = self->io_.schedule(std::max(delay, std::chrono::milliseconds(0)),
                               [self, fn = std::move(fn)] { self->executor_->submit(fn); });
  });
}

void Engine::cancel_timer(const SharedTimer& slot) {
  // After the post of schedule_at() (one queue, in order), or on the loop.
  auto cancel = [self = shared_from_this(), slot] {
    self->io_.cancel(*slot);
    *slot = {};
  };
  if (io_.on_io_thread()) {
    cancel();
  } else {
    io_.try_post(cancel);
  }
}

}  // namespace gilmour::detail
