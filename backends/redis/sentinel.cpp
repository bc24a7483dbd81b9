// Redis Sentinel discovery. See sentinel.hpp.
#include "redis/sentinel.hpp"

#include <algorithm>
#include <charconv>
#include <utility>
#include <vector>

namespace gilmour::redis::detail {

namespace {

constexpr std::string_view kSwitchChannel = "+switch-master";

/// The options of a connection to a sentinel: its credentials, no
/// database, no master check, a share of connect_timeout.
Options sentinel_options(const Options& o) {
  Options s = o;
  s.sentinels.clear();
  s.master_name.clear();
  s.unix_socket.clear();
  s.db = 0;
  s.user = o.sentinel_user;
  s.password = o.sentinel_password;
  auto n =
      static_cast<std::chrono::milliseconds::rep>(std::max<std::size_t>(o.sentinels.size(), 1));
  s.connect_timeout = std::max(o.connect_timeout / n, std::chrono::milliseconds(100));
  return s;
}

/// The words of `text` separated by single spaces.
std::vector<std::string_view> words(std::string_view text) {
  std::vector<std::string_view> out;
  while (!text.empty()) {
    auto sp = text.find(' ');
    if (sp != 0) out.push_back(text.substr(0, sp));
    if (sp == std::string_view::npos) break;
    text = text.substr(sp + 1);
  }
  return out;
}

/// `text` as a TCP port, or 0.
int port_of(std::string_view text) {
  int v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  return ec == std::errc() && p == text.data() + text.size() && v > 0 && v <= 65535 ? v : 0;
}

}  // namespace

SentinelClient::SentinelClient(const Options& options, SentinelOwner& owner)
    : opts_(options),
      owner_(owner),
      query_opts_(sentinel_options(options)),
      watch_opts_(query_opts_),
      query_(Connection::Role::kCommand, query_opts_, *this),
      watch_(Connection::Role::kSubscriber, watch_opts_, *this),
      backoff_(options.reconnect_min) {}

void SentinelClient::aim(Options& o, std::size_t index) const {
  o.host = opts_.sentinels[index].host;
  o.port = opts_.sentinels[index].port;
}

void SentinelClient::init(uv_loop_t* loop) {
  loop_ = loop;
  uv_timer_init(loop_, &timer_);
  timer_.data = this;
  timer_open_ = true;
  closing_ = false;
  resolving_ = false;
  ask_soon_ = false;
  watched_before_ = false;
  backoff_ = opts_.reconnect_min;
  query_.init(loop_);
  watch_.init(loop_);
  aim(watch_opts_, watching_);
  watch_.connect();
}

// ------------------------------------------------------------- resolving

void SentinelClient::resolve() {
  if (closing_ || !timer_open_ || resolving_) return;
  uv_timer_stop(&timer_);  // a resolve_later() waiting: now instead
  ask_soon_ = false;
  resolving_ = true;
  asked_ = 0;
  errors_.clear();
  ask_next();
}

void SentinelClient::resolve_later() {
  if (closing_ || !timer_open_ || resolving_) return;
  if (uv_is_active(reinterpret_cast<uv_handle_t*>(&timer_))) return;
  uv_timer_start(&timer_, on_timer_cb, static_cast<std::uint64_t>(backoff_.count()), 0);
  backoff_ = std::min(backoff_ * 2, opts_.reconnect_max);
}

void SentinelClient::on_timer_cb(uv_timer_t* t) {
  auto* self = static_cast<SentinelClient*>(t->data);
  try {
    if (self->ask_soon_) {
      self->ask_soon_ = false;
      self->ask_next();
    } else {
      self->resolve();
    }
  } catch (...) {  // never unwind into libuv
  }
}

void SentinelClient::ask_next() {
  if (!resolving_) return;
  const std::size_t n = opts_.sentinels.size();
  if (asked_ >= n) {
    resolving_ = false;
    std::string why = "no sentinel named master '" + opts_.master_name + "'" + errors_;
    errors_.clear();
    owner_.on_no_master(why);
    return;
  }
  if (asked_ > 0) current_ = (current_ + 1) % n;
  ++asked_;
  const auto& s = opts_.sentinels[current_];
  if (query_.ready() && query_opts_.host == s.host && query_opts_.port == s.port) {
    send_query();
    return;
  }
  query_.abort("asking another sentinel");
  aim(query_opts_, current_);
  query_.connect();
}

void SentinelClient::send_query() {
  query_.writer().begin(3).arg("SENTINEL").arg("get-master-addr-by-name").arg(opts_.master_name);
  Op op;
  op.kind = OpKind::kHash;  // [ip, port] reads as one (field, value) pair; nil fails
  op.cb = Backend::HashCallback(
      [this](const Status& st, std::vector<std::pair<std::string, std::string>> addr) {
        if (!resolving_) return;
        const auto& s = opts_.sentinels[current_];
        const std::string where = "sentinel " + s.host + ":" + std::to_string(s.port);
        int port = addr.size() == 1 ? port_of(addr[0].second) : 0;
        if (st && port > 0 && !addr[0].first.empty()) {
          resolving_ = false;
          errors_.clear();
          owner_.on_master(addr[0].first, port, false);
          return;
        }
        if (st.code() == StatusCode::kServerError) {
          sentinel_failed(where + ": " + st.message());
        } else if (st.code() == StatusCode::kNotConnected || st.code() == StatusCode::kTimeout) {
          sentinel_failed(st.message());
        } else {
          sentinel_failed(where + " does not know master '" + opts_.master_name + "'");
        }
      });
  if (!query_.send(op)) sentinel_failed("cannot send to the sentinel");
}

void SentinelClient::sentinel_failed(const std::string& why) {
  if (!resolving_) return;
  errors_ += "; " + why;
  // The next sentinel is asked from the timer, outside the callback that
  // reported the failure.
  ask_soon_ = true;
  uv_timer_start(&timer_, on_timer_cb, 0, 0);
}

// ------------------------------------------------------------- connections

void SentinelClient::on_ready(Connection& c) {
  if (closing_) return;
  if (&c == &query_) {
    if (resolving_) send_query();
    return;
  }
  watch_.writer().begin(2).arg("SUBSCRIBE").arg(kSwitchChannel);
  Op op;
  op.kind = OpKind::kSubscribe;
  op.what = std::string(kSwitchChannel);
  op.cb = Backend::StatusCallback([this](const Status& st) {
    if (!st || closing_) return;
    // A failover may have happened while no sentinel was watched.
    if (watched_before_) resolve();
    watched_before_ = true;
  });
  watch_.send(op);  // not sent: the connection is going down, on_down follows
}

void SentinelClient::on_down(Connection& c, const std::string& why, bool) {
  if (closing_) return;
  if (&c == &query_) {
    sentinel_failed(why);
    return;
  }
  // Watch the next sentinel (after the connection's own backoff).
  watching_ = (watching_ + 1) % opts_.sentinels.size();
  aim(watch_opts_, watching_);
  watch_.reconnect_later();
}

void SentinelClient::on_message(std::string_view channel, std::string_view,
                                std::string_view payload) {
  // "+switch-master <name> <old-ip> <old-port> <new-ip> <new-port>"
  if (closing_ || channel != kSwitchChannel) return;
  auto w = words(payload);
  if (w.size() != 5 || w[0] != opts_.master_name) return;
  int port = port_of(w[4]);
  if (port > 0) owner_.on_master(std::string(w[3]), port, true);
}

// ------------------------------------------------------------- closing

void SentinelClient::close() {
  if (closing_ || !timer_open_) return;
  closing_ = true;
  resolving_ = false;
  query_.close(false);
  watch_.close(false);
  uv_timer_stop(&timer_);
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), [](uv_handle_t* h) {
    auto* self = static_cast<SentinelClient*>(h->data);
    self->timer_open_ = false;
    self->maybe_closed();
  });
}

void SentinelClient::on_closed(Connection&) { maybe_closed(); }

void SentinelClient::maybe_closed() {
  if (!closing_ || !closed()) return;
  closing_ = false;
  owner_.on_sentinel_closed();
}

}  // namespace gilmour::redis::detail
