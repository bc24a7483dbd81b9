// The public facade: Gilmour, Request, Subscription, option parsing.
#include <spdlog/spdlog.h>

#include <algorithm>

#include "codec.hpp"
#include "engine/engine_util.hpp"
#include "engine_impl.hpp"
#include "gilmour/error.hpp"
#include "topic.hpp"

namespace gilmour {

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

bool Subscription::drain(std::chrono::milliseconds timeout) {
  if (!entry_) return true;
  if (detail::tl_handler_entry == entry_.get()) {
    throw InvalidState("gilmour: Subscription::drain() called from its own handler");
  }
  // Unsubscribe as cancel() does, but keep the handle until nothing is left,
  // so that a drain that timed out can be called again.
  if (auto e = engine_.lock()) {
    e->remove_handler(entry_);
  } else {
    entry_->active.store(false);
  }
  if (!entry_->invocations.wait_zero(timeout)) return false;
  entry_.reset();
  engine_.reset();
  return true;
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
  detail::validate_topic(topic, "slot()", /*allow_wildcard=*/true);
  if (!handler) throw InvalidArgument("gilmour: slot(): null handler");
  check_handler_options(options, "slot()");
  auto e = std::make_shared<detail::HandlerEntry>();
  e->kind = detail::HandlerKind::kSlot;
  e->topic = std::string(topic);
  e->channel = detail::slot_channel(topic);
  e->pattern = detail::has_wildcard(topic);
  e->group = std::move(options.group);
  e->timeout = options.timeout;
  e->ordered = options.ordered || options.inline_delivery;
  e->inline_delivery = options.inline_delivery;
  e->max_pending = options.max_pending;
  e->max_pending_bytes = options.max_pending_bytes;
  e->slot = std::move(handler);
  return impl_->add_handler(std::move(e));
}

Subscription Gilmour::reply_to(std::string_view topic, ReplyHandler handler,
                               HandlerOptions options) {
  detail::validate_topic(topic, "reply_to()", /*allow_wildcard=*/false);
  if (!handler) throw InvalidArgument("gilmour: reply_to(): null handler");
  check_handler_options(options, "reply_to()");
  auto e = std::make_shared<detail::HandlerEntry>();
  e->kind = detail::HandlerKind::kReply;
  e->topic = std::string(topic);
  e->channel = detail::request_channel(topic);
  e->group = options.group.empty() ? std::string(detail::kDefaultGroup) : std::move(options.group);
  e->timeout = options.timeout;
  e->ordered = options.ordered || options.inline_delivery;
  e->inline_delivery = options.inline_delivery;
  e->max_pending = options.max_pending;
  e->max_pending_bytes = options.max_pending_bytes;
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

void Gilmour::request_with_callback(std::string_view topic, nlohmann::json data, ReplyCallback done,
                                    RequestOptions options) {
  if (!done) throw InvalidArgument("gilmour: request(): null callback");
  impl_->request(topic, std::move(data), std::move(done), options.inline_callback, options);
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
  return impl_->on_backend<Status>("forget_host()",
                                   Status::error(StatusCode::kClosing, "engine stopped"),
                                   [ident](Backend& b, auto done) {
                                     b.hash_delete(std::string(detail::kHealthHash), ident,
                                                   [done](const Status& st) { done(st); });
                                   });
}

std::future<std::int64_t> Gilmour::listener_count(std::string_view topic) {
  detail::validate_topic(topic, "listener_count()", /*allow_wildcard=*/true);
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
