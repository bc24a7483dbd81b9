// The Redis backend in Cluster mode. See cluster.hpp, and
// docs/redis-backend.md (Redis Cluster) for the design:
//
// - The slot map comes from CLUSTER SLOTS, asked of a ready node (a master
//   of the map, else a seed). It is read at open(), after a MOVED, after a
//   connection to a master of the map is lost, and every kDegradedRefresh
//   while a slot has no reachable master (a failover in progress).
// - Every master of the map has a command and a subscriber connection
//   (Node). A keyed command goes to its slot's master; a MOVED answer moves
//   the slot and resends the command there, an ASK answer resends it once
//   preceded by ASKING, at most kMaxRedirections times.
// - Classic pub/sub is broadcast over the cluster bus. An exact channel is
//   subscribed on its slot's master and published there, so that PUBLISH
//   counts our subscribers; patterns live on slot 0's master. While that
//   master's subscriber is down, a subscription waits on another master
//   (messages still arrive: broadcast) and moves back once it is up. A
//   PUBLISH answered 0 is counted again over every master (PUBSUB NUMSUB),
//   so that subscribers on other nodes count (Go/Ruby peers: no false 404).
#include <uv.h>

#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

#include "redis/backend_base.hpp"
#include "redis/cluster.hpp"
#include "redis/cluster_slot.hpp"
#include "redis/connection.hpp"
#include "redis/deferral.hpp"

