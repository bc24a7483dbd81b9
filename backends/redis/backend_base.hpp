// What the single-server (redis_backend.cpp) and the cluster backend
// (cluster_backend.cpp) share of the Backend life cycle: the phase, the loop
// and listener given to open(), the open()/close() callbacks, the
// subscription set the backend owns across reconnects, the deferral, and the
// statuses commands fail with while not connected. Each backend keeps its
// own connections and calls begin_open()/begin_close()/close_deferral() from
// its open(), close() and maybe_closed().
//
// Thread safety: none. Every member runs on the loop's thread (Backend
// contract), except construction and destruction.
#pragma once

#include <uv.h>

#include <functional>
#include <string>
#include <unordered_set>
#include <utility>

#include "gilmour/backend.hpp"
#include "redis/deferral.hpp"

namespace gilmour::redis::detail {

/// A backend's life cycle: kIdle -> kOpening -> kOpen (or kFailed) ->
/// kClosing -> kIdle.
enum class Phase { kIdle, kOpening, kOpen, kFailed, kClosing };

/// The state and steps both Redis backends share. See the file comment.
class BackendBase {
 public:
  BackendBase(const BackendBase&) = delete;
  BackendBase& operator=(const BackendBase&) = delete;

 protected:
  using SubKey = AwaitingSubscriptions::Key;

  BackendBase() = default;
  ~BackendBase() = default;

  /// True when never opened, or closed: nothing of the base is on a loop.
  bool idle() const noexcept { return phase_ == Phase::kIdle && !defer_.open(); }

  /// The common start of open(): false, with `done` failed from `io`, when
  /// already open or when `io` has no libuv loop. Otherwise records `io`,
  /// `listener` and the loop, starts the deferral, enters kOpening and keeps
  /// `done` for the outcome (open_done_).
  bool begin_open(IoContext& io, BackendListener& listener, Backend::StatusCallback done) {
    if (!idle()) {
      io.post([done = std::move(done)] {
        done(Status::error("gilmour::redis: open(): already open"));
      });
      return false;
    }
    io_ = &io;
    listener_ = &listener;
    loop_ = static_cast<uv_loop_t*>(io.native_loop());
    if (!loop_) {
      io.post([done = std::move(done)] {
        done(Status::error("gilmour::redis: the I/O context has no libuv loop"));
      });
      return false;
    }
    defer_.init(loop_, io);
    phase_ = Phase::kOpening;
    open_done_ = std::move(done);
    return true;
  }

  /// The common start of close(): false when `done` is already answered
  /// (never opened or closed: at once; already closing: an error).
  /// Otherwise enters kClosing, keeps `done` for close_deferral(), fails a
  /// pending open(), forgets the subscription set and fails the subscribe()
  /// calls still waiting for a confirmation.
  bool begin_close(Backend::StatusCallback done) {
    if (idle()) {
      if (io_) {
        io_->post([done = std::move(done)] { done(Status()); });
      } else {
        done(Status());  // never opened: no loop to defer to
      }
      return false;
    }
    if (phase_ == Phase::kClosing) {
      later([done = std::move(done)] {
        done(Status::error("gilmour::redis: close(): already closing"));
      });
      return false;
    }
    phase_ = Phase::kClosing;
    close_done_ = std::move(done);
    if (open_done_) {
      auto d = std::move(open_done_);
      open_done_ = nullptr;
      later([d, a = address_] { d(Status::error("closed while connecting to " + a)); });
    }
    channels_.clear();
    patterns_.clear();
    awaiting_.release_all(defer_, Status::error(StatusCode::kClosing,
                                                "closed before the subscription was confirmed"));
    return true;
  }

  /// The end of close(), once the backend's own handles are closed: runs
  /// what is deferred, closes the deferral timer and, from its close
  /// callback, runs `reset` (the backend's own state, may be empty), enters
  /// kIdle and reports close() done.
  void close_deferral(std::function<void()> reset) {
    defer_.close([this, reset = std::move(reset)] {
      phase_ = Phase::kIdle;
      if (reset) reset();
      auto d = std::move(close_done_);
      close_done_ = nullptr;
      try {
        if (d) d(Status());
      } catch (...) {
      }
    });
  }

  /// Runs `fn` on the loop soon, never inside the current call (Deferral).
  void later(std::function<void()> fn) { defer_.later(std::move(fn)); }

  /// Fails a command at once (from the loop, not from inside the call).
  template <typename Callback>
  void reject(Callback done) {
    fail_later(defer_, std::move(done), phase_ == Phase::kOpen ? not_connected("") : not_open());
  }

  Status not_connected(const std::string& more) const {
    return not_connected_status(address_, more);
  }

  Status not_open() const { return not_open_status(address_, phase_ == Phase::kClosing); }

  /// True while `key` is in the subscription set (restored, or placed
  /// again, after a connection loss).
  bool kept(const SubKey& key) const {
    return (key.second ? patterns_ : channels_).count(key.first) != 0;
  }

  /// The completion of a SUBSCRIBE sent for subscribe(): when the
  /// connection drops before the confirmation while the subscription is
  /// kept, it waits in awaiting_ for the restore instead of failing.
  Backend::StatusCallback parked_on_loss(const std::string& channel, bool pattern,
                                         Backend::StatusCallback done) {
    return awaiting_.park_on_loss({channel, pattern}, std::move(done),
                                  [this](const SubKey& key) { return kept(key); });
  }

  /// unsubscribe()'s first step: a subscribe() of `channel` still waiting
  /// for its confirmation completes with kInvalid.
  void release_unconfirmed(const std::string& channel, bool pattern) {
    awaiting_.release(defer_, {channel, pattern},
                      Status::error(StatusCode::kInvalid, "unsubscribed before it was confirmed"));
  }

  /// Removes `channel` from the subscription set; false when it was not there.
  bool erase_subscription(const std::string& channel, bool pattern) {
    return (pattern ? patterns_ : channels_).erase(channel) != 0;
  }

  Phase phase_ = Phase::kIdle;
  std::string address_;  // for messages: "host:port", or the master's name
  IoContext* io_ = nullptr;
  BackendListener* listener_ = nullptr;
  uv_loop_t* loop_ = nullptr;
  Backend::StatusCallback open_done_;
  Backend::StatusCallback close_done_;
  std::unordered_set<std::string> channels_;  // the subscription set
  std::unordered_set<std::string> patterns_;
  // subscribe() calls made while the subscriber was down (or cut by a
  // loss), completed when the restore is confirmed: the backend alone owns
  // the subscription set across reconnects (gilmour/backend.hpp).
  AwaitingSubscriptions awaiting_;
  Deferral defer_;
};

}  // namespace gilmour::redis::detail
