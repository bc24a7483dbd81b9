/// @file gilmour/options.hpp
/// Option aggregates: EngineOptions, HandlerOptions, RequestOptions,
/// SignalOptions, and the error policy.
///
/// Options are plain aggregates with defaults; they are checked where they
/// are passed in, and a bad value throws gilmour::InvalidArgument.
///
/// Thread safety: plain values.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

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

/// Engine-wide settings.
struct EngineOptions {
  /// Worker threads of the engine's own pool; 0 = max(4, hardware threads).
  std::size_t worker_threads = 0;
  /// Run handlers here instead of an engine-owned pool (shared ownership).
  std::shared_ptr<Executor> executor;
  /// Client-side timeout of requests that do not set one.
  std::chrono::milliseconds request_timeout{std::chrono::seconds(30)};
  /// Server-side deadline of handlers that do not set one (Gilmour's 600 s).
  std::chrono::milliseconds handler_timeout{std::chrono::seconds(600)};
  /// How long start() waits for the backend, and slot()/reply_to() after
  /// start() wait for their subscription to be confirmed.
  std::chrono::milliseconds connect_timeout{std::chrono::seconds(5)};
  /// How long stop() lets running handlers finish.
  std::chrono::milliseconds drain_timeout{std::chrono::seconds(10)};
  /// Expiry of exclusion locks (`SET key key NX EX <ttl>`), 600 s in Gilmour.
  std::chrono::seconds lock_ttl{600};
  /// How requests receive responses.
  ResponseScheme response_scheme = ResponseScheme::kEnginePattern;

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

  /// Logger; default: an engine-owned logger named "gilmour" that prints
  /// warnings and errors to stderr. Pass spdlog's null sink to silence.
  std::shared_ptr<spdlog::logger> logger;
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
};

/// Options of one request.
struct RequestOptions {
  /// Client-side timeout; 0 = EngineOptions::request_timeout. On expiry the
  /// request completes with 499 "Execution timed out".
  std::chrono::milliseconds timeout{0};
  /// Complete at once with 404 when nobody listens on the topic (read from
  /// PUBLISH's receiver count: no extra round trip).
  bool confirm_subscribers = false;
};

/// Options of one signal.
struct SignalOptions {
  /// Report 404 in the SignalResult when nobody listens on the topic.
  bool confirm_subscribers = false;
};

}  // namespace gilmour
