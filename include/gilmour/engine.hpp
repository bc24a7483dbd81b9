/// @file gilmour/engine.hpp
/// gilmour::Gilmour, the engine: signal/slot, request/reply, exclusion groups,
/// error policies and health, over any Backend.
///
/// @code
///   auto g = gilmour::Gilmour(gilmour::inproc::make_backend());
///   auto sub = g.reply_to("echo", [](const gilmour::Request& req, gilmour::Response& res) {
///     res.set_data("Pong " + req.data<std::string>());
///   });
///   g.start();
///   gilmour::Message m = g.request_sync("echo", "hello");   // m.data() == "Pong hello"
///   g.stop();
/// @endcode
///
/// Threading model:
/// - Each engine owns one I/O thread running a libuv loop; it alone touches
///   the backend's connections. Public calls from other threads reach it
///   through a locked queue and a uv_async wake-up.
/// - Handlers and request callbacks run on the engine's Executor (a worker
///   pool by default), never on the I/O thread, so a slow handler stalls
///   neither I/O nor other handlers. Each message is its own task: one
///   handler may run concurrently for several messages.
/// - Opt-in: HandlerOptions::inline_delivery runs a handler on the I/O
///   thread (no hand-off; its answer leaves in the same loop turn), and
///   RequestOptions::inline_callback does the same for a request callback.
///   Only for short code that never blocks.
/// - A handler may make requests, including request_sync (the pool grows
///   while a worker blocks, see ThreadPool). Blocking on a future inside a
///   handler (`request(...).get()`, `Composition::execute(...).get()`) is
///   not compensated: wrap it in a ThreadPool::BlockingScope, or use
///   request_sync or the callback forms.
///
/// Thread safety: every member function of Gilmour is thread-safe, except
/// that the object must not be destroyed while other threads use it.
/// Handlers and callbacks must not throw out of the engine's control: a
/// throwing reply handler answers 500, a throwing slot handler is reported,
/// a throwing request callback is logged and swallowed.
///
/// Errors: misuse throws (see error.hpp) before anything is sent; remote
/// outcomes are Message codes, and a request always completes exactly once.
///
/// Topics: a topic is a non-empty string without whitespace (space, tab,
/// newline...), control characters (below 0x20, and 0x7f) or NUL; any other
/// byte, UTF-8 included, is allowed. `*` is a Redis glob wildcard, allowed
/// in slot topics only (listener_count() takes it literally). A topic that
/// starts with `gilmour.` is used as the channel itself. Every call taking a
/// topic throws InvalidArgument for one that breaks these rules, before
/// anything is sent.
#pragma once

#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "gilmour/backend.hpp"
#include "gilmour/error_record.hpp"
#include "gilmour/export.hpp"
#include "gilmour/message.hpp"
#include "gilmour/options.hpp"
#include "gilmour/stats.hpp"

namespace gilmour {

namespace detail {
class Engine;
struct ReplyState;
struct HandlerEntry;
struct EngineAccess;
}  // namespace detail

/// What a handler receives: the topic, sender and message of one request or
/// signal. Thread safety: immutable; cheap to copy (shares the message).
class GILMOUR_API Request {
 public:
  /// The topic as the handler registered it (`item.buy.*` for a wildcard slot).
  const std::string& topic() const noexcept;
  /// The channel the message arrived on (`gilmour.slot.item.buy.42`).
  const std::string& channel() const noexcept;
  /// The sender id of the request or signal (see Message::sender()).
  const std::string& sender() const noexcept { return message().sender(); }
  /// The whole message: data, code and sender.
  const Message& message() const noexcept;
  /// The payload as JSON.
  const nlohmann::json& data() const noexcept { return message().data(); }
  /// The payload converted with nlohmann's from_json.
  /// @throws nlohmann::json::exception when it does not convert (a reply handler
  ///         that lets it escape answers 500 with the error text).
  template <typename T>
  T data() const {
    return message().data<T>();
  }
  /// When this invocation's time is up, on the steady clock: the earlier of
  /// the handler's own timeout (HandlerOptions::timeout, counted from the
  /// message's arrival) and, for a request from gilmour-cpp, the requester's
  /// remaining budget (the envelope's `budget_ms`, counted from arrival; see
  /// docs/protocol.md). A reply handler still running then is answered 499.
  std::chrono::steady_clock::time_point deadline() const noexcept;
  /// Time left until deadline(), rounded up to the millisecond; zero once it
  /// has passed. Requests made by the handler on this thread are bounded by
  /// it (see RequestOptions::timeout).
  std::chrono::milliseconds remaining() const;
  /// The trace id: the envelope's `trace_id` when the sender set one (every
  /// gilmour-cpp request and signal does), else the sender id (Go and Ruby
  /// peers). Requests and signals the handler makes on this thread carry it.
  const std::string& trace_id() const noexcept;

