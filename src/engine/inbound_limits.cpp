// Inbound bounds: each handler's queue limit (a request over it is answered
// 503 at once, a signal dropped, both counted), and stop()'s honest end for
// what is still queued (requests answered 503, slot invocations counted).
// Load-aware exclusion, which keeps a full handler from taking group locks
// first, lives in Engine::on_message (dispatch.cpp).
#include <spdlog/spdlog.h>

#include <algorithm>
#include <limits>

#include "codec.hpp"
#include "engine_impl.hpp"
#include "topic.hpp"

namespace gilmour::detail {

namespace {
std::int64_t as_limit(std::size_t v) {
  return static_cast<std::int64_t>(
      std::min<std::size_t>(v, static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max())));
}
}  // namespace

void Engine::bound_queue(HandlerEntry& e) const {
  e.pending.max_messages = as_limit(e.max_pending ? e.max_pending : opts_.max_pending);
  e.pending.max_bytes =
      as_limit(e.max_pending_bytes ? e.max_pending_bytes : opts_.max_pending_bytes);
}

void Engine::track(const std::shared_ptr<Invocation>& inv) {
  inv->handler->pending.add(inv->bytes);
  queued_.push_front(inv);
  inv->pos = queued_.begin();
  inv->tracked = true;
}

void Engine::untrack(Invocation& inv) {
  if (!inv.tracked) return;
  inv.tracked = false;
  queued_.erase(inv.pos);  // may release the last reference to `inv`: last
}

bool Engine::begin(Invocation& inv) noexcept {
  if (!inv.claim()) return false;
  inv.handler->pending.remove(inv.bytes);
  return true;
}

bool Engine::answer_unavailable(const std::shared_ptr<ReplyState>& st, std::string_view why) {
  if (st->done.exchange(true)) return false;
  auto channel = std::string(kResponsePrefix) + st->request->message->sender();
  auto payload = encode_envelope(nlohmann::json(why), code::kUnavailable, channel);
  // No error record: the handler did not fail, and an overload must not
  // double the traffic it causes.
  send_answer(st, channel, std::move(payload), std::nullopt);
  return true;
}

namespace {
std::string queue_text(const HandlerEntry& h) {
  return fmt::format("{} queued, {} bytes; limits {} / {} bytes",
                     h.pending.messages.load(std::memory_order_relaxed),
                     h.pending.bytes.load(std::memory_order_relaxed), h.pending.max_messages,
                     h.pending.max_bytes);
}
}  // namespace

void Engine::refuse_overloaded(const std::shared_ptr<ReplyState>& st, const std::string& channel) {
  counters_.slow_consumer_dropped.fetch_add(1, std::memory_order_relaxed);
  warn_rate_limited(last_overload_log_, overload_suppressed_,
                    fmt::format("gilmour: reply handler for {} is overloaded ({}): request on {} "
                                "answered 503",
                                st->handler->topic, queue_text(*st->handler), channel));
  answer_unavailable(st, "service overloaded: too many queued requests");
}

void Engine::drop_overloaded(const HandlerEntry& h, const std::string& channel) {
  counters_.slow_consumer_dropped.fetch_add(1, std::memory_order_relaxed);
  warn_rate_limited(
      last_overload_log_, overload_suppressed_,
      fmt::format("gilmour: slot for {} is a slow consumer ({}): signal on {} dropped", h.topic,
                  queue_text(h), channel));
}

void Engine::refuse_queued_at_stop() {
  std::uint64_t refused = 0;
  std::uint64_t dropped = 0;
  auto queued = std::move(queued_);
  queued_.clear();
  for (auto& inv : queued) {
    inv->tracked = false;
    if (!begin(*inv)) continue;  // started (or running): not ours to end
    if (inv->handler->kind == HandlerKind::kReply) {
      // A request whose server deadline passed was answered 499 already.
      auto st = std::static_pointer_cast<ReplyState>(inv);
      if (answer_unavailable(st, "service shutting down")) ++refused;
    } else {
      ++dropped;
    }
  }
  counters_.requests_refused_at_stop.fetch_add(refused, std::memory_order_relaxed);
  counters_.inbound_dropped_at_stop.fetch_add(dropped, std::memory_order_relaxed);
  if (refused + dropped > 0) {
    log_->warn(
        "gilmour: stop(): {} queued requests answered 503 \"service shutting down\", {} queued "
        "slot invocations dropped",
        refused, dropped);
  }
}

}  // namespace gilmour::detail
