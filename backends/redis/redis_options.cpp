// Redis connection options: URL parsing and validation.
#include <charconv>

#include "gilmour/backends/redis.hpp"
#include "gilmour/error.hpp"

namespace gilmour::redis {

namespace {
// Error texts quote the URL redacted (redact_url) and never a piece of it
// that could be a password.
[[noreturn]] void bad_url(std::string_view url, const std::string& why) {
  throw InvalidArgument("gilmour::redis: bad URL '" + redact_url(url) + "': " + why);
}

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

/// Where the first `password=` or `sentinel_password=` query parameter of
/// `rest` starts (at its '?' or '&'), or npos.
std::size_t find_password_param(std::string_view rest) {
  constexpr std::string_view kPrefix = "sentinel_";
  for (auto pos = rest.find("password="); pos != std::string_view::npos;
       pos = rest.find("password=", pos + 1)) {
    auto start = pos;
    if (start >= kPrefix.size() && rest.substr(start - kPrefix.size(), kPrefix.size()) == kPrefix) {
      start -= kPrefix.size();
    }
    if (start > 0 && (rest[start - 1] == '?' || rest[start - 1] == '&')) return start - 1;
    if (start != pos && (rest[pos - 1] == '?' || rest[pos - 1] == '&')) return pos - 1;
  }
  return std::string_view::npos;
}

/// True when `s` starts with a known query parameter.
bool known_param(std::string_view s) {
  for (std::string_view key :
       {"db=", "user=", "password=", "sentinel_user=", "sentinel_password="}) {
    if (starts_with(s, key)) return true;
  }
  return false;
}

/// Where a password value that starts at `value` ends: at the next '&' that
/// starts a known parameter, so that a password holding a raw '&' is hidden
/// whole; else at the end.
std::size_t password_value_end(std::string_view s, std::size_t value) {
  for (auto amp = s.find('&', value); amp != std::string_view::npos; amp = s.find('&', amp + 1)) {
    if (known_param(s.substr(amp + 1))) return amp;
  }
  return s.size();
}

int parse_int(std::string_view s, std::string_view url, const char* what) {
  int v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || s.empty()) {
    bad_url(url, std::string(what) + " is not a number");
  }
  return v;
}

std::string percent_decode(std::string_view s, std::string_view url) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%') {
      if (i + 2 >= s.size()) bad_url(url, "bad percent escape");
      int v = 0;
      auto [p, ec] = std::from_chars(s.data() + i + 1, s.data() + i + 3, v, 16);
      if (ec != std::errc() || p != s.data() + i + 3) bad_url(url, "bad percent escape");
      out += static_cast<char>(v);
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

/// Applies `key=value&...` query parameters (db, password, user; in
/// Sentinel mode also sentinel_password, sentinel_user).
void apply_query(Options& o, std::string_view query, std::string_view url) {
  bool after_password = false;  // later keys may be pieces of a password holding '&'
  while (!query.empty()) {
    auto amp = query.find('&');
    auto part = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    auto eq = part.find('=');
    if (eq == std::string_view::npos) bad_url(url, "query parameter without '='");
    auto key = part.substr(0, eq);
    auto value = percent_decode(part.substr(eq + 1), url);
    if (key == "db") {
      o.db = parse_int(value, url, "db");
    } else if (key == "password") {
      o.password = value;
      after_password = true;
    } else if (key == "user") {
      o.user = value;
    } else if (key == "sentinel_password" && o.sentinel_mode()) {
      o.sentinel_password = value;
      after_password = true;
    } else if (key == "sentinel_user" && o.sentinel_mode()) {
      o.sentinel_user = value;
    } else if (after_password) {
      bad_url(url, "unknown query parameter after password= (write '&' in a password as %26)");
    } else {
      bad_url(url, "unknown query parameter '" + std::string(key) + "'");
    }
  }
}

/// Takes `[user:]password@` off the front of `rest` (the userinfo ends at
/// the last '@') into `o`.
void take_userinfo(std::string_view& rest, Options& o, std::string_view url) {
  auto at = rest.rfind('@');
  if (at == std::string_view::npos) return;
  auto cred = rest.substr(0, at);
  rest = rest.substr(at + 1);
  auto colon = cred.find(':');
  if (colon == std::string_view::npos) {
    o.password = percent_decode(cred, url);  // redis://password@host
  } else {
    o.user = percent_decode(cred.substr(0, colon), url);
    o.password = percent_decode(cred.substr(colon + 1), url);
  }
}

/// Parses `host[:port]` or `[v6]:port`; `port` is the default.
Endpoint parse_endpoint(std::string_view hp, int port, std::string_view url) {
  Endpoint e{"", port};
  if (hp.empty()) bad_url(url, "missing host");
  if (hp.front() == '[') {  // [::1]:6379
    auto close = hp.find(']');
    if (close == std::string_view::npos) bad_url(url, "unterminated IPv6 address");
    e.host = std::string(hp.substr(1, close - 1));
    hp = hp.substr(close + 1);
    if (!hp.empty()) {
      if (hp.front() != ':') bad_url(url, "junk after IPv6 address");
      e.port = parse_int(hp.substr(1), url, "port");
    }
  } else {
    auto colon = hp.rfind(':');
    e.host = std::string(hp.substr(0, colon));
    if (colon != std::string_view::npos) e.port = parse_int(hp.substr(colon + 1), url, "port");
  }
  if (e.host.empty()) bad_url(url, "missing host");
  if (e.port <= 0 || e.port > 65535) bad_url(url, "port out of range");
  return e;
}

/// `host[:port][,host[:port]...]` (`port`: the default).
std::vector<Endpoint> parse_endpoints(std::string_view rest, int port, std::string_view url) {
  std::vector<Endpoint> out;
  while (true) {
    auto comma = rest.find(',');
    out.push_back(parse_endpoint(rest.substr(0, comma), port, url));
    if (comma == std::string_view::npos) break;
    rest = rest.substr(comma + 1);
  }
  return out;
}

/// `rest` split at its first '?': the part before, the query after.
std::string_view split_query(std::string_view& rest) {
  auto q = rest.find('?');
  if (q == std::string_view::npos) return {};
  auto query = rest.substr(q + 1);
  rest = rest.substr(0, q);
  return query;
}

/// `redis-sentinel://[[user]:password@]host[:port][,host[:port]...]/NAME[?query]`
/// without its scheme.
Options sentinel_from_url(std::string_view rest, std::string_view url) {
  Options o;
  auto query = split_query(rest);
  auto slash = rest.find('/');
  if (slash == std::string_view::npos || slash + 1 == rest.size()) {
    bad_url(url, "missing /MASTER_NAME after the sentinels");
  }
  o.master_name = percent_decode(rest.substr(slash + 1), url);
  if (o.master_name.find('/') != std::string::npos) bad_url(url, "junk after the master name");
  rest = rest.substr(0, slash);
  take_userinfo(rest, o, url);
  o.sentinels = parse_endpoints(rest, 26379, url);
  if (!query.empty()) apply_query(o, query, url);
  if (o.db < 0) bad_url(url, "db must not be negative");
  return o;
}

/// `redis-cluster://[[user]:password@]host[:port][,host[:port]...][?query]`
/// without its scheme.
Options cluster_from_url(std::string_view rest, std::string_view url) {
  Options o;
  auto query = split_query(rest);
  // The userinfo ends at the last '@' (a password may hold a raw '/').
  auto at = rest.rfind('@');
  auto slash = rest.find('/', at == std::string_view::npos ? 0 : at);
  if (slash != std::string_view::npos) {
    if (slash + 1 != rest.size()) bad_url(url, "a cluster has no database: nothing may follow '/'");
    rest = rest.substr(0, slash);
  }
  take_userinfo(rest, o, url);
  o.cluster_nodes = parse_endpoints(rest, 6379, url);
  if (!query.empty()) apply_query(o, query, url);
  if (o.db != 0) bad_url(url, "a cluster has only database 0");
  return o;
}
/// Appends `kv` to a URL's query: '?' before the first, '&' after.
void append_query(std::string& out, char& sep, const std::string& kv) {
  out += sep;
  out += kv;
  sep = '&';
}

}  // namespace

