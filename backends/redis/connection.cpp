// One hiredis async connection on a libuv loop. See connection.hpp.
#include "redis/connection.hpp"

#include <arpa/inet.h>
#include <hiredis/sds.h>
#include <netinet/in.h>

#include <algorithm>
#include <utility>
#include <vector>

// hiredis 0.14's sds.h declares its functions without extern "C" (hiredis.h
// includes it outside its own block), so C++ would look for mangled names:
// name the two C symbols the read-buffer release needs.
extern "C" {
sds gilmour_sdsempty() __asm__("sdsempty");
void gilmour_sdsfree(sds s) __asm__("sdsfree");
}

namespace gilmour::redis::detail {

namespace {

std::string_view view(const redisReply* r) noexcept {
  return r && r->str ? std::string_view(r->str, r->len) : std::string_view();
}

bool is_string(const redisReply* r) noexcept {
  return r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS);
}

/// `text` with every occurrence of `secret` replaced by `***` (a server
/// might echo the password it was sent in its error reply).
std::string without_secret(std::string text, const std::string& secret) {
  if (secret.empty()) return text;
  for (auto pos = text.find(secret); pos != std::string::npos; pos = text.find(secret, pos + 3)) {
    text.replace(pos, secret.size(), "***");
  }
  return text;
}

template <typename F>
void guarded(F&& f) noexcept {
  // Callbacks must not throw (Backend contract); nothing may unwind through
  // hiredis or libuv frames whatever happens.
  try {
    f();
  } catch (...) {
  }
}

}  // namespace

void fail_op(Op& op, const Status& st) noexcept {
  guarded([&] {
    if (auto* s = std::get_if<Backend::StatusCallback>(&op.cb)) {
      if (*s) (*s)(st);
    } else if (auto* c = std::get_if<Backend::CountCallback>(&op.cb)) {
      if (*c) (*c)(st, 0);
    } else if (auto* b = std::get_if<Backend::BoolCallback>(&op.cb)) {
      if (*b) (*b)(st, false);
    } else if (auto* h = std::get_if<Backend::HashCallback>(&op.cb)) {
      if (*h) (*h)(st, {});
    } else if (auto* r = std::get_if<RawCallback>(&op.cb)) {
      if (*r) (*r)(st, nullptr);
    }
  });
}

/// Our libuv adapter's state for one hiredis context: a uv_poll_t on its fd
/// and a uv_prepare_t, the write flush point. Heap-allocated; freed once
/// both handles are closed.
///
/// Writes are flushed eagerly rather than on writability: hiredis asks for
/// write interest (ev_add_write) for every command it buffers, and polling
/// for it would cost an epoll_ctl to arm it, an epoll_wait wake-up and another
/// epoll_ctl to disarm it, per loop turn. Instead ev_add_write marks the
/// context dirty and starts the prepare handle; in the prepare phase (just
/// before the loop blocks in epoll_wait) one redisAsyncHandleWrite() writes
/// everything buffered during the turn. UV_WRITABLE is armed only while a
/// connect is in progress (completion is signalled by writability) and when
/// a write left bytes behind (socket buffer full). Interest changes that do
/// not change the set are skipped: uv_poll_start() costs an epoll_ctl DEL and
/// ADD each time, and hiredis re-adds read interest after every read.
struct Connection::PollBox {
  uv_poll_t poll{};
  uv_prepare_t flush{};
  redisAsyncContext* ac = nullptr;  // null once hiredis has cleaned up
  int events = 0;                   // the poll handle's interest set
  bool dirty = false;               // buffered output waits for the flush
  int open = 0;                     // handles not closed yet
  Connection* owner = nullptr;
};

namespace {
/// True while a flush callback runs: a write requested then (the flushed
/// write left bytes behind, or a callback it triggered wrote on another
/// connection) polls for writability, as a prepare handle started during the
/// prepare phase would only run after the loop has blocked.
thread_local bool tl_flushing = false;
}  // namespace