  struct Impl;  ///< implementation detail

 private:
  friend class detail::Engine;
  std::shared_ptr<const Impl> impl_;
};

/// A reply handler's answer. Set data and code; the engine publishes it when
/// the handler returns, unless the handler called defer().
///
/// Thread safety: a Response is used by its handler only; the handle returned
/// by defer() may be completed from any thread.
class GILMOUR_API Response {
 public:
  /// A handle to answer later, from any thread, once. Copyable; every copy
  /// refers to the same answer. The server-side timeout still applies: if it
  /// passes first, 499 is sent and respond() returns false. If every copy is
  /// destroyed without an answer, 500 "response abandoned" is sent.
  class GILMOUR_API Deferred {
   public:
    Deferred() = default;
    /// Sends the answer; true when this call sent it (false: already answered
    /// or timed out).
    bool respond(nlohmann::json data, int code = code::kOk);
    /// Sends `m`'s data and code, as respond(m.data(), m.code()).
    bool respond(const Message& m) { return respond(m.data(), m.code()); }
    /// False for a default-constructed handle (not obtained from defer()).
    bool valid() const noexcept { return static_cast<bool>(guard_); }

   private:
    friend class Response;
    std::shared_ptr<void> guard_;  // keeps the answer alive; answers 500 when the last copy goes
    std::shared_ptr<detail::ReplyState> state_;
  };

  /// Sets the answer's data (null unless set).
  Response& set_data(nlohmann::json data);
  /// Sets the answer's code (200 unless set; >= 300 is reported as an error).
  Response& set_code(int code) noexcept;
  /// The answer's data so far.
  const nlohmann::json& data() const noexcept { return message_.data(); }
  /// The answer's code so far.
  int code() const noexcept { return message_.code(); }
  /// Takes over the answer: the engine will not send when the handler returns.
  /// Data and code set before are discarded; answer through the handle.
  Deferred defer();

 private:
  friend class detail::Engine;
  explicit Response(std::shared_ptr<detail::ReplyState> state);
  std::shared_ptr<detail::ReplyState> state_;
  Message message_;
  bool deferred_ = false;
};

/// A registered handler. Move-only; unsubscribes on destruction or cancel().
///
/// After cancel() returns the handler receives no new message; an invocation
/// already running, or already handed to a worker, may still run to its end
/// (a reply handler cancelled before its queued invocation starts answers
/// 503 instead). cancel() does not wait for running invocations, and neither
/// does the destructor: when the handler captures locals by reference, call
/// drain() before they go. cancel() is idempotent and noexcept, and any
/// thread may call it, including the handler itself.
class [[nodiscard]] GILMOUR_API Subscription {
 public:
  Subscription() = default;
  ~Subscription();
  /// Takes over `other`'s handler; `other` becomes empty.
  Subscription(Subscription&& other) noexcept;
  /// Cancels this handler (as cancel()), then takes over `other`'s.
  Subscription& operator=(Subscription&& other) noexcept;
  Subscription(const Subscription&) = delete;
  Subscription& operator=(const Subscription&) = delete;

  /// Unsubscribes the handler (see the class comment). Idempotent.
  void cancel() noexcept;
  /// Cancels, then waits up to `timeout` for the handler's invocations that
  /// were already handed off (queued or running) to end. True when none is
  /// left (also when there was nothing to wait for).
  /// @throws InvalidState when called from this handler's own invocation
  ///         (it would wait for itself).
  bool drain(std::chrono::milliseconds timeout);
  /// Gives up the handle: the handler stays until the engine stops.
  void detach() noexcept;
  /// True until cancel() (or the engine's stop()).
  bool active() const noexcept;
  /// The topic the handler was registered for; empty for an empty handle.
  const std::string& topic() const noexcept;

