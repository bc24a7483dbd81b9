/// @file gilmour/options.hpp
/// Option aggregates: EngineOptions, HandlerOptions, RequestOptions,
/// SignalOptions, and the error policy.
///
/// Options are plain aggregates with defaults; they are checked where they
/// are passed in, and a bad value throws gilmour::InvalidArgument. Each field
/// also has a chainable setter, so a call site can name what it sets:
///
/// @code
///   g.reply_to("echo", handler, gilmour::HandlerOptions{}.set_group("echo").set_timeout(5s));
///   g.request("echo", "hi", gilmour::RequestOptions{}.set_timeout(2s));
/// @endcode
///
/// Thread safety: plain values.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "gilmour/backend.hpp"
#include "gilmour/export.hpp"

namespace spdlog {
class logger;
}

namespace gilmour {

class Executor;
struct ErrorRecord;

/// What the engine does with an error record (see error_record.hpp).
enum class ErrorPolicy {
  kPublish,  ///< PUBLISH on EngineOptions::error_channel, wrapped in an envelope (default)
  kQueue,    ///< LPUSH on EngineOptions::error_queue, then LTRIM to error_queue_max
  kIgnore,   ///< drop (the hook still sees it)
};

/// "publish", "queue" or "ignore" (also "" for ignore, as Go names it).
/// @throws InvalidArgument for any other name.
GILMOUR_API ErrorPolicy parse_error_policy(std::string_view name);
/// The policy's name: "publish", "queue" or "ignore".
GILMOUR_API std::string_view to_string(ErrorPolicy policy) noexcept;

/// How a requester receives responses; see docs/redis-backend.md.
enum class ResponseScheme {
  /// One `PSUBSCRIBE gilmour.response.<engine-id>.*` per engine; senders are
  /// `<engine-id>.<sequence>`. One round trip per request (the PUBLISH). Default.
  kEnginePattern,
  /// SUBSCRIBE `gilmour.response.<uuid>` per request, confirmed before the
  /// PUBLISH, UNSUBSCRIBE after (what Go and Ruby do). Two more round trips
  /// per request, but no pattern for Redis to test on every PUBLISH.
  kPerRequest,
};

/// What request() and signal() do when the engine already holds
/// EngineOptions::max_outstanding messages or max_outstanding_bytes bytes of
/// outbound work (see docs/reliability.md, "Backpressure").
enum class OverflowPolicy {
  /// Refuse at once: a request completes with 503 and a text starting with
  /// "overloaded", a signal's callback gets StatusCode::kOverloaded; both run
  /// on the calling thread before request()/signal() returns. Default.
  kFailFast,
  /// Wait on the calling thread up to EngineOptions::overflow_block_timeout
  /// for room, then refuse as kFailFast. Never waits on the engine's I/O
  /// thread (inline handlers and callbacks refuse at once), nor once stop()
  /// has begun (refused with 503 "shutting down"). On a worker of the
  /// engine's own pool the wait counts as blocking (ThreadPool::BlockingScope).
  kBlock,
};

/// Engine-wide settings.
struct EngineOptions {
  /// Worker threads of the engine's own pool; 0 = the hardware threads
  /// (at least 2). The pool still grows while workers block (see ThreadPool).
  std::size_t worker_threads = 0;
  /// Run handlers here instead of an engine-owned pool (shared ownership).
  std::shared_ptr<Executor> executor;
  /// Client-side timeout of requests that do not set one.
  std::chrono::milliseconds request_timeout{std::chrono::seconds(30)};
  /// Server-side deadline of handlers that do not set one (Gilmour's 600 s).
  std::chrono::milliseconds handler_timeout{std::chrono::seconds(600)};
  /// How long start() may take in all (connect, subscribe, register), and
  /// how long slot()/reply_to() after start() wait for their subscription
  /// to be confirmed.
  std::chrono::milliseconds connect_timeout{std::chrono::seconds(5)};
  /// How long stop() lets running handlers finish and queued signals be
  /// published; stop() returns within it plus a short close (requests still
  /// outstanding then complete with 503 "shutting down").
  std::chrono::milliseconds drain_timeout{std::chrono::seconds(10)};
  /// Expiry of exclusion locks (`SET key 1 NX EX <ttl>`). A group member
  /// that receives a message later than this after the first member took
  /// its lock can win the lock again and run the message a second time, so
  /// this is the lag a group tolerates. 120 s by default (Go and Ruby use
  /// 600 s): with Redis's default `client-output-buffer-limit pubsub 32mb
  /// 8mb 60`, a member that falls that far behind at 1k messages/s or more
  /// has been disconnected by Redis before it could take a lock late. Redis
  /// holds about 150 bytes per lock for this long: ~18 MB per 1k requests/s
  /// at the default (docs/redis-backend.md, "Exclusion lock keys").
  std::chrono::seconds lock_ttl{120};
  /// How requests receive responses.
  ResponseScheme response_scheme = ResponseScheme::kEnginePattern;