Connection::Connection(Role role, const Options& options, ConnectionOwner& owner)
    : role_(role),
      opts_(options),
      owner_(owner),
      address_(options.address()),
      backoff_(options.reconnect_min) {}

void Connection::init(uv_loop_t* loop) {
  loop_ = loop;
  uv_timer_init(loop_, &timer_);
  timer_.data = this;
  ++handles_;
  state_ = State::kIdle;
  backoff_ = opts_.reconnect_min;
  carry_.clear();
  soon_.clear();
}

// ------------------------------------------------------------- the adapter

// hiredis keeps its read buffer at the size of the largest message until the
// next bytes arrive, and only then frees it (redisReaderFeed). Applying the
// same rule as soon as a read leaves the buffer empty returns a large
// message's buffer before its handler runs instead of after the next message.
void Connection::release_read_buffer(redisReader* r) {
  if (r == nullptr || r->len != 0 || r->maxbuf == 0 || sdsavail(r->buf) <= r->maxbuf) return;
  sds fresh = gilmour_sdsempty();
  if (fresh == nullptr) return;
  gilmour_sdsfree(r->buf);
  r->buf = fresh;
  r->pos = 0;
}

void Connection::on_poll_cb(uv_poll_t* h, int status, int events) {
  auto* box = static_cast<PollBox*>(h->data);
  // libuv reports POLLERR as status < 0 and stops the handle. hiredis 0.14's
  // adapter returned here, so a refused connect or a reset connection went
  // unnoticed forever. Let hiredis look instead: connect() reads SO_ERROR,
  // read() gets the error, and the context is torn down properly.
  int ev = status < 0 ? box->events : events;
  guarded([&] {
    if (box->ac && (ev & UV_READABLE)) {
      box->owner->note_read();
      redisAsyncHandleRead(box->ac);
      if (box->ac) release_read_buffer(box->ac->c.reader);
    }
    if (box->ac && (ev & UV_WRITABLE)) {
      redisAsyncHandleWrite(box->ac);
      after_write(box);
    }
    if (status < 0 && box->ac) set_events(box, box->events);  // restarts the stopped handle
  });
}

void Connection::on_flush_cb(uv_prepare_t* h) {
  auto* box = static_cast<PollBox*>(h->data);
  uv_prepare_stop(h);
  if (!box->dirty || !box->ac) return;
  box->dirty = false;
  tl_flushing = true;
  // On a write error hiredis tears the context down from here (ev_cleanup
  // closes the handles; the box itself lives until their close callbacks).
  guarded([&] {
    redisAsyncHandleWrite(box->ac);
    after_write(box);
  });
  tl_flushing = false;
}

void Connection::after_write(PollBox* box) {
  // A write error tears the context down (box->ac is then null).
  if (box->ac && box->ac == box->owner->ac_) box->owner->note_written();
}

void Connection::set_events(PollBox* box, int events) {
  // Unchanged and in effect: nothing to do (libuv would DEL and ADD the fd).
  const bool active = uv_is_active(reinterpret_cast<uv_handle_t*>(&box->poll)) != 0;
  if (events == box->events && (events == 0 || active)) return;
  box->events = events;
  if (events) {
    uv_poll_start(&box->poll, events, on_poll_cb);
  } else if (active) {
    uv_poll_stop(&box->poll);
  }
}

void Connection::ev_add_read(void* p) {
  auto* box = static_cast<PollBox*>(p);
  set_events(box, box->events | UV_READABLE);
}

void Connection::ev_del_read(void* p) {
  auto* box = static_cast<PollBox*>(p);
  set_events(box, box->events & ~UV_READABLE);
}

void Connection::ev_add_write(void* p) {
  auto* box = static_cast<PollBox*>(p);
  if (!box->ac || (box->events & UV_WRITABLE)) return;  // the poll handle writes
  if (tl_flushing || !(box->ac->c.flags & REDIS_CONNECTED)) {
    // Bytes left behind, a write during the flush phase, or a connect in
    // progress (hiredis learns of its completion from writability).
    set_events(box, box->events | UV_WRITABLE);
    return;
  }
  if (!box->dirty) {
    box->dirty = true;
    uv_prepare_start(&box->flush, on_flush_cb);
  }
}

