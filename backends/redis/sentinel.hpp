// Redis Sentinel discovery for the Redis backend: asks the sentinels in turn
// for the master's address, and watches one sentinel's `+switch-master`
// channel to follow failovers. It only finds addresses; the backend
// (redis_backend.cpp) connects its two connections there, and the data-node
// handshake checks ROLE (connection.cpp), so a stale answer fails and the
// backend asks again.
//
// Both of its connections are ordinary Connections (connection.hpp) to a
// sentinel, each with its own copy of the options: the sentinel's address
// and credentials, no database, no master check.
//
// Thread safety: none. Every member runs on the loop's thread.
#pragma once

#include <uv.h>

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>

#include "redis/connection.hpp"

namespace gilmour::redis::detail {

/// What the sentinel client reports to the backend. Called on the loop's
/// thread, never from inside a call of the backend into the client.
class SentinelOwner {
 public:
  /// The sentinels name `host:port` as the master: the answer to resolve(),
  /// or a `+switch-master` (`switched`) announcing a failover.
  virtual void on_master(const std::string& host, int port, bool switched) = 0;
  /// A resolve() round ended without an address: no sentinel answered, or
  /// none knows the master. `why` says what each sentinel did.
  virtual void on_no_master(const std::string& why) = 0;
  /// After close(): nothing of the client is left on the loop.
  virtual void on_sentinel_closed() = 0;

 protected:
  ~SentinelOwner() = default;
};

/// Asks sentinels for a master's address and watches for failovers.
/// Thread safety: loop thread only.
class SentinelClient final : private ConnectionOwner {
 public:
  /// `options` must be in Sentinel mode (Options::sentinel_mode()).
  SentinelClient(const Options& options, SentinelOwner& owner);
  ~SentinelClient() = default;
  SentinelClient(const SentinelClient&) = delete;
  SentinelClient& operator=(const SentinelClient&) = delete;

  /// Creates the libuv handles on `loop` and starts watching `+switch-master`.
  void init(uv_loop_t* loop);
  /// Starts a round: asks each sentinel in turn (starting with the last one
  /// that answered) until one names the master. Ends with on_master() or
  /// on_no_master(). A call during a round joins that round.
  void resolve();
  /// resolve() after the current backoff delay (reconnect_min doubled on
  /// each call up to reconnect_max); a call while one waits is ignored.
  void resolve_later();
  /// The master was reached: the next resolve_later() waits reconnect_min.
  void reset_backoff() noexcept { backoff_ = opts_.reconnect_min; }
  /// Closes both connections and the timer; on_sentinel_closed() follows.
  void close();
  /// True when no libuv handle of the client is open.
  bool closed() const noexcept { return !timer_open_ && query_.closed() && watch_.closed(); }

 private:
  // ConnectionOwner
  void on_ready(Connection& c) override;
  void on_down(Connection& c, const std::string& why, bool was_ready) override;
  void on_message(std::string_view channel, std::string_view pattern,
                  std::string_view payload) override;
  void on_closed(Connection& c) override;

  static void on_timer_cb(uv_timer_t* t);
  /// Connects the query connection to the next sentinel not asked in this
  /// round, or ends the round.
  void ask_next();
  /// Sends SENTINEL get-master-addr-by-name on the ready query connection.
  void send_query();
  /// The sentinel at `index` failed this round with `why`: try the next.
  void sentinel_failed(const std::string& why);
  /// Points `o` at sentinel `index`.
  void aim(Options& o, std::size_t index) const;
  void maybe_closed();

  const Options& opts_;
  SentinelOwner& owner_;
  Options query_opts_;  // the sentinel asked now
  Options watch_opts_;  // the sentinel watched now
  Connection query_;
  Connection watch_;
  uv_loop_t* loop_ = nullptr;
  uv_timer_t timer_{};
  bool timer_open_ = false;
  bool closing_ = false;
  bool resolving_ = false;
  bool ask_soon_ = false;        // the timer runs ask_next(), not resolve()
  std::size_t current_ = 0;      // the sentinel asked now (or that answered last)
  std::size_t asked_ = 0;        // sentinels asked in this round
  std::size_t watching_ = 0;     // the sentinel watched
  bool watched_before_ = false;  // a +switch-master subscription was confirmed once
  std::string errors_;           // what each sentinel did in this round
  std::chrono::milliseconds backoff_;
};

}  // namespace gilmour::redis::detail
