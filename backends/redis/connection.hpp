// One hiredis async connection on a libuv loop: connect with a deadline,
// handshake (AUTH, SELECT), a FIFO of pending commands matched to replies,
// a command timeout, an idle PING, host names resolved on libuv's thread pool,
// and reconnection with capped exponential backoff.
// Internal to backends/redis; the backend (redis_backend.cpp) owns two.
// Liveness (write accounting, command timeout, idle PING) is in
// connection_liveness.cpp.
//
// Liveness: a command's age counts from when its last byte was accepted by
// the socket (not from when it was queued: a local backlog is not a dead
// server). The connection is declared dead, and reset, when the oldest
// written command has no reply after command_timeout, when buffered output
// cannot be written for command_timeout, or when an idle PING (sent after
// idle_ping_interval without anything read) gets no answer within
// command_timeout. Before declaring it, the socket is checked for unread
// input (or writability): if there is some, the I/O thread was busy, not
// the server, and the check runs again after the loop has read it.
//
// It carries its own libuv adapter instead of hiredis 0.14's
// adapters/libuv.h: that adapter ignores poll errors (uv_poll reports
// POLLERR as UV_EBADF and stops the handle), so a refused connect or a
// reset connection would hang forever; it also frees its handle in a
// callback we could not wait for, and close() must know when nothing of
// the backend is left on the loop. Owning it also lets it flush writes once
// per loop turn instead of polling for writability per command, and skip
// interest changes that change nothing (see PollBox in connection.cpp and
// docs/performance.md).
//
// hiredis rules this code relies on (0.14.1, async.c):
// - redisAsyncFree() from a reply callback is deferred until the callback
//   returns; from onConnect/onDisconnect it is not (the context is being
//   torn down by hiredis then), so those paths never free.
// - On teardown hiredis calls every pending reply and subscription callback
//   with a NULL reply, then onDisconnect (only if it was connected). We detach
//   (ac->data = nullptr) before freeing a context ourselves, ignore NULL
//   replies, and fail our own FIFO instead.
// - In subscribed mode the callback given to (P)SUBSCRIBE is stored per
//   channel/pattern and called for each message and for the unsubscribe
//   reply; the same function and privdata is used for every command here,
//   and replies are told apart by their content.
//
// Thread safety: none. Every member runs on the loop's thread.
#pragma once

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <uv.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "gilmour/backend.hpp"
#include "gilmour/backends/redis.hpp"
#include "redis/resp.hpp"

namespace gilmour::redis::detail {

/// What a pending command expects as its reply.
enum class OpKind : std::uint8_t {
  kHandshake,    ///< AUTH / SELECT / PING at connect: handled by the connection
  kCount,        ///< integer reply (PUBLISH) -> CountCallback
  kNumsub,       ///< [channel, n] (PUBSUB NUMSUB) -> CountCallback
  kLock,         ///< OK / nil (SET NX EX) -> BoolCallback
  kStatus,       ///< any non-error reply -> StatusCallback
  kHash,         ///< flat array (HGETALL) -> HashCallback
  kCarry,        ///< LPUSH before LTRIM: an error is carried to the next op
  kSubscribe,    ///< (P)SUBSCRIBE confirmation -> StatusCallback (may be empty)
  kUnsubscribe,  ///< (P)UNSUBSCRIBE confirmation -> StatusCallback
  kRaw,          ///< any reply, handed over as is (CLUSTER SLOTS) -> RawCallback
};

/// Completion with the reply itself (null on an error status; an error
/// reply is passed as the status). The reply is valid only during the call.
using RawCallback = std::function<void(const Status&, const redisReply*)>;

using OpCallback = std::variant<std::monostate, Backend::StatusCallback, Backend::CountCallback,
                                Backend::BoolCallback, Backend::HashCallback, RawCallback>;

/// One command waiting for its reply.
struct Op {
  OpKind kind = OpKind::kStatus;
  bool pattern = false;         // subscriber ops
  bool written = false;         // its last byte was accepted by the socket
  std::uint64_t sent_ms = 0;    // uv_now() when written
  std::uint64_t end_bytes = 0;  // the connection's output offset just past it
  std::string what;             // handshake: the command name; subscriber ops: the channel
  OpCallback cb;
};

/// Invokes the op's callback with an error status (and an empty value).
/// Never throws.
void fail_op(Op& op, const Status& st) noexcept;

class Connection;

/// What a connection reports to its owner. Called on the loop's thread.
class ConnectionOwner {
 public:
  /// The handshake finished: commands may be sent.
  virtual void on_ready(Connection& c) = 0;
  /// A connect attempt failed or a ready connection was lost; every pending
  /// op has been failed already. `was_ready`: it had been ready.
  virtual void on_down(Connection& c, const std::string& why, bool was_ready) = 0;
  /// A "message" / "pmessage" on the subscriber connection.
  virtual void on_message(std::string_view channel, std::string_view pattern,
                          std::string_view payload) = 0;
  /// After close(): the last libuv handle of the connection is closed.
  virtual void on_closed(Connection& c) = 0;

 protected:
  ~ConnectionOwner() = default;
};

/// One Redis connection (command or subscriber). See the file comment.
/// Thread safety: loop thread only.
class Connection {
 public:
  enum class Role { kCommand, kSubscriber };