void Connection::ev_del_write(void* p) {
  auto* box = static_cast<PollBox*>(p);
  if (box->dirty) {
    box->dirty = false;
    uv_prepare_stop(&box->flush);
  }
  set_events(box, box->events & ~UV_WRITABLE);
}

void Connection::ev_cleanup(void* p) {
  auto* box = static_cast<PollBox*>(p);
  if (!box->ac) return;
  box->ac = nullptr;
  box->dirty = false;
  auto closed = [](uv_handle_t* h) {
    auto* b = static_cast<PollBox*>(h->data);
    if (--b->open > 0) return;
    Connection* owner = b->owner;
    delete b;
    guarded([&] { owner->handle_closed(); });
  };
  uv_close(reinterpret_cast<uv_handle_t*>(&box->poll), closed);
  uv_close(reinterpret_cast<uv_handle_t*>(&box->flush), closed);
}

bool Connection::attach(redisAsyncContext* ac) {
  auto* box = new PollBox;
  box->owner = this;
  box->ac = ac;
  if (uv_poll_init(loop_, &box->poll, ac->c.fd) != 0) {
    delete box;
    return false;
  }
  uv_prepare_init(loop_, &box->flush);  // cannot fail
  box->poll.data = box;
  box->flush.data = box;
  box->open = 2;
  ++handles_;  // the box counts as one handle: handle_closed() runs once both are closed
  ac->ev.data = box;
  ac->ev.addRead = ev_add_read;
  ac->ev.delRead = ev_del_read;
  ac->ev.addWrite = ev_add_write;
  ac->ev.delWrite = ev_del_write;
  ac->ev.cleanup = ev_cleanup;
  reset_liveness();
  return true;
}

// ------------------------------------------------------------- lifecycle

void Connection::connect() {
  if (state_ == State::kUninit || state_ == State::kClosing || state_ == State::kClosed) return;
  state_ = State::kConnecting;
  address_ = opts_.address();  // Sentinel mode: the owner may have moved host/port
  peer_closed_ = false;
  // One deadline for resolution, connect and handshake.
  uv_timer_start(&timer_, on_timer_cb, static_cast<std::uint64_t>(opts_.connect_timeout.count()),
                 0);
  if (opts_.unix_socket.empty()) {
    in6_addr probe{};
    const bool numeric = inet_pton(AF_INET, opts_.host.c_str(), &probe) == 1 ||
                         inet_pton(AF_INET6, opts_.host.c_str(), &probe) == 1;
    if (!numeric) {
      start_resolve();
      return;
    }
  }
  open_socket(opts_.host.c_str());
}

void Connection::open_socket(const char* host) {
  redisAsyncContext* ac = opts_.unix_socket.empty()
                              ? redisAsyncConnect(host, opts_.port)
                              : redisAsyncConnectUnix(opts_.unix_socket.c_str());
  if (!ac || ac->err) {
    std::string err = ac ? ac->c.errstr : "cannot allocate a context";
    if (ac) redisAsyncFree(ac);
    fail_soon("connect to " + address_ + " failed: " + err);
    return;
  }
  if (!attach(ac)) {
    redisAsyncFree(ac);
    fail_soon("connect to " + address_ + " failed: cannot watch the socket");
    return;
  }
  ac_ = ac;
  ac->data = this;
  if (opts_.unix_socket.empty()) redisEnableKeepAlive(&ac->c);  // detects dead idle peers
  redisAsyncSetDisconnectCallback(ac, on_disconnect_cb);
  redisAsyncSetConnectCallback(ac, on_connect_cb);  // also starts watching for writability
}