Options Options::from_url(std::string_view url) {
  Options o;
  if (url.empty()) bad_url(url, "empty");
  constexpr std::string_view kRedis = "redis://", kUnix = "unix://",
                             kSentinel = "redis-sentinel://", kCluster = "redis-cluster://";
  if (starts_with(url, kSentinel)) return sentinel_from_url(url.substr(kSentinel.size()), url);
  if (starts_with(url, kCluster)) return cluster_from_url(url.substr(kCluster.size()), url);
  if (starts_with(url, kUnix)) {
    auto rest = url.substr(kUnix.size());
    auto query = split_query(rest);
    o.unix_socket = std::string(rest);
    if (o.unix_socket.empty() || o.unix_socket[0] != '/')
      bad_url(url, "socket path must be absolute");
    if (!query.empty()) apply_query(o, query, url);
    return o;
  }
  std::string_view rest = url;
  if (starts_with(rest, kRedis)) {
    rest = rest.substr(kRedis.size());
  } else if (rest.find("://") != std::string_view::npos) {
    bad_url(url, "scheme must be redis://, redis-sentinel://, redis-cluster:// or unix://");
  }
  auto query = split_query(rest);
  auto slash = rest.find('/');
  if (slash != std::string_view::npos) {
    auto db = rest.substr(slash + 1);
    if (!db.empty()) o.db = parse_int(db, url, "db");
    rest = rest.substr(0, slash);
  }
  take_userinfo(rest, o, url);
  auto node = parse_endpoint(rest, 6379, url);
  o.host = std::move(node.host);
  o.port = node.port;
  if (o.db < 0) bad_url(url, "db must not be negative");
  if (!query.empty()) apply_query(o, query, url);
  return o;
}