 private:
  friend class detail::Engine;
  std::weak_ptr<detail::Engine> engine_;
  std::shared_ptr<detail::HandlerEntry> entry_;
};

/// What a signal with a callback reports.
struct SignalResult {
  Status status;               ///< error when the publish could not be performed
  std::int64_t receivers = 0;  ///< subscriptions that received it
  /// True when the signal was published and, with confirm_subscribers, heard.
  bool ok() const noexcept { return status.ok(); }
  /// Published, but nobody listened (confirm_subscribers only).
  bool no_listeners() const noexcept { return status.code() == StatusCode::kNoListeners; }
  /// Not published: the backend was down or the engine stopping.
  bool unavailable() const noexcept {
    return status.code() == StatusCode::kNotConnected || status.code() == StatusCode::kClosing;
  }
  /// Not published: refused because the engine held its maximum of outbound
  /// work (EngineOptions::max_outstanding / max_outstanding_bytes).
  bool overloaded() const noexcept { return status.code() == StatusCode::kOverloaded; }
};

/// A slot handler: runs on the executor for each signal received.
using SlotHandler = std::function<void(const Request&)>;
/// A reply handler: runs on the executor for each request; answers through the Response.
using ReplyHandler = std::function<void(const Request&, Response&)>;
/// Receives a request's outcome (response, or 499/404/503), once, on the executor.
using ReplyCallback = std::function<void(Message)>;
/// Receives the outcome of a signal's publish, once, on the executor.
using SignalCallback = std::function<void(const SignalResult&)>;

/// The engine; see the file comment for the threading model.
///
/// Neither copyable nor movable (as redis-plus-plus's Redis): compositions,
/// health bulletins and subscriptions refer to it, and a moved-from engine
/// would leave them dangling. Hold it in a std::unique_ptr to pass it around.
class GILMOUR_API Gilmour {
 public:
  /// An engine over `backend` (shared ownership; one engine per backend).
  /// @throws InvalidArgument when backend is null or an option is invalid.
  explicit Gilmour(std::shared_ptr<Backend> backend, EngineOptions options = {});
  /// Stops (as stop()) and joins the I/O thread. Must not run on a handler
  /// of this engine or its I/O thread (stop() would throw there, and an
  /// exception cannot leave a destructor: std::terminate).
  ~Gilmour();
  Gilmour(Gilmour&&) = delete;
  Gilmour& operator=(Gilmour&&) = delete;
  Gilmour(const Gilmour&) = delete;
  Gilmour& operator=(const Gilmour&) = delete;

  /// Connects, subscribes every registered handler, and (with health_check)
  /// registers the process. Blocks until done, at most connect_timeout in all.
  /// @throws ConnectionError when that is not done within connect_timeout
  ///         (start() may then be called again); InvalidState when already
  ///         started or stopped.
  void start();
  /// Graceful stop: unsubscribes (no new messages are taken), lets running
  /// handlers finish up to `drain` (default EngineOptions::drain_timeout),
  /// and queued signals be published up to `drain` (default
  /// EngineOptions::drain_timeout), then completes every request still
  /// outstanding with 503 "shutting down" (Stats::requests_failed_at_stop),
  /// counts signals not published (Stats::signals_dropped_at_stop), logs both
  /// numbers once, deregisters health, closes the backend and joins the I/O
  /// thread: it returns within `drain` plus a short close, whatever the
  /// backlog. Callers waiting for room (OverflowPolicy::kBlock) are refused
  /// at once. Idempotent. An engine is not restarted after stop(). Returns
  /// false when handlers were still running at the deadline (their late
  /// answers are dropped).
  bool stop();
  /// As stop(), letting running handlers finish for at most `drain`.
  bool stop(std::chrono::milliseconds drain);
  /// True between a successful start() and stop().
  bool running() const noexcept;

  /// Registers a slot: `handler` runs for every signal on `topic`. `topic`
  /// may hold Redis glob wildcards (`item.buy.*`); with options.group set,
  /// only one slot of the group runs per signal. After start(), blocks until
  /// the subscription is confirmed (up to connect_timeout).
  /// @throws InvalidArgument for an invalid topic (empty, or holding
  ///         whitespace, a control character or NUL; see "Topics" above) or
  ///         a null handler; InvalidState when the engine is stopping or
  ///         stopped.
  Subscription slot(std::string_view topic, SlotHandler handler, HandlerOptions options = {});

  /// Registers a reply handler for `topic` (group "_default" unless set).
  /// @throws InvalidArgument for an invalid topic (empty, or holding `*`,
  ///         whitespace, a control character or NUL), a null handler, or a
  ///         second handler for the same topic and group;
  ///         InvalidState when the engine is stopping or stopped.
  Subscription reply_to(std::string_view topic, ReplyHandler handler, HandlerOptions options = {});

  /// Publishes a signal on `topic`; fire and forget. A failed publish is
  /// logged and counted (Stats::publish_failures). Past the engine's bound on
  /// outbound work the signal is refused (OverflowPolicy; counted in
  /// Stats::overloaded).
  /// @throws InvalidArgument for an invalid topic (empty, or holding `*`,
  ///         whitespace, a control character or NUL) or a message whose
  ///         envelope exceeds EngineOptions::max_payload; InvalidState when
  ///         the engine is not running.
  void signal(std::string_view topic, nlohmann::json data, SignalOptions options = {});
  /// As above; `done` runs on the executor with the outcome, or at once on the
  /// calling thread when refused (SignalResult::overloaded(), or the engine
  /// stopping).
  /// @throws InvalidArgument as above, or for a null `done`; InvalidState
  ///         when the engine is not running.
  void signal(std::string_view topic, nlohmann::json data, SignalCallback done,
              SignalOptions options = {});