// hiredis's redisAsyncConnect() would call getaddrinfo() on the I/O thread,
// blocking every engine on the loop for as long as DNS takes. The name is
// resolved on libuv's thread pool instead, and hiredis is given the number.
void Connection::start_resolve() {
  auto* req = new uv_getaddrinfo_t;
  req->data = this;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  int rc = uv_getaddrinfo(loop_, req, on_resolved_cb, opts_.host.c_str(), nullptr, &hints);
  if (rc != 0) {
    delete req;
    fail_soon("connect to " + address_ + " failed: cannot resolve " + opts_.host + ": " +
              uv_strerror(rc));
    return;
  }
  resolving_ = req;
}

void Connection::on_resolved_cb(uv_getaddrinfo_t* req, int status, addrinfo* res) {
  auto* self = static_cast<Connection*>(req->data);  // null: abandoned (drop_context)
  delete req;
  if (self) {
    self->resolving_ = nullptr;
    guarded([&] { self->handle_resolved(status, res); });
  }
  if (res) uv_freeaddrinfo(res);
}

void Connection::handle_resolved(int status, addrinfo* res) {
  if (state_ != State::kConnecting) return;
  // The first IPv4 address, else the first IPv6 one: hiredis 0.14's own
  // order (IPv6 only when the name has no IPv4 address).
  const addrinfo* pick = nullptr;
  for (const addrinfo* a = status == 0 ? res : nullptr; a; a = a->ai_next) {
    if (a->ai_family == AF_INET) {
      pick = a;
      break;
    }
    if (a->ai_family == AF_INET6 && !pick) pick = a;
  }
  if (!pick) {
    down("connect to " + address_ + " failed: cannot resolve " + opts_.host + ": " +
         (status != 0 ? uv_strerror(status) : "no IPv4 or IPv6 address"));
    return;
  }
  char ip[INET6_ADDRSTRLEN] = {};
  if (pick->ai_family == AF_INET) {
    uv_ip4_name(reinterpret_cast<const sockaddr_in*>(pick->ai_addr), ip, sizeof ip);
  } else {
    uv_ip6_name(reinterpret_cast<const sockaddr_in6*>(pick->ai_addr), ip, sizeof ip);
  }
  open_socket(ip);
}

void Connection::reconnect_later() {
  if (state_ != State::kIdle) return;
  state_ = State::kBackoff;
  uv_timer_start(&timer_, on_timer_cb, static_cast<std::uint64_t>(backoff_.count()), 0);
  backoff_ = std::min(backoff_ * 2, opts_.reconnect_max);
}

void Connection::abort(const std::string& why) {
  if (state_ == State::kUninit || state_ == State::kClosing || state_ == State::kClosed) return;
  uv_timer_stop(&timer_);
  drop_context();
  fail_all(why);
  soon_.clear();
  state_ = State::kIdle;
}

void Connection::close(bool flush) {
  switch (state_) {
    case State::kUninit:
    case State::kClosed:
    case State::kClosing:
      return;
    case State::kReady:
      if (flush && !ops_.empty()) {
        // Let the replies of what was already sent arrive (a response the
        // engine published just before stopping, the health HDEL...).
        state_ = State::kClosing;
        auto ms = std::min<std::int64_t>(opts_.command_timeout.count(), 1000);
        uv_timer_start(&timer_, on_timer_cb, static_cast<std::uint64_t>(ms), 0);
        return;
      }
      finish_close();
      return;
    default:
      finish_close();
      return;
  }
}

void Connection::finish_close() {
  state_ = State::kClosed;
  uv_timer_stop(&timer_);
  drop_context();
  fail_all("redis " + address_ + ": connection closed");
  soon_.clear();
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_),
           [](uv_handle_t* h) { static_cast<Connection*>(h->data)->handle_closed(); });
}

void Connection::handle_closed() {
  --handles_;
  if (state_ == State::kClosed && handles_ == 0) owner_.on_closed(*this);
}