namespace {
/// `host:port`, IPv6 hosts in brackets.
std::string endpoint_text(const std::string& host, int port) {
  return (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" +
         std::to_string(port);
}

/// The endpoints as `h1:p1,h2:p2`.
std::string endpoint_list(const std::vector<Endpoint>& endpoints) {
  std::string out;
  for (const auto& e : endpoints) {
    if (!out.empty()) out += ',';
    out += endpoint_text(e.host, e.port);
  }
  return out;
}
}  // namespace

std::string Options::address() const {
  if (cluster_mode()) return "cluster via " + endpoint_list(cluster_nodes);
  if (sentinel_mode()) return master_name + " via " + endpoint_list(sentinels);
  if (!unix_socket.empty()) return unix_socket;
  return host + ":" + std::to_string(port);
}

std::string Options::describe() const {
  std::string out;
  if (cluster_mode()) {
    out = "redis-cluster://";
    if (!user.empty() || !password.empty()) {
      out += user + ":" + (password.empty() ? "" : "***") + "@";
    }
    return out + endpoint_list(cluster_nodes);
  }
  if (sentinel_mode()) {
    out = "redis-sentinel://";
    if (!user.empty() || !password.empty()) {
      out += user + ":" + (password.empty() ? "" : "***") + "@";
    }
    out += endpoint_list(sentinels) + "/" + master_name;
    char sep = '?';
    auto param = [&](const std::string& kv) { append_query(out, sep, kv); };
    if (db != 0) param("db=" + std::to_string(db));
    if (!sentinel_user.empty()) param("sentinel_user=" + sentinel_user);
    if (!sentinel_password.empty()) param("sentinel_password=***");
    return out;
  }
  if (!unix_socket.empty()) {
    out = "unix://" + unix_socket;
    char sep = '?';
    auto param = [&](const std::string& kv) { append_query(out, sep, kv); };
    if (db != 0) param("db=" + std::to_string(db));
    if (!user.empty()) param("user=" + user);
    if (!password.empty()) param("password=***");
    return out;
  }
  out = "redis://";
  if (!user.empty() || !password.empty()) {
    out += user + ":" + (password.empty() ? "" : "***") + "@";
  }
  out += endpoint_text(host, port);
  if (db != 0) out += "/" + std::to_string(db);
  return out;
}

std::string redact_url(std::string_view url) {
  std::string out;
  std::string_view rest = url;
  bool is_unix = false;
  if (auto scheme = rest.find("://"); scheme != std::string_view::npos) {
    is_unix = rest.substr(0, scheme) == "unix";
    out.append(rest.substr(0, scheme + 3));
    rest = rest.substr(scheme + 3);
  }
  // The query from its first password= parameter on; before it, the
  // userinfo ends at the last '@' (a password may hold raw '/', '?', '@').
  auto pw = find_password_param(rest);
  auto head = rest.substr(0, pw);
  auto tail = pw == std::string_view::npos ? std::string_view() : rest.substr(pw);
  auto at = head.rfind('@');
  // unix:///path has no userinfo, but a malformed unix://user:pw@... may.
  if (at != std::string_view::npos && !(is_unix && starts_with(head, "/"))) {
    auto cred = head.substr(0, at);
    auto colon = cred.find(':');
    if (colon != std::string_view::npos) out.append(cred.substr(0, colon + 1));  // the user
    out.append("***");
    head = head.substr(at);
  }
  out.append(head);
  while (!tail.empty()) {  // tail starts with "?password=", "&sentinel_password=", ...
    auto key = tail.find('=') + 1;
    out.append(tail.substr(0, key)).append("***");
    auto end = password_value_end(tail, key);
    auto after = tail.substr(end);  // "" or "&key=..."
    auto next = find_password_param(after);
    out.append(after.substr(0, next));
    tail = next == std::string_view::npos ? std::string_view() : after.substr(next);
  }
  return out;
}

}  // namespace gilmour::redis