namespace gilmour::redis::detail {

namespace {

/// A command followed by at most this many MOVED/ASK answers fails.
constexpr int kMaxRedirections = 5;
/// How often the map is read again while a slot has no reachable master.
constexpr std::uint64_t kDegradedRefreshMs = 250;
/// The protocol's response channels (PROTOCOL.md): publishes whose
/// receiver count the engine ignores.
constexpr std::string_view kResponsePrefix = "gilmour.response.";
/// Commands waiting for a new node's first connection, at most (per node).
constexpr std::size_t kMaxWaiting = 4096;

std::string_view text(const redisReply* r) noexcept {
  return r && r->str && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS)
             ? std::string_view(r->str, r->len)
             : std::string_view();
}

/// One range of CLUSTER SLOTS: slots first..last served by host:port.
struct SlotRange {
  int first = 0;
  int last = 0;
  std::string host;
  int port = 0;
};

/// Parses a CLUSTER SLOTS reply: an array of [first, last, [host, port,
/// id, ...], replicas...]. An empty host (Redis 7: "unknown endpoint") is
/// the host of the node that answered. False when the reply has another shape.
bool parse_slots(const redisReply* r, const std::string& asked_host, std::vector<SlotRange>& out) {
  if (!r || r->type != REDIS_REPLY_ARRAY) return false;
  for (std::size_t i = 0; i < r->elements; ++i) {
    const redisReply* e = r->element[i];
    if (e->type != REDIS_REPLY_ARRAY || e->elements < 3) return false;
    const redisReply* master = e->element[2];
    if (e->element[0]->type != REDIS_REPLY_INTEGER || e->element[1]->type != REDIS_REPLY_INTEGER ||
        master->type != REDIS_REPLY_ARRAY || master->elements < 2 ||
        master->element[1]->type != REDIS_REPLY_INTEGER) {
      return false;
    }
    SlotRange range;
    range.first = static_cast<int>(e->element[0]->integer);
    range.last = static_cast<int>(e->element[1]->integer);
    range.host = std::string(text(master->element[0]));
    if (range.host.empty() || range.host == "?") range.host = asked_host;
    range.port = static_cast<int>(master->element[1]->integer);
    if (range.first < 0 || range.last >= kClusterSlots || range.first > range.last ||
        range.port <= 0 || range.port > 65535) {
      return false;
    }
    out.push_back(std::move(range));
  }
  return true;
}

/// Parses `MOVED 3999 127.0.0.1:6381` / `ASK ...`; false for other errors.
bool parse_redirect(const std::string& msg, bool& ask, int& slot, std::string& host, int& port) {
  ask = msg.rfind("ASK ", 0) == 0;
  if (!ask && msg.rfind("MOVED ", 0) != 0) return false;
  auto sp1 = msg.find(' ');
  auto sp2 = msg.find(' ', sp1 + 1);
  auto colon = msg.rfind(':');
  if (sp2 == std::string::npos || colon == std::string::npos || colon < sp2) return false;
  try {
    slot = std::stoi(msg.substr(sp1 + 1, sp2 - sp1 - 1));
    port = std::stoi(msg.substr(colon + 1));
  } catch (...) {
    return false;
  }
  host = msg.substr(sp2 + 1, colon - sp2 - 1);
  if (!host.empty() && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  return slot >= 0 && slot < kClusterSlots && port > 0 && port <= 65535;
}

/// The options of one node's connections.
Options node_options(const Options& base, const std::string& host, int port) {
  Options o = base;
  o.cluster_nodes.clear();
  o.sentinels.clear();
  o.master_name.clear();
  o.unix_socket.clear();
  o.db = 0;
  o.host = host;
  o.port = port;
  return o;
}

/// A keyed command: its parts (all but the last answered as kCarry, e.g.
/// LPUSH before LTRIM), the user's callback, and its redirections so far.
struct Cmd {
  std::vector<std::vector<std::string>> parts;
  OpKind kind = OpKind::kStatus;
  OpCallback cb;
  int slot = 0;
  std::uint64_t seq = 0;  // issue order: callbacks run in this order
  int redirects = 0;
  bool asking = false;  // the next send is preceded by ASKING
  std::string last_redirect;
};
using CmdPtr = std::shared_ptr<Cmd>;

/// One node: its connections and what its subscriber connection holds.
struct Node {
  Node(const Options& base, const std::string& h, int p, ConnectionOwner& owner)
      : opts(node_options(base, h, p)),
        addr(opts.address()),
        cmd(Connection::Role::kCommand, opts, owner),
        sub(Connection::Role::kSubscriber, opts, owner) {}
  Options opts;
  std::string addr;
  Connection cmd;
  Connection sub;
  bool in_map = false;                       // a master of the current slot map
  bool cmd_lost = false;                     // cmd failed since it was last ready (or never was)
  std::unordered_set<std::string> channels;  // subscribed (sent) on sub
  std::unordered_set<std::string> patterns;
  std::vector<CmdPtr> waiting;  // for cmd's first connection
};

class ClusterBackend final : public Backend, private BackendBase, private ConnectionOwner {
 public:
  explicit ClusterBackend(Options options) : opts_(std::move(options)), slots_(kClusterSlots) {
    address_ = opts_.address();
    for (const auto& seed : opts_.cluster_nodes) node_for(seed.host, seed.port);
    seeds_ = nodes_.size();
  }
  ~ClusterBackend() override = default;

  bool quiescent() const noexcept {
    if (!idle()) return false;
    return std::all_of(nodes_.begin(), nodes_.end(),
                       [](const auto& n) { return n->cmd.closed() && n->sub.closed(); });
  }

  // ------------------------------------------------------------ Backend

  void open(IoContext& io, BackendListener& listener, StatusCallback done) override {
    if (!begin_open(io, listener, std::move(done))) return;
    uv_timer_init(loop_, &refresh_timer_);
    refresh_timer_.data = this;
    uv_timer_init(loop_, &open_timer_);
    open_timer_.data = this;
    timers_open_ = 2;
    seed_errors_.clear();
    for (auto& n : nodes_) {
      n->cmd_lost = false;
      n->cmd.init(loop_);
      n->sub.init(loop_);
      n->cmd.connect();  // the seeds: the first ready one is asked for the map
    }
    refresh_wanted_ = true;
    uv_timer_start(
        &open_timer_,
        [](uv_timer_t* t) { static_cast<ClusterBackend*>(t->data)->open_timed_out(); },
        static_cast<std::uint64_t>(opts_.connect_timeout.count()), 0);
  }

  void close(StatusCallback done) override {
    if (!begin_close(std::move(done))) return;
    for (auto& n : nodes_) {
      fail_waiting(*n, not_open());
      n->channels.clear();
      n->patterns.clear();
      n->sub.close(false);
      n->cmd.close(true);
    }
    for (uv_timer_t* t : {&refresh_timer_, &open_timer_}) {
      uv_timer_stop(t);
      uv_close(reinterpret_cast<uv_handle_t*>(t), [](uv_handle_t* h) {
        auto* self = static_cast<ClusterBackend*>(h->data);
        --self->timers_open_;
        self->maybe_closed();
      });
    }
    maybe_closed();
  }

  void subscribe(const std::string& channel, bool pattern, StatusCallback done) override {
    if (phase_ != Phase::kOpen) {
      defer_.later([done, st = not_open()] { done(st); });
      return;
    }
    (pattern ? patterns_ : channels_).insert(channel);
    Node* n = pubsub_home();
    if (!n) {
      // Confirmed when a master is back to hold it (reconcile()).
      awaiting_.add({channel, pattern}, std::move(done));
      return;
    }
    Node* holder = holder_of(channel, pattern);
    if (holder == n) {  // already there
      defer_.later([done] { done(Status()); });
      return;
    }
    if (holder) send_subscription(*holder, false, channel, pattern, nullptr);
    // The node may fail first: then it waits for the next placement.
    send_subscription(*n, true, channel, pattern,
                      parked_on_loss(channel, pattern, std::move(done)));
  }

  void unsubscribe(const std::string& channel, bool pattern, StatusCallback done) override {
    release_unconfirmed(channel, pattern);
    Node* n = holder_of(channel, pattern);
    if (phase_ != Phase::kOpen || !erase_subscription(channel, pattern) || !n) {
      defer_.later([done] { done(Status()); });
      return;
    }
    send_subscription(*n, false, channel, pattern, std::move(done));
  }

  void publish(const std::string& channel, std::string payload, CountCallback done) override {
    // On the pub/sub home, where every subscription of ours is: its receiver
    // count is every engine's, exact and pattern, as on one server. A
    // response's count is never read, so it is not re-counted either.
    const bool recount = channel.compare(0, kResponsePrefix.size(), kResponsePrefix) != 0;
    Node* n = pubsub_home();
    if (phase_ != Phase::kOpen || !n) return reject(std::move(done));
    n->cmd.writer().begin(3).arg("PUBLISH").arg(channel).arg(payload);
    Op op;
    op.kind = OpKind::kCount;
    op.cb = CountCallback([this, channel, done, recount](const Status& st, std::int64_t count) {
      if (recount && st && count == 0 && phase_ == Phase::kOpen) {
        count_everywhere(channel, done);  // subscribers on other nodes count too
        return;
      }
      done(st, count);
    });
    send_on(*n, op);
  }

  void acquire_lock(const std::string& key, std::chrono::seconds ttl, BoolCallback done) override {
    // The value is never read (as in the single-server backend).
    keyed(key, OpKind::kLock, std::move(done),
          {{"SET", key, "1", "NX", "EX", std::to_string(ttl.count())}});
  }

  void hash_set(const std::string& key, const std::string& field, const std::string& value,
                StatusCallback done) override {
    keyed(key, OpKind::kStatus, std::move(done), {{"HSET", key, field, value}});
  }

  void hash_delete(const std::string& key, const std::string& field, StatusCallback done) override {
    keyed(key, OpKind::kStatus, std::move(done), {{"HDEL", key, field}});
  }

  void hash_get_all(const std::string& key, HashCallback done) override {
    keyed(key, OpKind::kHash, std::move(done), {{"HGETALL", key}});
  }

  void list_push_trim(const std::string& key, std::string value, std::int64_t keep,
                      StatusCallback done) override {
    keyed(key, OpKind::kStatus, std::move(done),
          {{"LPUSH", key, std::move(value)}, {"LTRIM", key, "0", std::to_string(keep - 1)}});
  }

  void subscriber_count(const std::string& channel, CountCallback done) override {
    if (phase_ != Phase::kOpen || !any_ready_master()) return reject(std::move(done));
    count_everywhere(channel, std::move(done));
  }

  std::string describe() const override { return "redis " + address_; }

 private:
  // ------------------------------------------------------------ nodes

  /// The node at host:port, created (and connected when the backend runs)
  /// on first use.
  Node* node_for(const std::string& host, int port) {
    for (auto& n : nodes_) {
      if (n->opts.host == host && n->opts.port == port) return n.get();
    }
    ConnectionOwner& owner = *this;
    nodes_.push_back(std::make_unique<Node>(opts_, host, port, owner));
    Node* n = nodes_.back().get();
    n->cmd_lost = false;
    if (loop_ && (phase_ == Phase::kOpening || phase_ == Phase::kOpen)) {
      n->cmd.init(loop_);
      n->sub.init(loop_);
    }
    return n;
  }

  Node* node_of(const Connection& c) const noexcept {
    for (const auto& n : nodes_) {
      if (&n->cmd == &c || &n->sub == &c) return n.get();
    }
    return nullptr;
  }

  Node* any_ready_master() const noexcept {
    for (const auto& n : nodes_) {
      if (n->in_map && n->cmd.ready()) return n.get();
    }
    return nullptr;
  }

  /// Connects the idle connections of the masters of the map.
  void connect_masters() {
    for (auto& n : nodes_) {
      if (!n->in_map) continue;
      if (n->cmd.idle()) n->cmd.connect();
      if (n->sub.idle()) n->sub.connect();
    }
  }

  /// True when every slot has a master whose connections are both ready.
  bool all_ready() const {
    if (uncovered_ != 0) return false;
    return std::all_of(nodes_.begin(), nodes_.end(), [](const auto& n) {
      return !n->in_map || (n->cmd.ready() && n->sub.ready());
    });
  }

  // ------------------------------------------------------------ connections

  void on_ready(Connection& c) override {
    Node* n = node_of(c);
    if (!n) return;
    if (&c == &n->cmd) {
      n->cmd_lost = false;
      auto waiting = std::move(n->waiting);
      n->waiting.clear();
      for (auto& cmd : waiting) dispatch(cmd, n);
      if (refresh_wanted_ && !refreshing_) refresh();
    }
    if (phase_ == Phase::kOpening) {
      maybe_opened();
      return;
    }
    if (phase_ != Phase::kOpen) return;
    if (&c == &n->sub) reconcile();
    check_reconnected();
  }

  void on_down(Connection& c, const std::string& why, bool) override {
    Node* n = node_of(c);
    if (!n || (phase_ != Phase::kOpening && phase_ != Phase::kOpen)) return;
    if (&c == &n->cmd) {
      n->cmd_lost = true;
      fail_waiting(*n, Status::error(StatusCode::kNotConnected, why));
    } else {
      // The server forgot this connection's subscriptions: place them again.
      n->channels.clear();
      n->patterns.clear();
    }
    last_error_ = why;
    if (n->in_map) {
      c.reconnect_later();
      refresh_soon(0);  // a failover? the map says where the slots went
      if (phase_ == Phase::kOpen) {
        report_down(why);
        reconcile();  // subscriptions of the lost node wait on another one
      }
    } else if (phase_ == Phase::kOpening && !map_loaded_) {
      seed_errors_ += (seed_errors_.empty() ? "" : "; ") + why;
      if (every_seed_failed()) return fail_open("no cluster seed answered: " + seed_errors_);
      c.reconnect_later();  // another seed may answer
    }
  }

  void on_message(std::string_view channel, std::string_view pattern,
                  std::string_view payload) override {
    if (phase_ == Phase::kOpen) listener_->on_message(channel, pattern, payload);
  }

  void on_closed(Connection&) override { maybe_closed(); }

  void report_down(const std::string& why) {
    if (down_reported_) return;
    down_reported_ = true;
    listener_->on_connection_state(ConnectionState::kDisconnected, why);
  }

  /// kReconnected once every slot's master is reachable again and every
  /// subscription is confirmed on its own master.
  void check_reconnected() {
    if (phase_ != Phase::kOpen || !down_reported_ || restoring_ != 0 || !all_ready() ||
        !placed_at_home()) {
      return;
    }
    down_reported_ = false;
    listener_->on_connection_state(ConnectionState::kReconnected, "reconnected to " + address_);
  }

  void maybe_opened() {
    if (phase_ != Phase::kOpening || !map_loaded_ || !all_ready()) return;
    phase_ = Phase::kOpen;
    uv_timer_stop(&open_timer_);
    auto d = std::move(open_done_);
    open_done_ = nullptr;
    listener_->on_connection_state(ConnectionState::kConnected, "connected to " + address_);
    d(Status());
  }

  /// True when the command connection of every seed failed at least once.
  bool every_seed_failed() const {
    return std::all_of(nodes_.begin(), nodes_.begin() + static_cast<std::ptrdiff_t>(seeds_),
                       [](const auto& n) { return n->cmd_lost; });
  }

  void open_timed_out() {
    if (phase_ != Phase::kOpening) return;
    fail_open("cannot reach redis " + address_ + " within " +
              std::to_string(opts_.connect_timeout.count()) + " ms" +
              (map_loaded_ ? " (slot map read, not every master reachable)" : " (no slot map)") +
              (last_error_.empty() ? "" : ": " + last_error_));
  }

  /// The first outcome decides open(); the backend stays down until close().
  void fail_open(const std::string& why) {
    phase_ = Phase::kFailed;
    uv_timer_stop(&open_timer_);
    for (auto& n : nodes_) {
      fail_waiting(*n, Status::error(StatusCode::kNotConnected, why));
      n->cmd.abort(why);
      n->sub.abort(why);
    }
    auto d = std::move(open_done_);
    open_done_ = nullptr;
    d(Status::error(why));
  }

  // ------------------------------------------------------------ slot map

  /// Reads the map after `ms` (0: as soon as a node is ready).
  void refresh_soon(std::uint64_t ms) {
    refresh_wanted_ = true;
    if (refreshing_) return;
    if (ms == 0) {
      refresh();
      return;
    }
    if (!uv_is_active(reinterpret_cast<uv_handle_t*>(&refresh_timer_))) {
      uv_timer_start(
          &refresh_timer_, [](uv_timer_t* t) { static_cast<ClusterBackend*>(t->data)->refresh(); },
          ms, 0);
    }
  }

  /// Sends CLUSTER SLOTS to a ready node (a master of the map first, then
  /// the others in turn); when none is ready, the first on_ready() asks.
  void refresh() {
    if (refreshing_ || (phase_ != Phase::kOpening && phase_ != Phase::kOpen)) return;
    Node* pick = any_ready_master();
    for (std::size_t i = 0; !pick && i < nodes_.size(); ++i) {
      Node* n = nodes_[(next_ask_ + i) % nodes_.size()].get();
      if (n->cmd.ready()) pick = n;
    }
    if (!pick) {
      // Nobody to ask: reconnect the seeds too (their first ready asks).
      for (auto& n : nodes_) {
        if (n->cmd.idle()) n->cmd.reconnect_later();
      }
      return;
    }
    ++next_ask_;
    refresh_wanted_ = false;
    refreshing_ = true;
    uv_timer_stop(&refresh_timer_);
    pick->cmd.writer().begin(2).arg("CLUSTER").arg("SLOTS");
    Op op;
    op.kind = OpKind::kRaw;
    op.cb = RawCallback([this, host = pick->opts.host](const Status& st, const redisReply* r) {
      refreshing_ = false;
      if (phase_ != Phase::kOpening && phase_ != Phase::kOpen) return;
      std::vector<SlotRange> ranges;
      if (!st || !parse_slots(r, host, ranges)) {
        last_error_ = st ? "unexpected CLUSTER SLOTS reply" : "CLUSTER SLOTS: " + st.message();
        refresh_soon(kDegradedRefreshMs);
        return;
      }
      apply_map(ranges);
    });
    if (!pick->cmd.send(op)) {
      refreshing_ = false;
      refresh_soon(kDegradedRefreshMs);
    }
  }

  void apply_map(const std::vector<SlotRange>& ranges) {
    std::fill(slots_.begin(), slots_.end(), nullptr);
    for (auto& n : nodes_) n->in_map = false;
    for (const auto& r : ranges) {
      Node* n = node_for(r.host, r.port);
      n->in_map = true;
      std::fill(slots_.begin() + r.first, slots_.begin() + r.last + 1, n);
    }
    uncovered_ = static_cast<std::size_t>(std::count(slots_.begin(), slots_.end(), nullptr));
    map_loaded_ = true;
    connect_masters();
    if (phase_ == Phase::kOpen) reconcile();
    if (!all_ready()) refresh_soon(kDegradedRefreshMs);  // a failover in progress?
    if (refresh_wanted_ && !uv_is_active(reinterpret_cast<uv_handle_t*>(&refresh_timer_))) {
      refresh_soon(kDegradedRefreshMs);  // asked for again while this one ran
    }
    maybe_opened();
    check_reconnected();
  }

  // ------------------------------------------------------------ keyed commands

  template <typename Callback>
  void keyed(const std::string& key, OpKind kind, Callback done,
             std::vector<std::vector<std::string>> parts) {
    auto cmd = std::make_shared<Cmd>();
    cmd->parts = std::move(parts);
    cmd->kind = kind;
    cmd->cb = std::move(done);
    cmd->slot = slot_of(key);
    cmd->seq = next_issued_++;
    dispatch(cmd, slots_[static_cast<std::size_t>(cmd->slot)]);
  }

  /// Sends `cmd` to `n`: now when ready, after the first connection of a
  /// new node, else fails it.
  void dispatch(const CmdPtr& cmd, Node* n) {
    if (phase_ != Phase::kOpen) return fail_cmd(cmd, not_open());
    if (!n) {
      return fail_cmd(cmd,
                      not_connected("no reachable master for slot " + std::to_string(cmd->slot)));
    }
    if (n->cmd.ready()) return write(cmd, *n);
    if (!n->cmd_lost && n->in_map && n->waiting.size() < kMaxWaiting) {
      n->waiting.push_back(cmd);  // a node just learnt of: it is connecting
      return;
    }
    fail_cmd(cmd, Status::error(StatusCode::kNotConnected,
                                "not connected to redis " + n->addr + " (slot " +
                                    std::to_string(cmd->slot) + ", reconnecting)"));
  }

  void write(const CmdPtr& cmd, Node& n) {
    for (std::size_t i = 0; i < cmd->parts.size(); ++i) {
      if (cmd->asking) {
        n.cmd.writer().begin(1).arg("ASKING");
        Op asking;
        asking.kind = OpKind::kRaw;  // no callback; leaves the LPUSH error carry alone
        n.cmd.send(asking);
      }
      const auto& part = cmd->parts[i];
      n.cmd.writer().begin(part.size());
      for (const auto& a : part) n.cmd.writer().arg(a);
      Op op;
      const bool last = i + 1 == cmd->parts.size();
      op.kind = last ? cmd->kind : OpKind::kCarry;
      if (last) op.cb = wrap(cmd);
      if (!n.cmd.send(op)) {  // the last part (with the callback) was not sent
        fail_cmd(cmd, not_connected(""));
        return;
      }
    }
  }

  // Declared before wrap(), its one caller: clang 14 emits no instantiation
  // of a member template that a generic lambda names before its declaration.
  template <typename... A>
  std::function<void(const Status&, A...)> wrap_fn(
      const CmdPtr& cmd, const std::function<void(const Status&, A...)>*) {
    return [this, cmd](const Status& st, A... a) {
      if (!st && redirected(cmd, st)) return;
      finish(*cmd, [cmd, st, a...]() mutable {
        auto& user = std::get<std::function<void(const Status&, A...)>>(cmd->cb);
        if (user) user(st, std::move(a)...);
      });
    };
  }

  /// The user's callback of `cmd` behind a check for MOVED/ASK.
  OpCallback wrap(const CmdPtr& cmd) {
    return std::visit(
        [this, &cmd](const auto& user) -> OpCallback {
          using F = std::decay_t<decltype(user)>;
          if constexpr (std::is_same_v<F, std::monostate>) {
            return std::monostate();
          } else {
            return wrap_fn(cmd, static_cast<const F*>(nullptr));
          }
        },
        cmd->cb);
  }

  /// Follows a MOVED or ASK answer; true when it did (or gave up and
  /// failed the command).
  bool redirected(const CmdPtr& cmd, const Status& st) {
    bool ask = false;
    int slot = 0;
    int port = 0;
    std::string host;
    if (!parse_redirect(st.message(), ask, slot, host, port)) return false;
    if (phase_ != Phase::kOpen) return false;
    if (++cmd->redirects > kMaxRedirections) {
      fail_cmd(cmd, Status::error(StatusCode::kServerError,
                                  "redis cluster: gave up on slot " + std::to_string(cmd->slot) +
                                      " after " + std::to_string(kMaxRedirections) +
                                      " redirections (last: " + st.message() + ")"));
      return true;
    }
    Node* target = node_for(host, port);
    cmd->asking = ask;
    if (!ask) {
      // The slot has moved for good: note it now, read the whole map soon.
      target->in_map = true;
      if (!slots_[static_cast<std::size_t>(slot)] && uncovered_ > 0) --uncovered_;
      slots_[static_cast<std::size_t>(slot)] = target;
      connect_masters();
      refresh_soon(0);
    } else if (target->cmd.idle()) {
      target->cmd.connect();  // an importing node outside the map
    }
    if (!target->cmd.ready() && !target->in_map && !target->cmd_lost) {
      target->waiting.push_back(cmd);  // ASK to a node being connected
      return true;
    }
    dispatch(cmd, target);
    return true;
  }

  void fail_waiting(Node& n, const Status& st) {
    auto waiting = std::move(n.waiting);
    n.waiting.clear();
    for (auto& cmd : waiting) fail_cmd(cmd, st);
  }

  /// Fails `cmd` with `st` (from the loop, never inside the current call).
  void fail_cmd(const CmdPtr& cmd, const Status& st) {
    defer_.later([this, cmd, st] {
      finish(*cmd, [cmd, st] {
        Op op;
        op.cb = cmd->cb;
        fail_op(op, st);
      });
    });
  }

  /// Runs the user's callback of `cmd` (`call`) once every command issued
  /// before it has run its own: keyed commands go to different masters and
  /// their replies come back in any order, but the engine expects them in
  /// issue order, as on one connection (the exclusion locks of an ordered
  /// handler, the byte bound of a queue). A slow master so delays the
  /// callbacks of later commands, by at most command_timeout.
  void finish(const Cmd& cmd, std::function<void()> call) {
    finished_.emplace(cmd.seq, std::move(call));
    if (draining_) return;
    draining_ = true;
    while (!finished_.empty() && finished_.begin()->first == next_finished_) {
      auto fn = std::move(finished_.begin()->second);
      finished_.erase(finished_.begin());
      ++next_finished_;
      try {
        fn();
      } catch (...) {  // callbacks must not throw
      }
    }
    draining_ = false;
  }

  void send_on(Node& n, Op& op) {
    if (!n.cmd.send(op)) defer_.later([op, st = not_connected("")]() mutable { fail_op(op, st); });
  }

  /// The sum of PUBSUB NUMSUB `channel` over every ready master.
  void count_everywhere(const std::string& channel, CountCallback done) {
    struct Sum {
      int pending = 0;
      std::int64_t total = 0;
      CountCallback done;
    };
    auto sum = std::make_shared<Sum>();
    sum->done = std::move(done);
    sum->pending = 1;  // released below, after every send
    auto settle = [sum] {
      if (--sum->pending == 0) sum->done(Status(), sum->total);
    };
    for (auto& n : nodes_) {
      if (!n->in_map || !n->cmd.ready()) continue;
      n->cmd.writer().begin(3).arg("PUBSUB").arg("NUMSUB").arg(channel);
      Op op;
      op.kind = OpKind::kNumsub;
      op.cb = CountCallback([sum, settle](const Status& st, std::int64_t count) {
        if (st) sum->total += count;
        settle();
      });
      if (n->cmd.send(op)) ++sum->pending;
    }
    defer_.later(settle);
  }

  // ------------------------------------------------------------ subscriptions

  /// Where `name` should be subscribed now: its master (slot 0's for a
  /// pattern) when that master's subscriber is ready, else the first ready
  /// master's; null when none is.
  /// Where every subscription and publish goes: slot 0's master or, while it
  /// is down, the first live master. PUBLISH counts only the receivers on the
  /// node it is sent to, so keeping all of ours on one node makes the count
  /// exact for exact and pattern subscriptions alike (confirm_subscribers);
  /// a publish is broadcast to every node anyway, so no throughput is lost.
  Node* pubsub_home() const {
    auto live = [](const Node* n) { return n && n->in_map && n->sub.ready() && n->cmd.ready(); };
    if (live(slots_[0])) return slots_[0];
    for (const auto& n : nodes_) {
      if (live(n.get())) return n.get();
    }
    return nullptr;
  }

  /// The node whose subscriber holds `name`, or null.
  Node* holder_of(const std::string& name, bool pattern) const {
    for (const auto& n : nodes_) {
      if ((pattern ? n->patterns : n->channels).count(name) != 0) return n.get();
    }
    return nullptr;
  }

  /// True when every subscription is on slot 0's master, the pub/sub home.
  bool placed_at_home() const {
    const Node* h = slots_[0];
    if (h == nullptr) return false;
    auto held = [](const auto& names, const auto& where) {
      return std::all_of(names.begin(), names.end(),
                         [&](const std::string& n) { return where.count(n) != 0; });
    };
    return held(channels_, h->channels) && held(patterns_, h->patterns);
  }

  /// Moves every subscription to pubsub_home(): first off the node
  /// that holds it (so that no message is delivered twice), then onto the
  /// target; each re-subscription counts in restoring_ until confirmed.
  void reconcile() {
    if (phase_ != Phase::kOpen) return;
    for (bool pattern : {false, true}) {
      for (const auto& name : pattern ? patterns_ : channels_) {
        Node* target = pubsub_home();
        Node* holder = holder_of(name, pattern);
        if (!target || target == holder) continue;
        if (holder) send_subscription(*holder, false, name, pattern, nullptr);
        ++restoring_;
        send_subscription(*target, true, name, pattern,
                          StatusCallback([this, key = SubKey(name, pattern)](const Status& st) {
                            // A subscribe() made while no master could hold
                            // it is confirmed now (or refused); one cut by a
                            // new failure waits for the next placement.
                            if (st.code() != StatusCode::kNotConnected) {
                              awaiting_.release(defer_, key, st);
                            }
                            if (restoring_ > 0) --restoring_;
                            check_reconnected();
                          }));
      }
    }
  }

  /// (P)SUBSCRIBE or (P)UNSUBSCRIBE `name` on `n`'s subscriber, recording
  /// where it is.
  void send_subscription(Node& n, bool subscribe, const std::string& name, bool pattern,
                         StatusCallback done) {
    const char* verb = subscribe ? (pattern ? "PSUBSCRIBE" : "SUBSCRIBE")
                                 : (pattern ? "PUNSUBSCRIBE" : "UNSUBSCRIBE");
    auto& held = pattern ? n.patterns : n.channels;
    if (subscribe) {
      held.insert(name);
    } else {
      held.erase(name);
    }
    n.sub.writer().begin(2).arg(verb).arg(name);
    Op op;
    op.kind = subscribe ? OpKind::kSubscribe : OpKind::kUnsubscribe;
    op.pattern = pattern;
    op.what = name;
    op.cb = std::move(done);
    if (!n.sub.send(op)) {
      if (subscribe) held.erase(name);
      defer_.later([op, st = not_connected("")]() mutable { fail_op(op, st); });
    }
  }

  // ------------------------------------------------------------ close

  void maybe_closed() {
    if (phase_ != Phase::kClosing || timers_open_ != 0 || defer_.closing()) return;
    for (auto& n : nodes_) {
      if (!n->cmd.closed() || !n->sub.closed()) return;
    }
    close_deferral([this] {
      for (auto& n : nodes_) n->in_map = false;
      std::fill(slots_.begin(), slots_.end(), nullptr);
      uncovered_ = kClusterSlots;
      map_loaded_ = false;
      restoring_ = 0;
      down_reported_ = false;
    });
  }

  Options opts_;
  std::vector<std::unique_ptr<Node>> nodes_;  // seeds first; never shrinks
  std::vector<Node*> slots_;                  // slot -> master (null: unknown)
  bool map_loaded_ = false;
  std::size_t uncovered_ = kClusterSlots;  // slots without a master in slots_
  bool refresh_wanted_ = false;
  bool refreshing_ = false;
  std::size_t next_ask_ = 0;
  std::string last_error_;
  std::string seed_errors_;  // why each seed failed before a map was read
  std::size_t seeds_ = 0;    // nodes_[0, seeds_) are the seeds
  uv_timer_t refresh_timer_{};
  uv_timer_t open_timer_{};
  int timers_open_ = 0;
  bool down_reported_ = false;
  std::size_t restoring_ = 0;                                // re-subscriptions not yet confirmed
  std::uint64_t next_issued_ = 0;                            // the next keyed command's seq
  std::uint64_t next_finished_ = 0;                          // the seq whose callback runs next
  std::map<std::uint64_t, std::function<void()>> finished_;  // callbacks waiting their turn
  bool draining_ = false;
};

}  // namespace

std::shared_ptr<Backend> make_cluster_backend(Options options) {
  return std::shared_ptr<Backend>(new ClusterBackend(std::move(options)), [](ClusterBackend* b) {
    if (b->quiescent()) delete b;
  });
}

}  // namespace gilmour::redis::detail