void Connection::drop_context() {
  if (resolving_) {
    // Abandon it: its callback only frees it (uv_cancel succeeds only if the
    // lookup has not started on the thread pool).
    resolving_->data = nullptr;
    uv_cancel(reinterpret_cast<uv_req_t*>(resolving_));
    resolving_ = nullptr;
  }
  if (!ac_) return;
  redisAsyncContext* ac = ac_;
  ac_ = nullptr;
  ac->data = nullptr;  // its NULL-reply and disconnect callbacks are ignored
  redisAsyncFree(ac);  // deferred by hiredis when inside one of its reply callbacks
}

void Connection::fail_soon(std::string why) {
  // Reported from the timer, never from inside the call that hit it.
  soon_ = std::move(why);
  uv_timer_start(&timer_, on_timer_cb, 0, 0);
}

void Connection::fail_all(const std::string& why, StatusCode code) {
  carry_.clear();
  stamped_ = 0;
  if (ops_.empty()) return;
  auto ops = ops_.take_all();  // callbacks may send new commands: work on a copy
  Status st = Status::error(code, why);
  for (auto& op : ops) fail_op(op, st);
}

void Connection::down(const std::string& why, StatusCode code) {
  bool was_ready = state_ == State::kReady || state_ == State::kClosing;
  if (state_ == State::kClosing) {
    finish_close();
    return;
  }
  uv_timer_stop(&timer_);
  drop_context();
  state_ = State::kIdle;
  fail_all(why, code);
  if (state_ != State::kIdle) return;  // a callback closed or restarted us
  owner_.on_down(*this, why, was_ready);
}

// ------------------------------------------------------------- hiredis callbacks

void Connection::on_connect_cb(const redisAsyncContext* ac, int status) {
  auto* self = static_cast<Connection*>(ac->data);
  if (!self) return;
  guarded([&] { self->handle_connect(status, ac->c.errstr); });
}

void Connection::on_disconnect_cb(const redisAsyncContext* ac, int status) {
  auto* self = static_cast<Connection*>(ac->data);
  if (!self) return;
  self->peer_closed_ = ac->c.err == REDIS_ERR_EOF;
  // REDIS_ERR_OTHER: hiredis dropped the context for a server's error reply
  // (e.g. NOPERM on a SUBSCRIBE); pending operations report that error as a
  // server error, not as a lost connection (a kept subscription is not
  // retried on it, gilmour/backend.hpp).
  const bool refused = ac->c.err == REDIS_ERR_OTHER;
  guarded([&] { self->handle_disconnect(status, ac->c.errstr, refused); });
}

void Connection::on_reply_cb(redisAsyncContext* ac, void* reply, void*) {
  auto* self = static_cast<Connection*>(ac->data);
  // NULL: hiredis is tearing the context down; our FIFO is failed by down().
  if (!self || !reply) return;
  guarded([&] { self->handle_reply(static_cast<redisReply*>(reply)); });
}

void Connection::handle_connect(int status, const char* err) {
  if (status != REDIS_OK) {
    ac_ = nullptr;  // hiredis frees it after this callback
    down("connect to " + address_ + " failed: " + (err && *err ? err : "unknown error"));
    return;
  }
  state_ = State::kHandshake;
  start_handshake();
}

void Connection::handle_disconnect(int status, const char* err, bool refused) {
  ac_ = nullptr;  // hiredis frees it after this callback
  std::string why =
      "lost connection to " + address_ + ": " +
      (status == REDIS_OK ? std::string("closed") : std::string(err && *err ? err : "I/O error"));
  down(why, refused ? StatusCode::kServerError : StatusCode::kNotConnected);
}

