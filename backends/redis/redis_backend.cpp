// The Redis backend: two hiredis async connections on the engine's libuv
// loop (one subscriber, one pipelined command connection), the subscription
// set restored on reconnect, and the state transitions reported to the
// engine. In Sentinel mode a SentinelClient (sentinel.hpp) tells it where
// the master is, and a lost data node is looked up again instead of being
// retried. See gilmour/backends/redis.hpp and docs/redis-backend.md.
#include <uv.h>

#include <functional>
#include <map>
#include <memory>
#include <unordered_set>
#include <utility>
#include <vector>

#include "gilmour/backends/redis.hpp"
#include "gilmour/error.hpp"
#include "redis/backend_base.hpp"
#include "redis/cluster.hpp"
#include "redis/connection.hpp"
#include "redis/deferral.hpp"
#include "redis/sentinel.hpp"

namespace gilmour::redis {

namespace {

using detail::Connection;
using detail::Op;
using detail::OpKind;

/// Added to the reason when Redis closed the subscriber connection while it
/// kept answering on the command connection.
constexpr const char* kSubscriberEvicted =
    "; the server is up and closed only the subscriber connection: most likely it went over "
    "Redis's pub/sub output-buffer limit (client-output-buffer-limit pubsub, default 32mb hard, "
    "8mb for 60 s) because this process read messages too slowly (else a CLIENT KILL); messages "
    "published to it meanwhile are lost";

/// The Backend over hiredis. Every member runs on the engine's I/O thread
/// (Backend contract) except the constructor and destructor.
class RedisBackend final : public Backend,
                           private detail::BackendBase,
                           private detail::ConnectionOwner,
                           private detail::SentinelOwner {
 public:
  explicit RedisBackend(Options options)
      : opts_(std::move(options)),
        node_(data_node_options(opts_)),
        cmd_(Connection::Role::kCommand, node_, *this),
        sub_(Connection::Role::kSubscriber, node_, *this) {
    address_ = opts_.address();
    if (opts_.sentinel_mode()) {
      detail::SentinelOwner& owner = *this;
      sentinel_ = std::make_unique<detail::SentinelClient>(opts_, owner);
    }
  }

  ~RedisBackend() override = default;

  /// True when nothing of this backend is on any loop (never opened, or
  /// closed): then it may be destroyed.
  bool quiescent() const noexcept {
    return idle() && cmd_.closed() && sub_.closed() && (!sentinel_ || sentinel_->closed());
  }

  // ------------------------------------------------------------ Backend

  void open(IoContext& io, BackendListener& listener, StatusCallback done) override {
    if (!begin_open(io, listener, std::move(done))) return;
    cmd_.init(loop_);
    sub_.init(loop_);
    open_started_ = uv_now(loop_);
    if (sentinel_) {
      sentinel_->init(loop_);
      sentinel_->resolve();  // on_master() connects
      return;
    }
    cmd_.connect();
    sub_.connect();
  }

  void close(StatusCallback done) override {
    if (!begin_close(std::move(done))) return;
    restoring_ = 0;
    down_reported_ = false;
    if (sentinel_) sentinel_->close();
    sub_.close(false);
    cmd_.close(true);  // lets replies to what was already sent arrive
    maybe_closed();
  }

  void subscribe(const std::string& channel, bool pattern, StatusCallback done) override {
    if (phase_ != Phase::kOpen) {
      later([done, st = not_open()] { done(st); });
      return;
    }
    (pattern ? patterns_ : channels_).insert(channel);
    if (!sub_.ready()) {
      // Confirmed when the subscriber is back and the server confirmed it.
      awaiting_.add({channel, pattern}, std::move(done));
      return;
    }
    // The connection may drop first: then it waits for the restore.
    send_subscription(OpKind::kSubscribe, channel, pattern,
                      parked_on_loss(channel, pattern, std::move(done)));
  }

  void unsubscribe(const std::string& channel, bool pattern, StatusCallback done) override {
    release_unconfirmed(channel, pattern);
    if (phase_ != Phase::kOpen || !erase_subscription(channel, pattern) || !sub_.ready()) {
      // Not subscribed (or not connected: it will not be restored): done.
      later([done] { done(Status()); });
      return;
    }
    send_subscription(OpKind::kUnsubscribe, channel, pattern, std::move(done));
  }

  void publish(const std::string& channel, std::string payload, CountCallback done) override {
    if (!command_ready()) return reject(std::move(done));
    cmd_.writer().begin(3).arg("PUBLISH").arg(channel).arg(payload);
    std::string().swap(payload);  // the command holds the bytes: one copy fewer at the peak
    send(OpKind::kCount, std::move(done));
  }

  void acquire_lock(const std::string& key, std::chrono::seconds ttl, BoolCallback done) override {
    if (!command_ready()) return reject(std::move(done));
    // The value is never read (Go and Ruby store the key again): "1" keeps
    // each lock at ~150 bytes of Redis memory instead of ~230.
    cmd_.writer().begin(6).arg("SET").arg(key).arg("1").arg("NX").arg("EX").arg(
        static_cast<std::int64_t>(ttl.count()));
    send(OpKind::kLock, std::move(done));
  }

  void hash_set(const std::string& key, const std::string& field, const std::string& value,
                StatusCallback done) override {
    if (!command_ready()) return reject(std::move(done));
    cmd_.writer().begin(4).arg("HSET").arg(key).arg(field).arg(value);
    send(OpKind::kStatus, std::move(done));
  }

  void hash_delete(const std::string& key, const std::string& field, StatusCallback done) override {
    if (!command_ready()) return reject(std::move(done));
    cmd_.writer().begin(3).arg("HDEL").arg(key).arg(field);
    send(OpKind::kStatus, std::move(done));
  }

  void hash_get_all(const std::string& key, HashCallback done) override {
    if (!command_ready()) return reject(std::move(done));
    cmd_.writer().begin(2).arg("HGETALL").arg(key);
    send(OpKind::kHash, std::move(done));
  }

  void list_push_trim(const std::string& key, std::string value, std::int64_t keep,
                      StatusCallback done) override {
    if (!command_ready()) return reject(std::move(done));
    // Pipelined: LTRIM is sent right behind LPUSH; its reply completes both,
    // and an LPUSH error is carried to it.
    cmd_.writer().begin(3).arg("LPUSH").arg(key).arg(value);
    Op push;
    push.kind = OpKind::kCarry;
    if (!cmd_.send(push)) return reject(std::move(done));
    cmd_.writer().begin(4).arg("LTRIM").arg(key).arg(std::int64_t{0}).arg(keep - 1);
    send(OpKind::kStatus, std::move(done));
  }

  void subscriber_count(const std::string& channel, CountCallback done) override {
    if (!command_ready()) return reject(std::move(done));
    cmd_.writer().begin(3).arg("PUBSUB").arg("NUMSUB").arg(channel);
    send(OpKind::kNumsub, std::move(done));
  }

  std::string describe() const override { return "redis " + address_; }

 private:
  using Phase = detail::Phase;

  // ------------------------------------------------------------ connections

  void on_ready(Connection& c) override {
    if (sentinel_ && cmd_.ready() && sub_.ready()) sentinel_->reset_backoff();
    if (phase_ == Phase::kOpening) {
      if (!cmd_.ready() || !sub_.ready()) return;
      phase_ = Phase::kOpen;
      auto d = std::move(open_done_);
      open_done_ = nullptr;
      listener_->on_connection_state(ConnectionState::kConnected, "connected to " + address_);
      d(Status());
      return;
    }
    if (phase_ != Phase::kOpen) return;
    if (&c == &sub_) restore_subscriptions();
    check_reconnected();
  }

  void on_down(Connection& c, const std::string& why, bool) override {
    switch (phase_) {
      case Phase::kOpening:
        // Sentinel mode: a node that is down or not a master (a failover in
        // progress) is looked up again while half of connect_timeout is left.
        if (sentinel_ && uv_now(loop_) - open_started_ <
                             static_cast<std::uint64_t>(opts_.connect_timeout.count() / 2)) {
          sentinel_->resolve_later();
          return;
        }
        fail_open(why);
        return;
      case Phase::kOpen:
        if (&c == &sub_) restoring_ = 0;
        if (sentinel_) {
          sentinel_->resolve_later();  // never retry a node the sentinels may have replaced
        } else {
          c.reconnect_later();
        }
        if (&c == &sub_ && sub_.peer_closed() && cmd_.ready() && !down_reported_) {
          // The server closed only the subscriber? If it still answers on
          // the command connection, say what that most likely means.
          cmd_.writer().begin(1).arg("PING");
          send(OpKind::kStatus, StatusCallback([this, why](const Status& st) {
                 report_down(st ? why + kSubscriberEvicted : why);
               }));
          return;
        }
        report_down(why);
        return;
      default:
        return;
    }
  }

  /// Reports kDisconnected once per loss (then kReconnected if, meanwhile,
  /// everything is back).
  void report_down(const std::string& why) {
    if (phase_ != Phase::kOpen || down_reported_) return;
    down_reported_ = true;
    listener_->on_connection_state(ConnectionState::kDisconnected, why);
    check_reconnected();
  }

  void on_message(std::string_view channel, std::string_view pattern,
                  std::string_view payload) override {
    if (phase_ == Phase::kOpen) listener_->on_message(channel, pattern, payload);
  }

  void on_closed(Connection&) override { maybe_closed(); }

  /// The first outcome decides open(); the backend stays down until
  /// close() (the engine's start() fails and closes it).
  void fail_open(const std::string& why) {
    phase_ = Phase::kFailed;
    cmd_.abort(why);
    sub_.abort(why);
    auto d = std::move(open_done_);
    open_done_ = nullptr;
    d(Status::error(why));
  }

  // ------------------------------------------------------------ sentinel

  void on_master(const std::string& host, int port, bool switched) override {
    if (phase_ != Phase::kOpening && phase_ != Phase::kOpen) return;
    const bool moved = host != node_.host || port != node_.port;
    if (!moved && switched) return;  // already there (or going there)
    node_.host = host;
    node_.port = port;
    address_ = opts_.master_name + " at " + node_.address();
    // A connection still up on the old master is dropped (its pending
    // commands fail): the sentinels have replaced that node.
    for (Connection* c : {&cmd_, &sub_}) {
      if (c->ready() && !moved) continue;
      if (c->ready() && phase_ == Phase::kOpen) {
        if (c == &sub_) restoring_ = 0;
        report_down("redis master '" + opts_.master_name + "' moved to " + node_.address());
      }
      c->abort("redis master '" + opts_.master_name + "' moved to " + node_.address());
      c->connect();
    }
  }

  void on_no_master(const std::string& why) override {
    if (phase_ == Phase::kOpening) {
      fail_open(why);
    } else if (phase_ == Phase::kOpen && (!cmd_.ready() || !sub_.ready())) {
      // Down already reported (on_down). A round asked while both
      // connections are up (after the watch re-subscribed) changes nothing.
      sentinel_->resolve_later();
    }
  }

  void on_sentinel_closed() override { maybe_closed(); }

  /// After the subscriber reconnected: (P)SUBSCRIBE everything in the set.
  void restore_subscriptions() {
    restoring_ = 0;
    auto restore = [this](const std::string& name, bool pattern) {
      sub_.writer().begin(2).arg(pattern ? "PSUBSCRIBE" : "SUBSCRIBE").arg(name);
      Op op;
      op.kind = OpKind::kSubscribe;
      op.pattern = pattern;
      op.what = name;
      op.cb = StatusCallback([this, key = std::make_pair(name, pattern)](const Status& st) {
        // A subscribe made while down is confirmed now (or refused by the
        // server); one cut again by a new loss waits for the next restore.
        if (st.code() != StatusCode::kNotConnected) awaiting_.release(defer_, key, st);
        if (st && restoring_ > 0 && --restoring_ == 0) check_reconnected();
      });
      if (sub_.send(op)) ++restoring_;
    };
    for (auto& ch : channels_) restore(ch, false);
    for (auto& p : patterns_) restore(p, true);
  }

  /// Reports kReconnected once both connections are back and every
  /// subscription is confirmed again.
  void check_reconnected() {
    if (phase_ != Phase::kOpen || !down_reported_ || !cmd_.ready() || !sub_.ready() ||
        restoring_ != 0) {
      return;
    }
    down_reported_ = false;
    listener_->on_connection_state(ConnectionState::kReconnected, "reconnected to " + address_);
  }

  void send_subscription(OpKind kind, const std::string& channel, bool pattern,
                         StatusCallback done) {
    const char* cmd = kind == OpKind::kSubscribe ? (pattern ? "PSUBSCRIBE" : "SUBSCRIBE")
                                                 : (pattern ? "PUNSUBSCRIBE" : "UNSUBSCRIBE");
    sub_.writer().begin(2).arg(cmd).arg(channel);
    Op op;
    op.kind = kind;
    op.pattern = pattern;
    op.what = channel;
    op.cb = std::move(done);
    if (!sub_.send(op)) {
      later([op, st = not_connected("")]() mutable { detail::fail_op(op, st); });
    }
  }

  // ------------------------------------------------------------ commands

  bool command_ready() const noexcept { return phase_ == Phase::kOpen && cmd_.ready(); }

  /// Sends the command just written to the command connection, expecting a
  /// reply of `kind` for `cb`.
  void send(OpKind kind, detail::OpCallback cb) {
    Op op;
    op.kind = kind;
    op.cb = std::move(cb);
    send(op);
  }

  void send(Op& op) {
    if (!cmd_.send(op)) {
      later([op, st = not_connected("")]() mutable { detail::fail_op(op, st); });
    }
  }

  // ------------------------------------------------------------ close

  /// close(): once both connections are closed, run what is deferred, close
  /// the deferral timer, and report done from its close callback.
  void maybe_closed() {
    if (phase_ != Phase::kClosing || !cmd_.closed() || !sub_.closed() || defer_.closing() ||
        (sentinel_ && !sentinel_->closed())) {
      return;
    }
    close_deferral(nullptr);
  }

  /// The options of the data-node connections: `o` itself, or in Sentinel
  /// mode `o` without the sentinels (host and port follow the sentinels'
  /// answers; master_name makes the handshake check ROLE).
  static Options data_node_options(const Options& o) {
    Options n = o;
    n.sentinels.clear();
    return n;
  }

  Options opts_;
  Options node_;  // what cmd_ and sub_ connect to
  Connection cmd_;
  Connection sub_;
  std::unique_ptr<detail::SentinelClient> sentinel_;  // Sentinel mode only
  std::uint64_t open_started_ = 0;                    // uv_now() at open()
  bool down_reported_ = false;
  std::size_t restoring_ = 0;  // re-subscriptions not yet confirmed
};

void validate(const Options& o) {
  auto bad = [](const std::string& why) {
    throw InvalidArgument("gilmour::redis: invalid option: " + why);
  };
  if (o.cluster_mode()) {
    if (o.sentinel_mode() || !o.master_name.empty()) bad("cluster_nodes given with sentinels");
    if (!o.unix_socket.empty()) bad("unix_socket cannot be used with cluster_nodes");
    if (o.db != 0) bad("a cluster has only database 0");
    for (const auto& n : o.cluster_nodes) {
      if (n.host.empty()) bad("a cluster node host is empty");
      if (n.port <= 0 || n.port > 65535)
        bad("cluster node port " + std::to_string(n.port) + " out of range");
    }
  } else if (o.sentinel_mode()) {
    if (o.master_name.empty()) bad("sentinels given without a master_name");
    if (!o.unix_socket.empty()) bad("unix_socket cannot be used with sentinels");
    for (const auto& s : o.sentinels) {
      if (s.host.empty()) bad("a sentinel host is empty");
      if (s.port <= 0 || s.port > 65535)
        bad("sentinel port " + std::to_string(s.port) + " out of range");
    }
    if (!o.sentinel_user.empty() && o.sentinel_password.empty()) {
      bad("sentinel_user given without a sentinel_password");
    }
  } else if (!o.master_name.empty()) {
    bad("master_name given without sentinels");
  } else if (o.unix_socket.empty()) {
    if (o.host.empty()) bad("host is empty");
    if (o.port <= 0 || o.port > 65535) bad("port " + std::to_string(o.port) + " out of range");
  } else if (o.unix_socket.front() != '/') {
    bad("unix_socket must be an absolute path");
  }
  if (o.db < 0) bad("db must not be negative");
  if (!o.user.empty() && o.password.empty()) bad("user given without a password");
  if (o.connect_timeout.count() <= 0) bad("connect_timeout must be positive");
  if (o.command_timeout.count() <= 0) bad("command_timeout must be positive");
  if (o.idle_ping_interval.count() < 0) bad("idle_ping_interval must not be negative");
  if (o.reconnect_min.count() <= 0) bad("reconnect_min must be positive");
  if (o.reconnect_max < o.reconnect_min) bad("reconnect_max must not be below reconnect_min");
}

}  // namespace

std::shared_ptr<Backend> make_backend(Options options) {
  validate(options);
  if (options.cluster_mode()) return detail::make_cluster_backend(std::move(options));
  // A backend destroyed while its handles are still on a running loop (the
  // loop outlived a close() that never completed) is leaked rather than
  // freed under libuv's feet. The engine always closes it first.
  return std::shared_ptr<Backend>(new RedisBackend(std::move(options)), [](RedisBackend* b) {
    if (b->quiescent()) delete b;
  });
}

std::shared_ptr<Backend> make_backend(std::string_view url) {
  return make_backend(Options::from_url(url));
}

}  // namespace gilmour::redis
