// Replies: running a reply handler, sending its answer exactly once, and
// the Response / Deferred handles.
#include <spdlog/spdlog.h>

#include <algorithm>

#include "codec.hpp"
#include "engine/engine_util.hpp"
#include "engine_impl.hpp"
#include "gilmour/error.hpp"
#include "topic.hpp"

namespace gilmour::detail {

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
    HandlerScope scope(this, h.get());
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

void Engine::arm_reply_deadline(const std::shared_ptr<ReplyState>& st,
                                std::chrono::milliseconds timeout) {
  st->timer = io_.schedule(timeout, [self = shared_from_this(), st] {
    if (st->done.exchange(true)) return;
    self->counters_.server_timeouts.fetch_add(1, std::memory_order_relaxed);
    auto m = timeout_message();
    auto channel = std::string(kResponsePrefix) + st->request->message->sender();
    auto payload = encode_envelope(m.data(), m.code(), channel);
    auto record = self->make_record(*st->request, m.code(), m.data());
    self->send_answer(st, channel, std::move(payload), std::move(record));
  });
}

bool Engine::finish_reply(const std::shared_ptr<ReplyState>& st, nlohmann::json data, int code) {
  if (st->done.exchange(true)) return false;
  const std::string& sender = st->request->message->sender();
  std::string channel = std::string(kResponsePrefix) + sender;
  std::string payload = encode_envelope(data, code, channel);
  std::optional<ErrorRecord> record;
  if (code >= 300) record = make_record(*st->request, code, std::move(data));
  if (io_.on_io_thread()) {  // an inline handler: publish in this loop turn
    send_answer(st, channel, std::move(payload), std::move(record));
    return true;
  }
  return io_.try_post([self = shared_from_this(), st, channel = std::move(channel),
                       payload = std::move(payload), record = std::move(record)]() mutable {
    self->send_answer(st, channel, std::move(payload), std::move(record));
  });
}

void Engine::send_answer(const std::shared_ptr<ReplyState>& st, const std::string& channel,
                         std::string payload, std::optional<ErrorRecord> record) {
  io_.cancel(st->timer);
  st->timer = {};
  backend_->publish(channel, std::move(payload),
                    [self = shared_from_this()](const Status& s, std::int64_t) {
                      if (!s) {
                        self->counters_.publish_failures.fetch_add(1, std::memory_order_relaxed);
                        self->log_->warn("gilmour: response not published: {}", s.message());
                      }
                    });
  counters_.responses_sent.fetch_add(1, std::memory_order_relaxed);
  if (record) report_error(std::move(*record));
  st->token.reset();
  untrack(*st);
}

}  // namespace gilmour::detail

namespace gilmour {

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

}  // namespace gilmour