void Connection::start_handshake() {
  handshake_left_ = 0;
  auto step = [&](const char* what) {
    Op op;
    op.kind = OpKind::kHandshake;
    op.what = what;
    if (!send_raw(op)) {
      fail_soon("connect to " + address_ + " failed: cannot send " + what);
      return false;
    }
    ++handshake_left_;
    return true;
  };
  if (!opts_.password.empty()) {
    if (opts_.user.empty()) {
      writer_.begin(2).arg("AUTH").arg(opts_.password);
    } else {
      writer_.begin(3).arg("AUTH").arg(opts_.user).arg(opts_.password);
    }
    if (!step("AUTH")) return;
  }
  if (opts_.db != 0) {
    writer_.begin(2).arg("SELECT").arg(static_cast<std::int64_t>(opts_.db));
    if (!step("SELECT")) return;
  }
  if (!opts_.master_name.empty()) {
    // A node named by the sentinels: use it only while it is a master.
    writer_.begin(1).arg("ROLE");
    if (!step("ROLE")) return;
  }
  if (handshake_left_ == 0) {
    // Nothing to set up: still ask once, so that a server requiring a
    // password answers NOAUTH now rather than on the first SUBSCRIBE.
    writer_.begin(1).arg("PING");
    step("PING");
  }
}

void Connection::handle_reply(redisReply* r) {
  if (role_ == Role::kSubscriber && r->type == REDIS_REPLY_ARRAY && r->elements >= 3 &&
      is_string(r->element[0])) {
    std::string_view kind = view(r->element[0]);
    if (kind == "message") {
      owner_.on_message(view(r->element[1]), std::string_view(), view(r->element[2]));
      return;
    }
    if (kind == "pmessage" && r->elements >= 4) {
      owner_.on_message(view(r->element[2]), view(r->element[1]), view(r->element[3]));
      return;
    }
    bool sub = kind == "subscribe" || kind == "psubscribe";
    bool unsub = kind == "unsubscribe" || kind == "punsubscribe";
    if (sub || unsub) {
      confirm(sub, kind[0] == 'p', view(r->element[1]));
      return;
    }
  }
  if (ops_.empty()) return;  // nothing asked for it
  Op op = ops_.pop_front();
  pop_op_accounting();
  guarded([&] { complete(op, r); });
  if (state_ == State::kClosing && ops_.empty()) finish_close();
}

void Connection::confirm(bool subscribe, bool pattern, std::string_view name) {
  if (ops_.empty()) return;
  Op& front = ops_.front();
  OpKind want = subscribe ? OpKind::kSubscribe : OpKind::kUnsubscribe;
  if (front.kind != want || front.pattern != pattern || front.what != name) {
    // Our bookkeeping and the server disagree: start over on a new connection.
    drop_context();
    down("redis " + address_ + ": unexpected subscription reply for " + std::string(name));
    return;
  }
  Op op = ops_.pop_front();
  pop_op_accounting();
  if (auto* cb = std::get_if<Backend::StatusCallback>(&op.cb); cb && *cb) {
    guarded([&] { (*cb)(Status()); });
  }
  if (state_ == State::kClosing && ops_.empty()) finish_close();
}