  /// Outbound work the engine holds at most: requests from request() until
  /// they complete, plus signals from signal() until their publish is
  /// acknowledged. Must be positive. Default 65,536 (NATS's per-subscription
  /// limit); past it, overflow_policy applies and Stats::overloaded counts.
  std::size_t max_outstanding = 65536;
  /// Bytes of encoded payload that outbound work may hold at most (a single
  /// larger message is still sent when nothing else is outstanding). Must be
  /// positive. Default 64 MiB (NATS's per-subscription limit).
  std::size_t max_outstanding_bytes = std::size_t{64} << 20;
  /// What request()/signal() do past those bounds.
  OverflowPolicy overflow_policy = OverflowPolicy::kFailFast;
  /// OverflowPolicy::kBlock: how long a caller waits for room; must not be
  /// negative (0 refuses at once, as kFailFast).
  std::chrono::milliseconds overflow_block_timeout{std::chrono::seconds(5)};

  /// Error policy and where records go.
  ErrorPolicy error_policy = ErrorPolicy::kPublish;
  /// Channel of ErrorPolicy::kPublish.
  std::string error_channel = "gilmour.error";
  /// List of ErrorPolicy::kQueue.
  std::string error_queue = "gilmour.errorqueue";
  /// Records kept in error_queue (older ones are trimmed); must be positive.
  std::size_t error_queue_max = 10000;
  /// Sees every error record, whatever the policy; runs on a worker thread.
  std::function<void(const ErrorRecord&)> error_hook;

  /// Register in `gilmour.known_host.health` and answer health pings at start().
  bool health_check = false;

  /// Called when the backend loses its connection (kDisconnected, with the
  /// reason) and when it is back with every subscription restored
  /// (kReconnected). Runs on the executor, never on the I/O thread; calls
  /// may overlap when the connection flaps, so keep it short. kConnected is
  /// not reported (start() returning says it).
  std::function<void(ConnectionState state, std::string_view detail)> on_connection_state;

  /// Handlers with HandlerOptions::inline_delivery that run longer than this
  /// are counted (Stats::slow_inline) and warned about (at most once a second):
  /// they hold up all of the engine's I/O while they run.
  std::chrono::milliseconds inline_warn_threshold{std::chrono::milliseconds(5)};

  /// Default bound of each handler's queue: invocations accepted and not
  /// started yet (NATS's per-subscription default). Over it a request is
  /// answered 503 "overloaded" at once and a signal is dropped, both counted
  /// in Stats::slow_consumer_dropped. A handler may set its own
  /// (HandlerOptions::max_pending). Must be positive.
  std::size_t max_pending = 65536;
  /// Default bound of each handler's queue in payload bytes (64 MiB, as NATS).
  /// Must be positive.
  std::size_t max_pending_bytes = std::size_t{64} << 20;
  /// Load-aware exclusion: a handler of an exclusion group whose queue is
  /// full waits this long before it tries to take a message's lock, so that
  /// a member with room takes it first; if nobody did, it tries once and, if
  /// it wins while still full, answers 503 "overloaded" (a request) or drops
  /// the message (a signal). 0: try at once (no load-awareness). See
  /// docs/reliability.md.
  std::chrono::milliseconds saturated_lock_delay{std::chrono::milliseconds(20)};
  /// Largest wire payload (the encoded envelope, in bytes) sent or accepted.
  /// signal() and request() throw InvalidArgument for a bigger message; a
  /// response over it is replaced by a 500 saying so; a bigger message
  /// received is dropped before it is decoded or copied, counted in
  /// Stats::oversized_dropped and warned about (at most once a second).
  /// Between 1 and 64 MiB (the decoder's ceiling). Default 16 MiB: half of
  /// Redis's default pub/sub output-buffer hard limit (32 MB), above which
  /// Redis disconnects every subscriber of the message, so a bigger message
  /// is never delivered on a default Redis anyway.
  std::size_t max_payload = std::size_t{16} * 1024 * 1024;

