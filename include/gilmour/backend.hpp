/// @file gilmour/backend.hpp
/// The Backend seam: what a transport must do for the engine.
///
/// The engine (gilmour::Gilmour) talks to its transport only through this
/// interface; it never knows whether it runs over Redis or the in-process bus.
/// The operations are the protocol's needs and nothing more: publish,
/// (p)subscribe, the exclusion lock (`SET key key NX EX ttl`), the health hash,
/// the error list and the subscriber count.
///
/// Implement it to add a transport; use the factories in
/// gilmour/backends/redis.hpp and gilmour/backends/inproc.hpp otherwise.
///
/// Threading contract: every member except the constructor and destructor is
/// called by the engine on its I/O thread, after open(); every callback,
/// including the BackendListener's, must be invoked on that same I/O thread
/// (use IoContext::post from other threads), exactly once per call, and never
/// from inside the call that took it. Callbacks must not throw.
///
/// Ownership: the engine holds its backend by shared_ptr and owns it for its
/// lifetime; one Backend instance serves one engine.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gilmour/export.hpp"

namespace gilmour {

/// Why an operation failed: the category to branch on (the message is for
/// people). Codes are stable; new ones may be added.
enum class StatusCode {
  kOk = 0,        ///< success
  kNotConnected,  ///< the backend is down or reconnecting: the operation may succeed later
  kClosing,       ///< the engine or backend is stopping or stopped: it will not succeed
  kTimeout,       ///< no answer within a deadline
  kServerError,   ///< the server answered with an error (e.g. a Redis error reply)
  kNoListeners,   ///< published, but nobody listens (confirm_subscribers)
  kInvalid,       ///< the operation does not apply in this state
  kInternal,      ///< anything else (the message says what)
  kOverloaded,    ///< refused: the engine holds its maximum of outbound work (EngineOptions)
};

/// The name of a code, e.g. "not connected".
GILMOUR_API const char* to_string(StatusCode code) noexcept;

/// The outcome of an operation: ok, or a code and an error text. A small
/// value, as absl::Status or grpc::Status.
class GILMOUR_API Status {
 public:
  /// A success.
  Status() = default;
  /// An error of `code` (not kOk) described by `text`.
  static Status error(StatusCode code, std::string text) {
    Status s;
    s.error_ = std::move(text);
    s.code_ = code == StatusCode::kOk ? StatusCode::kInternal : code;
    return s;
  }
  /// An error of code kInternal.
  static Status error(std::string text) { return error(StatusCode::kInternal, std::move(text)); }
  /// True for a success.
  bool ok() const noexcept { return code_ == StatusCode::kOk; }
  /// Same as ok().
  explicit operator bool() const noexcept { return ok(); }
  /// Why it failed; kOk for a success.
  StatusCode code() const noexcept { return code_; }
  /// The error text; empty when ok.
  const std::string& message() const noexcept { return error_; }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string error_;
};

/// The engine's I/O thread, as a backend sees it.
class GILMOUR_API IoContext {
 public:
  virtual ~IoContext() = default;
  /// Runs `fn` on the I/O thread, in order with other posted functions.
  /// Any thread may call it. Functions posted after the loop stopped are dropped.
  virtual void post(std::function<void()> fn) = 0;
  /// True on the I/O thread.
  virtual bool on_io_thread() const noexcept = 0;
  /// The libuv loop (`uv_loop_t*`), for backends built on libuv.
  virtual void* native_loop() noexcept = 0;
};

/// Connection states reported by a backend.
enum class ConnectionState { kConnected, kDisconnected, kReconnected };

/// What a backend reports to the engine. Called on the I/O thread.
class GILMOUR_API BackendListener {
 public:
  virtual ~BackendListener() = default;
  /// A message arrived on `channel`; `pattern` is the matching pattern of a
  /// psubscription, empty for a plain subscription. The views are valid only
  /// during the call.
  virtual void on_message(std::string_view channel, std::string_view pattern,
                          std::string_view payload) = 0;
  /// The connection changed state; `detail` says why.
  virtual void on_connection_state(ConnectionState state, std::string_view detail) = 0;
};

/// The transport interface. See the file comment for the threading contract.
class GILMOUR_API Backend {
 public:
  /// Completion of an operation without a result.
  using StatusCallback = std::function<void(const Status&)>;
  /// Completion with a count (publish receivers, subscriber count).
  using CountCallback = std::function<void(const Status&, std::int64_t)>;
  /// Completion with a yes/no result (the exclusion lock).
  using BoolCallback = std::function<void(const Status&, bool)>;
  /// Completion with a hash's field/value pairs.
  using HashCallback =
      std::function<void(const Status&, std::vector<std::pair<std::string, std::string>>)>;

  virtual ~Backend() = default;

  /// Connects. `done` reports the first connection's outcome (wrong password,
  /// unreachable server...). After a success the backend keeps itself
  /// connected: it reconnects and restores every subscription on its own,
  /// reporting transitions to the listener.
  virtual void open(IoContext& io, BackendListener& listener, StatusCallback done) = 0;
  /// Closes every connection; `done` runs when nothing of the backend is left
  /// on the loop. No other callback runs after `done`; callbacks of operations
  /// still pending are invoked with an error status before it.
  virtual void close(StatusCallback done) = 0;

  /// SUBSCRIBE (or PSUBSCRIBE when `pattern`).
  ///
  /// The backend is the one owner of the subscription set: it keeps every
  /// subscription across reconnects until unsubscribe(), restores the set
  /// after each reconnect, and reports kReconnected only once every restored
  /// subscription is confirmed. The engine keeps no copy to re-subscribe.
  ///
  /// `done` runs once: with success when the server has confirmed the
  /// subscription; when the backend is down (or the connection drops before
  /// the confirmation), not before the subscription is restored and
  /// confirmed after the reconnect; with an error when the server refuses it,
  /// with kInvalid when unsubscribe() comes first, with kClosing at close().
  /// It never reports kNotConnected for a subscription the backend keeps.
  /// A backend that cannot lose its connection (the in-process bus) confirms
  /// at once.
  virtual void subscribe(const std::string& channel, bool pattern, StatusCallback done) = 0;
  /// UNSUBSCRIBE (or PUNSUBSCRIBE when `pattern`); `done` when confirmed.
  virtual void unsubscribe(const std::string& channel, bool pattern, StatusCallback done) = 0;

  /// PUBLISH; `done` gets the number of subscriptions that received it.
  virtual void publish(const std::string& channel, std::string payload, CountCallback done) = 0;
  /// `SET key key NX EX ttl`; `done` gets true when this call won the lock.
  virtual void acquire_lock(const std::string& key, std::chrono::seconds ttl,
                            BoolCallback done) = 0;
  /// HSET key field value.
  virtual void hash_set(const std::string& key, const std::string& field, const std::string& value,
                        StatusCallback done) = 0;
  /// HDEL key field.
  virtual void hash_delete(const std::string& key, const std::string& field,
                           StatusCallback done) = 0;
  /// HGETALL key: `done` gets the field/value pairs (none for a missing key).
  virtual void hash_get_all(const std::string& key, HashCallback done) = 0;
  /// LPUSH key value, then LTRIM key 0 keep-1.
  virtual void list_push_trim(const std::string& key, std::string value, std::int64_t keep,
                              StatusCallback done) = 0;
  /// Number of subscribers of an exact channel (PUBSUB NUMSUB).
  virtual void subscriber_count(const std::string& channel, CountCallback done) = 0;

  /// A short name for logs ("redis 127.0.0.1:6379", "inproc").
  virtual std::string describe() const = 0;
};

}  // namespace gilmour
