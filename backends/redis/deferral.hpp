// Deferred callbacks for the Redis backends: run a function on the loop
// soon, never inside the current call (the Backend contract forbids calling
// back from inside the call that took the callback). Functions queued before
// close() all run before close() reports done. Also the statuses both
// backends fail commands with while not connected, and fail_later().
//
// Thread safety: none. Every member runs on the loop's thread.
#pragma once

#include <uv.h>

#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "gilmour/backend.hpp"
#include "redis/connection.hpp"

namespace gilmour::redis::detail {

/// A zero-delay timer draining a list of functions. See the file comment.
class Deferral {
 public:
  Deferral() = default;
  Deferral(const Deferral&) = delete;
  Deferral& operator=(const Deferral&) = delete;

  /// Creates the timer on `loop`; `io` runs what is deferred before init()
  /// or after close().
  void init(uv_loop_t* loop, IoContext& io) {
    io_ = &io;
    uv_timer_init(loop, &timer_);
    timer_.data = this;
    open_ = true;
  }
  /// True between init() and the end of close().
  bool open() const noexcept { return open_; }

  /// Runs `fn` on the loop soon.
  void later(std::function<void()> fn) {
    if (open_ && !closing_) {
      pending_.push_back(std::move(fn));
      if (!uv_is_active(reinterpret_cast<uv_handle_t*>(&timer_))) {
        uv_timer_start(&timer_, on_timer, 0, 0);
      }
    } else if (io_) {
      io_->post(std::move(fn));
    }
  }

  /// Runs what is pending, closes the timer, runs what was deferred
  /// meanwhile, then `done` (from the timer's close callback).
  void close(std::function<void()> done) {
    run();
    uv_timer_stop(&timer_);
    closing_ = true;
    done_ = std::move(done);
    uv_close(reinterpret_cast<uv_handle_t*>(&timer_), [](uv_handle_t* h) {
      auto* self = static_cast<Deferral*>(h->data);
      self->run();
      self->open_ = false;
      self->closing_ = false;
      auto d = std::move(self->done_);
      self->done_ = nullptr;
      if (d) d();
    });
  }
  /// True while close() waits for the timer to close.
  bool closing() const noexcept { return closing_; }

 private:
  static void on_timer(uv_timer_t* t) { static_cast<Deferral*>(t->data)->run(); }

  void run() noexcept {
    while (!pending_.empty()) {
      auto batch = std::move(pending_);
      pending_.clear();
      for (auto& fn : batch) {
        try {
          fn();
        } catch (...) {  // callbacks must not throw; never unwind into libuv
        }
      }
    }
  }

  IoContext* io_ = nullptr;
  uv_timer_t timer_{};
  bool open_ = false;
  bool closing_ = false;
  std::vector<std::function<void()>> pending_;
  std::function<void()> done_;
};

/// The subscribe() calls a backend holds until the server confirms their
/// subscription after a reconnect: the backend owns the subscription set
/// (gilmour/backend.hpp), so a subscribe() made while it is down completes
/// when its restore is confirmed, never with kNotConnected.
class AwaitingSubscriptions {
 public:
  /// A channel or pattern, and whether it is a pattern.
  using Key = std::pair<std::string, bool>;

  void add(const Key& key, Backend::StatusCallback done) {
    waiting_[key].push_back(std::move(done));
  }
  /// A subscribe completion that parks itself here when the connection
  /// dropped before the confirmation and `kept(key)` says the backend still
  /// keeps the subscription (to restore it); it completes otherwise.
  template <typename Kept>
  Backend::StatusCallback park_on_loss(Key key, Backend::StatusCallback done, Kept kept) {
    return [this, key = std::move(key), done = std::move(done), kept](const Status& st) {
      if (st || st.code() != StatusCode::kNotConnected || !kept(key)) {
        done(st);
      } else {
        add(key, done);
      }
    };
  }
  /// Completes the calls waiting for `key` with `st`, from the loop.
  void release(Deferral& defer, const Key& key, const Status& st) {
    auto it = waiting_.find(key);
    if (it == waiting_.end()) return;
    defer.later([done = std::move(it->second), st] {
      for (const auto& d : done) d(st);
    });
    waiting_.erase(it);
  }
  void release_all(Deferral& defer, const Status& st) {
    while (!waiting_.empty()) release(defer, waiting_.begin()->first, st);
  }

 private:
  std::map<Key, std::vector<Backend::StatusCallback>> waiting_;
};

/// "not connected to redis ADDRESS (reconnecting)[; more]".
inline Status not_connected_status(const std::string& address, const std::string& more) {
  std::string t = "not connected to redis " + address + " (reconnecting)";
  if (!more.empty()) t += "; " + more;
  return Status::error(StatusCode::kNotConnected, std::move(t));
}

/// The status of a command while the backend is not open (or `closing`).
inline Status not_open_status(const std::string& address, bool closing) {
  return Status::error(
      closing ? StatusCode::kClosing : StatusCode::kNotConnected,
      "not connected to redis " + address + (closing ? " (closing)" : " (not open)"));
}

/// Fails the callback `done` (any Backend callback) with `st`, from the loop.
template <typename Callback>
void fail_later(Deferral& defer, Callback done, Status st) {
  Op op;
  op.cb = std::move(done);
  defer.later([op, st = std::move(st)]() mutable { fail_op(op, st); });
}

}  // namespace gilmour::redis::detail