  /// Logger; default: an engine-owned logger named "gilmour" that prints
  /// warnings and errors to stderr. Pass spdlog's null sink to silence.
  std::shared_ptr<spdlog::logger> logger;

  /// Sets `worker_threads`; returns *this.
  EngineOptions& set_worker_threads(std::size_t v) { return set(worker_threads, v); }
  /// Sets `executor`; returns *this.
  EngineOptions& set_executor(std::shared_ptr<Executor> v) { return set(executor, std::move(v)); }
  /// Sets `request_timeout`; returns *this.
  EngineOptions& set_request_timeout(std::chrono::milliseconds v) {
    return set(request_timeout, v);
  }
  /// Sets `handler_timeout`; returns *this.
  EngineOptions& set_handler_timeout(std::chrono::milliseconds v) {
    return set(handler_timeout, v);
  }
  /// Sets `connect_timeout`; returns *this.
  EngineOptions& set_connect_timeout(std::chrono::milliseconds v) {
    return set(connect_timeout, v);
  }
  /// Sets `drain_timeout`; returns *this.
  EngineOptions& set_drain_timeout(std::chrono::milliseconds v) { return set(drain_timeout, v); }
  /// Sets `lock_ttl`; returns *this.
  EngineOptions& set_lock_ttl(std::chrono::seconds v) { return set(lock_ttl, v); }
  /// Sets `response_scheme`; returns *this.
  EngineOptions& set_response_scheme(ResponseScheme v) { return set(response_scheme, v); }
  /// Sets `max_outstanding`; returns *this.
  EngineOptions& set_max_outstanding(std::size_t v) { return set(max_outstanding, v); }
  /// Sets `max_outstanding_bytes`; returns *this.
  EngineOptions& set_max_outstanding_bytes(std::size_t v) { return set(max_outstanding_bytes, v); }
  /// Sets `overflow_policy`; returns *this.
  EngineOptions& set_overflow_policy(OverflowPolicy v) { return set(overflow_policy, v); }
  /// Sets `overflow_block_timeout`; returns *this.
  EngineOptions& set_overflow_block_timeout(std::chrono::milliseconds v) {
    return set(overflow_block_timeout, v);
  }
  /// Sets `error_policy`; returns *this.
  EngineOptions& set_error_policy(ErrorPolicy v) { return set(error_policy, v); }
  /// Sets `error_channel`; returns *this.
  EngineOptions& set_error_channel(std::string v) { return set(error_channel, std::move(v)); }
  /// Sets `error_queue`; returns *this.
  EngineOptions& set_error_queue(std::string v) { return set(error_queue, std::move(v)); }
  /// Sets `error_queue_max`; returns *this.
  EngineOptions& set_error_queue_max(std::size_t v) { return set(error_queue_max, v); }
  /// Sets `error_hook`; returns *this.
  EngineOptions& set_error_hook(std::function<void(const ErrorRecord&)> v) {
    return set(error_hook, std::move(v));
  }
  /// Sets `max_payload`; returns *this.
  EngineOptions& set_max_payload(std::size_t v) { return set(max_payload, v); }
  /// Sets `health_check`; returns *this.
  EngineOptions& set_health_check(bool v) { return set(health_check, v); }
  /// Sets `on_connection_state`; returns *this.
  EngineOptions& set_on_connection_state(std::function<void(ConnectionState, std::string_view)> v) {
    return set(on_connection_state, std::move(v));
  }
  /// Sets `inline_warn_threshold`; returns *this.
  EngineOptions& set_inline_warn_threshold(std::chrono::milliseconds v) {
    return set(inline_warn_threshold, v);
  }
  /// Sets `max_pending`; returns *this.
  EngineOptions& set_max_pending(std::size_t v) { return set(max_pending, v); }
  /// Sets `max_pending_bytes`; returns *this.
  EngineOptions& set_max_pending_bytes(std::size_t v) { return set(max_pending_bytes, v); }
  /// Sets `saturated_lock_delay`; returns *this.
  EngineOptions& set_saturated_lock_delay(std::chrono::milliseconds v) {
    return set(saturated_lock_delay, v);
  }
  /// Sets `logger`; returns *this.
  EngineOptions& set_logger(std::shared_ptr<spdlog::logger> v) { return set(logger, std::move(v)); }