void Connection::complete(Op& op, redisReply* r) {
  const bool err = r->type == REDIS_REPLY_ERROR;
  auto error = [&] { return Status::error(StatusCode::kServerError, std::string(view(r))); };
  auto unexpected = [&] {
    return Status::error("redis " + address_ + ": unexpected reply type " +
                         std::to_string(r->type));
  };
  switch (op.kind) {
    case OpKind::kHandshake:
      if (err) {
        std::string why =
            op.what + " failed: " + without_secret(std::string(view(r)), opts_.password);
        drop_context();
        down(why);
        return;
      }
      if (op.what == "ROLE") {
        std::string role = r->type == REDIS_REPLY_ARRAY && r->elements > 0
                               ? std::string(view(r->element[0]))
                               : std::string("unknown");
        if (role != "master") {
          drop_context();
          down("redis " + address_ + " is not a master (role: " + role + ")");
          return;
        }
      }
      if (--handshake_left_ == 0) {
        state_ = State::kReady;
        backoff_ = opts_.reconnect_min;
        uv_timer_stop(&timer_);
        last_read_ms_ = uv_now(loop_);  // the idle PING counts from here
        check_soon(static_cast<std::uint64_t>(opts_.command_timeout.count()));
        owner_.on_ready(*this);
      }
      return;
    case OpKind::kCount: {
      auto& cb = std::get<Backend::CountCallback>(op.cb);
      if (!cb) return;
      if (err) {
        cb(error(), 0);
      } else if (r->type == REDIS_REPLY_INTEGER) {
        cb(Status(), r->integer);
      } else {
        cb(unexpected(), 0);
      }
      return;
    }
    case OpKind::kNumsub: {
      auto& cb = std::get<Backend::CountCallback>(op.cb);
      if (!cb) return;
      if (err) {
        cb(error(), 0);
      } else if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
                 r->element[1]->type == REDIS_REPLY_INTEGER) {
        cb(Status(), r->element[1]->integer);
      } else {
        cb(unexpected(), 0);
      }
      return;
    }
    case OpKind::kLock: {
      auto& cb = std::get<Backend::BoolCallback>(op.cb);
      if (!cb) return;
      if (err) {
        cb(error(), false);
      } else if (r->type == REDIS_REPLY_NIL) {
        cb(Status(), false);
      } else if (is_string(r) && view(r) == "OK") {
        cb(Status(), true);
      } else {
        cb(unexpected(), false);
      }
      return;
    }
    case OpKind::kStatus: {
      auto& cb = std::get<Backend::StatusCallback>(op.cb);
      Status st = err ? error() : Status();
      if (!carry_.empty()) {
        st = Status::error(carry_);
        carry_.clear();
      }
      if (cb) cb(st);
      return;
    }
    case OpKind::kHash: {
      auto& cb = std::get<Backend::HashCallback>(op.cb);
      if (!cb) return;
      if (err) {
        cb(error(), {});
      } else if (r->type == REDIS_REPLY_ARRAY) {
        std::vector<std::pair<std::string, std::string>> out;
        out.reserve(r->elements / 2);
        for (std::size_t i = 0; i + 1 < r->elements; i += 2) {
          out.emplace_back(view(r->element[i]), view(r->element[i + 1]));
        }
        cb(Status(), std::move(out));
      } else {
        cb(unexpected(), {});
      }
      return;
    }
    case OpKind::kCarry:
      if (err) carry_ = std::string(view(r));
      return;
    case OpKind::kRaw: {
      auto& cb = std::get<RawCallback>(op.cb);
      if (cb) cb(err ? error() : Status(), err ? nullptr : r);
      return;
    }
    case OpKind::kSubscribe:
    case OpKind::kUnsubscribe:
      // A (P)(UN)SUBSCRIBE answered by something else than a confirmation.
      fail_op(op, err ? error() : unexpected());
      return;
  }
}

// ------------------------------------------------------------- sending

bool Connection::send(Op& op) {
  if (state_ != State::kReady) return false;
  return send_raw(op);
}

bool Connection::send_raw(Op& op) {
  if (!ac_) return false;
  const int rc =
      redisAsyncFormattedCommand(ac_, on_reply_cb, nullptr, writer_.data(), writer_.size());
  const std::size_t size = writer_.size();
  writer_.release_if_over(kWriterKeep);
  if (rc != REDIS_OK) return false;
  queued_bytes_ += size;
  op.written = false;
  op.end_bytes = queued_bytes_;
  ops_.push_back(std::move(op));
  return true;
}

// ------------------------------------------------------------- timer

void Connection::on_timer_cb(uv_timer_t* t) {
  auto* self = static_cast<Connection*>(t->data);
  guarded([&] { self->handle_timer(); });
}

void Connection::handle_timer() {
  if (!soon_.empty()) {
    std::string why = std::move(soon_);
    soon_.clear();
    drop_context();
    down(why);
    return;
  }
  switch (state_) {
    case State::kConnecting:
    case State::kHandshake:
      drop_context();
      down("connect to " + address_ + " timed out after " +
           std::to_string(opts_.connect_timeout.count()) + " ms");
      return;
    case State::kBackoff:
      connect();
      return;
    case State::kReady:
      check_liveness();
      return;
    case State::kClosing:
      finish_close();
      return;
    default:
      return;
  }
}

}  // namespace gilmour::redis::detail
