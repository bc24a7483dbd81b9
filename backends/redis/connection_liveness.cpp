// Liveness of one Redis connection: which commands the socket has accepted
// (their age counts from then), the command timeout, output that cannot be
// written, and the idle PING. See the file comment of connection.hpp.
#include <hiredis/sds.h>
#include <poll.h>

#include <algorithm>
#include <cstdlib>
#include <limits>

#include "redis/connection.hpp"

namespace gilmour::redis::detail {

namespace {
constexpr std::uint64_t kNever = std::numeric_limits<std::uint64_t>::max();
}  // namespace

void Connection::reset_liveness() {
  queued_bytes_ = 0;
  written_bytes_ = 0;
  stamped_ = 0;
  blocked_since_ = 0;
  reads_ = 0;
  last_read_ms_ = uv_now(loop_);
  ping_end_ = 0;
  ping_written_ = false;
  ping_subscribed_ = false;
  check_due_ = 0;
}

void Connection::note_read() {
  ++reads_;
  last_read_ms_ = uv_now(loop_);
}

void Connection::note_written() {
  // The loop's clock is read once per turn; a turn that queued a large
  // backlog may have taken long, so read the time of the write itself.
  uv_update_time(loop_);
  const std::uint64_t now = uv_now(loop_);
  const std::size_t left = sdslen(ac_->c.obuf);
  const std::uint64_t written = queued_bytes_ - left;
  const bool progress = written > written_bytes_;
  written_bytes_ = written;
  while (stamped_ < ops_.size() && ops_.at(stamped_).end_bytes <= written) {
    Op& op = ops_.at(stamped_++);
    op.written = true;
    op.sent_ms = now;
  }
  if (ping_end_ != 0 && !ping_written_ && ping_end_ <= written) {
    ping_written_ = true;
    ping_written_ms_ = now;
    ping_reads_ = reads_;
  }
  if (left == 0) {
    blocked_since_ = 0;
  } else if (progress || blocked_since_ == 0) {
    blocked_since_ = now;
  }
  if (progress || left != 0) check_soon(static_cast<std::uint64_t>(opts_.command_timeout.count()));
}

void Connection::pop_op_accounting() {
  if (stamped_ > 0) --stamped_;
}

void Connection::check_soon(std::uint64_t ms) {
  if (state_ != State::kReady) return;
  const std::uint64_t due = uv_now(loop_) + ms;
  if (uv_is_active(reinterpret_cast<uv_handle_t*>(&timer_)) && check_due_ <= due) return;
  check_due_ = due;
  uv_timer_start(&timer_, on_timer_cb, ms, 0);
}

bool Connection::socket_has_io() {
  if (!ac_) return false;
  pollfd p{};
  p.fd = ac_->c.fd;
  p.events = static_cast<short>(POLLIN | (blocked_since_ != 0 ? POLLOUT : 0));
  return ::poll(&p, 1, 0) > 0 && p.revents != 0;
}

void Connection::check_liveness() {
  const std::uint64_t now = uv_now(loop_);
  const auto timeout = static_cast<std::uint64_t>(opts_.command_timeout.count());
  if (ping_written_ && reads_ > ping_reads_) finish_ping();  // something came back
  std::uint64_t next = kNever;
  const char* late = nullptr;
  auto consider = [&](std::uint64_t since, const char* what) {
    if (now - since >= timeout) {
      if (!late) late = what;
    } else {
      next = std::min(next, since + timeout);
    }
  };
  if (stamped_ > 0) consider(ops_.front().sent_ms, "no reply");
  if (blocked_since_ != 0) consider(blocked_since_, "cannot write");
  if (ping_written_) consider(ping_written_ms_, "no answer to PING");
  if (late) {
    if (socket_has_io()) {
      // Input waits unread (or the socket takes output again): the I/O
      // thread was busy, not the server. Look again once the loop has
      // served the socket (1 ms: a 0 ms timer would run in this same pass).
      check_soon(1);
      return;
    }
    // The server stopped answering: fail what waits and start over.
    drop_context();
    down("redis " + address_ + ": " + late + " within " + std::to_string(timeout) +
             " ms (command timeout); reconnecting",
         StatusCode::kTimeout);
    return;
  }
  const auto interval = static_cast<std::uint64_t>(opts_.idle_ping_interval.count());
  if (interval > 0 && ping_end_ == 0) {
    const bool quiet = ops_.empty() && ac_ && sdslen(ac_->c.obuf) == 0;
    if (!quiet) {
      next = std::min(next, now + interval);
    } else if (now - last_read_ms_ >= interval) {
      send_ping();
      next = std::min(next, now + timeout);
    } else {
      next = std::min(next, last_read_ms_ + interval);
    }
  }
  if (next == kNever) next = now + timeout;
  check_due_ = 0;
  check_soon(std::max<std::uint64_t>(next - now, 1));
}

// The PING goes through hiredis without a callback of ours, so the FIFO of
// ops never sees its reply: on a normal connection hiredis matches "+PONG"
// to the callback-less entry and drops it. On a subscribed connection RESP2
// answers ["pong", ""], which hiredis 0.14 looks up as a pattern named ""
// and drops; the entry it queued for the PING (in ac->sub.invalid, consumed
// only by non-array replies, which a subscribed connection does not get) is
// freed here instead, so idle PINGs do not accumulate. Either way the answer
// is recognised as "something was read after the PING was written".
// Only sent with nothing pending, so hiredis's subscribed flag agrees with
// the server's state.
void Connection::send_ping() {
  if (!ac_) return;
  static constexpr char kPing[] = "*1\r\n$4\r\nPING\r\n";
  const bool subscribed = (ac_->c.flags & REDIS_SUBSCRIBED) != 0;
  if (redisAsyncFormattedCommand(ac_, nullptr, nullptr, kPing, sizeof kPing - 1) != REDIS_OK) {
    return;
  }
  queued_bytes_ += sizeof kPing - 1;
  ping_end_ = queued_bytes_;
  ping_written_ = false;
  ping_subscribed_ = subscribed;
}

void Connection::finish_ping() {
  if (ping_subscribed_ && ac_) {
    redisCallbackList& list = ac_->sub.invalid;
    if (redisCallback* cb = list.head) {
      list.head = cb->next;
      if (list.tail == cb) list.tail = nullptr;
      std::free(cb);  // hiredis 0.14 allocates it with malloc()
    }
  }
  ping_end_ = 0;
  ping_written_ = false;
  ping_subscribed_ = false;
}

}  // namespace gilmour::redis::detail