 private:
  template <typename T, typename V>
  EngineOptions& set(T& field, V&& v) {
    field = std::forward<V>(v);
    return *this;
  }
};

/// Options of a slot or reply handler.
struct HandlerOptions {
  /// Exclusion group: exactly one handler of a group runs per message, across
  /// every engine and process on the backend. Reply handlers without a group
  /// join "_default"; slots without a group all run.
  std::string group;
  /// Server-side deadline; 0 = EngineOptions::handler_timeout. When it passes,
  /// a reply is answered 499 "Execution timed out" and the late result is
  /// dropped; a slot's overrun is reported as a 499 error record.
  std::chrono::milliseconds timeout{0};
  /// Run this handler for one message at a time, in the order messages
  /// arrived (over one backend connection, the order they were published).
  /// Default: each message is its own task, so invocations run concurrently.
  /// The deadline counts from arrival, so time spent queued behind earlier
  /// messages counts against it.
  bool ordered = false;
  /// Run the handler on the engine's I/O thread, as soon as the message (and
  /// its exclusion lock) arrives, and publish its answer in the same loop
  /// turn: no thread hand-off at all. For short handlers that never block:
  /// while it runs, the engine does no I/O. request_sync throws there
  /// (InvalidState); use the callback form or Response::defer(). Runs are
  /// one at a time, in arrival order (so `ordered` is implied). Runs longer
  /// than EngineOptions::inline_warn_threshold are counted and warned about.
  bool inline_delivery = false;
  /// Bound of this handler's queue (invocations accepted, not started);
  /// 0 = EngineOptions::max_pending. Not used with inline_delivery (nothing
  /// queues). See EngineOptions::max_pending for what happens over it.
  std::size_t max_pending = 0;
  /// Bound of this handler's queue in payload bytes; 0 =
  /// EngineOptions::max_pending_bytes.
  std::size_t max_pending_bytes = 0;

  /// Sets `group`; returns *this.
  HandlerOptions& set_group(std::string v) {
    group = std::move(v);
    return *this;
  }
  /// Sets `timeout`; returns *this.
  HandlerOptions& set_timeout(std::chrono::milliseconds v) {
    timeout = v;
    return *this;
  }
  /// Sets `ordered`; returns *this.
  HandlerOptions& set_ordered(bool v = true) {
    ordered = v;
    return *this;
  }
  /// Sets `inline_delivery`; returns *this.
  HandlerOptions& set_inline_delivery(bool v = true) {
    inline_delivery = v;
    return *this;
  }
  /// Sets `max_pending`; returns *this.
  HandlerOptions& set_max_pending(std::size_t v) {
    max_pending = v;
    return *this;
  }
  /// Sets `max_pending_bytes`; returns *this.
  HandlerOptions& set_max_pending_bytes(std::size_t v) {
    max_pending_bytes = v;
    return *this;
  }
};

/// Options of one request.
struct RequestOptions {
  /// Client-side timeout; 0 = EngineOptions::request_timeout. On expiry the
  /// request completes with 499 "Execution timed out". Made from a handler's
  /// thread (or in a composition), the request is bounded by what is left of
  /// that handler's Request::deadline() (the composition's deadline), and
  /// completes with 499 at once, unsent, when nothing is left. The timeout
  /// travels in the envelope (`budget_ms`): a gilmour-cpp replier does not
  /// start the handler once it has passed (docs/protocol.md).
  std::chrono::milliseconds timeout{0};
  /// Complete at once with 404 when nobody listens on the topic (read from
  /// PUBLISH's receiver count: no extra round trip).
  bool confirm_subscribers = false;
  /// Callback form only: run the callback on the engine's I/O thread instead
  /// of the executor (no hand-off). It must be short and must not block; use
  /// it to hand the result to your own queue. The future form always
  /// completes on the I/O thread (setting a promise is short).
  bool inline_callback = false;

  /// Sets `timeout`; returns *this.
  RequestOptions& set_timeout(std::chrono::milliseconds v) {
    timeout = v;
    return *this;
  }
  /// Sets `confirm_subscribers`; returns *this.
  RequestOptions& set_confirm_subscribers(bool v = true) {
    confirm_subscribers = v;
    return *this;
  }
  /// Sets `inline_callback`; returns *this.
  RequestOptions& set_inline_callback(bool v = true) {
    inline_callback = v;
    return *this;
  }
};

/// Options of one signal.
struct SignalOptions {
  /// Report 404 in the SignalResult when nobody listens on the topic.
  bool confirm_subscribers = false;

  /// Sets `confirm_subscribers`; returns *this.
  SignalOptions& set_confirm_subscribers(bool v = true) {
    confirm_subscribers = v;
    return *this;
  }
};

}  // namespace gilmour