  /// Sends a request; `done` runs once on the executor (on the I/O thread
  /// with RequestOptions::inline_callback) with the response, or with 499 at
  /// the timeout, 404 (confirm_subscribers and nobody listens), 503 (could
  /// not be sent, engine stopped; "shutting down" when stop() ended it).
  /// Exceptions, where `done` runs at once on the calling thread with 503:
  /// the engine held its maximum of outbound work (EngineOptions::
  /// max_outstanding, overflow_policy; the text starts with "overloaded"),
  /// or the engine is stopping and the request can no longer reach its I/O
  /// thread.
  ///
  /// `done` is any callable taking a Message (this overload takes part only
  /// then, so `request(topic, data, {})` is the future form below).
  /// @throws InvalidArgument for an invalid topic (empty, or holding `*`,
  ///         whitespace, a control character or NUL), a null callback, a
  ///         negative timeout, a message whose envelope exceeds
  ///         EngineOptions::max_payload; InvalidState when not running.
  template <typename F, typename = std::enable_if_t<std::is_invocable_v<F&, Message>>>
  void request(std::string_view topic, nlohmann::json data, F&& done, RequestOptions options = {}) {
    request_with_callback(topic, std::move(data), ReplyCallback(std::forward<F>(done)), options);
  }
  /// As above, as a future (which never holds an exception).
  /// @throws InvalidArgument for an invalid topic, a negative timeout or a
  ///         message over max_payload (as above); InvalidState when not running.
  [[nodiscard]] std::future<Message> request(std::string_view topic, nlohmann::json data,
                                             RequestOptions options = {});
  /// As above, blocking. Warning: from a handler it occupies a worker until
  /// the answer; the default pool grows to compensate, an injected Executor
  /// may not.
  /// @throws InvalidArgument for an invalid topic, a negative timeout or a
  ///         message over max_payload (as above); InvalidState when not running or when called on
  ///         the engine's I/O thread.
  Message request_sync(std::string_view topic, nlohmann::json data, RequestOptions options = {});

  /// Counters since construction.
  Stats stats() const;
  /// This engine's id (a UUID), the prefix of its request senders.
  const std::string& id() const noexcept;
  /// The process ident registered for health checks:
  /// `<hostname>-pid-<pid>-uuid-<uuid>`.
  const std::string& health_ident() const noexcept;
  /// Turns health checks on: at start() (or now, when running) registers the
  /// ident and answers pings on `gilmour.health.<ident>`.
  void enable_health_check();
  /// Changes the error policy at run time.
  void set_error_policy(ErrorPolicy policy);
  /// The current error policy.
  ErrorPolicy error_policy() const noexcept;
  /// Reports `record` through the error policy (and the error hook), as the
  /// engine does for its own failures. Any thread; a no-op when not running.
  void report_error(ErrorRecord record);

  /// Administration of the health registry (used by HealthBulletin). Each
  /// returns a future that completes on the I/O thread; a backend failure
  /// completes it with an empty result / error Status. InvalidState when
  /// the engine is not running.
  /// HGETALL gilmour.known_host.health: ident -> "true"/"active".
  [[nodiscard]] std::future<std::vector<std::pair<std::string, std::string>>> known_hosts();
  /// `HDEL gilmour.known_host.health <ident>`.
  [[nodiscard]] std::future<Status> forget_host(const std::string& ident);
  /// PUBSUB NUMSUB of a topic's request channel (`gilmour.request.T`, or the
  /// channel itself when it starts with `gilmour.`); -1 on a backend error.
  /// @throws InvalidArgument for an invalid topic (empty, or holding
  ///         whitespace, a control character or NUL; `*` is taken
  ///         literally); InvalidState when not running.
  [[nodiscard]] std::future<std::int64_t> listener_count(std::string_view topic);

  /// The backend (for tools built on the engine). Its members may only be
  /// called on the engine's I/O thread (see backend.hpp).
  const std::shared_ptr<Backend>& backend() const noexcept;
  /// The engine's logger.
  const std::shared_ptr<spdlog::logger>& logger() const noexcept;

 private:
  friend struct detail::EngineAccess;
  void request_with_callback(std::string_view topic, nlohmann::json data, ReplyCallback done,
                             RequestOptions options);
  std::shared_ptr<detail::Engine> impl_;
};

}  // namespace gilmour