  Connection(Role role, const Options& options, ConnectionOwner& owner);
  ~Connection() = default;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  /// Creates the connection's timer on `loop`. Before connect(); again after
  /// a close() has completed.
  void init(uv_loop_t* loop);
  /// Starts a connect attempt (connect, then handshake, within connect_timeout).
  void connect();
  /// Schedules the next attempt after the backoff delay (doubled each time,
  /// reset once ready).
  void reconnect_later();
  /// Drops the connection and fails pending ops with `why`, without telling
  /// the owner. The connection is then idle.
  void abort(const std::string& why);
  /// Closes everything; pending ops fail. With `flush`, a ready connection
  /// first waits (at most min(command_timeout, 1 s)) for the replies of
  /// commands already sent. on_closed() follows once the handles are closed.
  void close(bool flush);

  bool ready() const noexcept { return state_ == State::kReady; }
  /// Neither connected, connecting nor waiting to reconnect: connect()
  /// would start an attempt.
  bool idle() const noexcept { return state_ == State::kIdle; }
  /// True when no libuv handle of this connection is open.
  bool closed() const noexcept {
    return (state_ == State::kUninit || state_ == State::kClosed) && handles_ == 0;
  }
  Role role() const noexcept { return role_; }
  /// The last loss was the server closing the connection (EOF), not an
  /// I/O error or one of our timeouts.
  bool peer_closed() const noexcept { return peer_closed_; }

  /// The command writer: fill it, then send().
  CommandWriter& writer() noexcept { return writer_; }
  /// Sends the writer's command with `op` awaiting its reply. Only when
  /// ready(); false (op untouched) otherwise.
  bool send(Op& op);

 private:
  enum class State { kUninit, kIdle, kConnecting, kHandshake, kReady, kBackoff, kClosing, kClosed };
  struct PollBox;

  // hiredis and libuv entry points (C callbacks, never throw).
  static void on_connect_cb(const redisAsyncContext* ac, int status);
  static void on_disconnect_cb(const redisAsyncContext* ac, int status);
  static void on_reply_cb(redisAsyncContext* ac, void* reply, void* privdata);
  static void on_timer_cb(uv_timer_t* t);
  static void on_poll_cb(uv_poll_t* h, int status, int events);
  static void release_read_buffer(redisReader* r);
  static void on_flush_cb(uv_prepare_t* h);
  static void on_resolved_cb(uv_getaddrinfo_t* req, int status, addrinfo* res);
  static void after_write(PollBox* box);
  static void set_events(PollBox* box, int events);
  static void ev_add_read(void* p);
  static void ev_del_read(void* p);
  static void ev_add_write(void* p);
  static void ev_del_write(void* p);
  static void ev_cleanup(void* p);

  bool attach(redisAsyncContext* ac);
  void handle_connect(int status, const char* err);
  void handle_disconnect(int status, const char* err, bool refused);
  void handle_reply(redisReply* r);
  void handle_timer();
  void complete(Op& op, redisReply* r);
  void confirm(bool subscribe, bool pattern, std::string_view name);
  bool send_raw(Op& op);
  void start_handshake();
  void drop_context();
  void down(const std::string& why, StatusCode code = StatusCode::kNotConnected);
  void fail_soon(std::string why);
  void fail_all(const std::string& why, StatusCode code = StatusCode::kNotConnected);
  void finish_close();
  void handle_closed();
  void open_socket(const char* host);
  void start_resolve();
  void handle_resolved(int status, addrinfo* res);
  // Liveness (connection_liveness.cpp).
  void reset_liveness();
  void note_read();
  void note_written();
  void pop_op_accounting();
  void check_soon(std::uint64_t ms);
  void check_liveness();
  bool socket_has_io();
  void send_ping();
  void finish_ping();

  Role role_;
  const Options& opts_;
  ConnectionOwner& owner_;
  std::string address_;
  uv_loop_t* loop_ = nullptr;
  uv_timer_t timer_{};
  State state_ = State::kUninit;
  int handles_ = 0;  // open libuv handles: the timer and the adapter (poll + prepare)
  redisAsyncContext* ac_ = nullptr;
  RingQueue<Op> ops_;
  int handshake_left_ = 0;
  std::string carry_;  // an LPUSH error, reported with the following LTRIM
  std::string soon_;   // a failure to report from the timer (fail_soon)
  std::chrono::milliseconds backoff_;
  // The command buffer keeps up to this much capacity between commands.
  static constexpr std::size_t kWriterKeep = std::size_t{64} * 1024;
  CommandWriter writer_;
  uv_getaddrinfo_t* resolving_ = nullptr;  // a pending host name resolution
  bool peer_closed_ = false;

  // Liveness accounting of the current context (reset by attach()).
  std::uint64_t queued_bytes_ = 0;   // bytes handed to hiredis
  std::uint64_t written_bytes_ = 0;  // bytes accepted by the socket
  std::size_t stamped_ = 0;          // ops at the front of ops_ known written
  std::uint64_t blocked_since_ = 0;  // output left behind since (0: none)
  std::uint64_t reads_ = 0;          // readable events handled
  std::uint64_t last_read_ms_ = 0;   // uv_now() of the last one
  std::uint64_t ping_end_ = 0;       // output offset past an unanswered PING (0: none)
  bool ping_written_ = false;
  bool ping_subscribed_ = false;  // sent in subscribed mode (see send_ping)
  std::uint64_t ping_written_ms_ = 0;
  std::uint64_t ping_reads_ = 0;  // reads_ when it was written
  std::uint64_t check_due_ = 0;   // when the ready-state timer fires
};

}  // namespace gilmour::redis::detail
