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

/// Where the first `password=` query parameter of `rest` starts (at its
/// '?' or '&'), or npos.
std::size_t find_password_param(std::string_view rest) {
  for (auto pos = rest.find("password="); pos != std::string_view::npos;
       pos = rest.find("password=", pos + 1)) {
    if (pos > 0 && (rest[pos - 1] == '?' || rest[pos - 1] == '&')) return pos - 1;
  }
  return std::string_view::npos;
}

/// Where a password value that starts at `value` ends: at the next '&' that
/// starts a known parameter (db=, user=, password=), so that a password
/// holding a raw '&' is hidden whole; else at the end.
std::size_t password_value_end(std::string_view s, std::size_t value) {
  for (auto amp = s.find('&', value); amp != std::string_view::npos; amp = s.find('&', amp + 1)) {
    auto next = s.substr(amp + 1);
    if (starts_with(next, "db=") || starts_with(next, "user=") || starts_with(next, "password=")) {
      return amp;
    }
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

/// Applies `key=value&...` query parameters (db, password, user).
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
    } else if (after_password) {
      bad_url(url, "unknown query parameter after password= (write '&' in a password as %26)");
    } else {
      bad_url(url, "unknown query parameter '" + std::string(key) + "'");
    }
  }
}
}  // namespace

Options Options::from_url(std::string_view url) {
  Options o;
  if (url.empty()) bad_url(url, "empty");
  constexpr std::string_view kRedis = "redis://", kUnix = "unix://";
  if (url.substr(0, kUnix.size()) == kUnix) {
    auto rest = url.substr(kUnix.size());
    auto q = rest.find('?');
    o.unix_socket = std::string(rest.substr(0, q));
    if (o.unix_socket.empty() || o.unix_socket[0] != '/')
      bad_url(url, "socket path must be absolute");
    if (q != std::string_view::npos) apply_query(o, rest.substr(q + 1), url);
    return o;
  }
  std::string_view rest = url;
  if (rest.substr(0, kRedis.size()) == kRedis) {
    rest = rest.substr(kRedis.size());
  } else if (rest.find("://") != std::string_view::npos) {
    bad_url(url, "scheme must be redis:// or unix://");
  }
  auto q = rest.find('?');
  std::string_view query;
  if (q != std::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  auto slash = rest.find('/');
  if (slash != std::string_view::npos) {
    auto db = rest.substr(slash + 1);
    if (!db.empty()) o.db = parse_int(db, url, "db");
    rest = rest.substr(0, slash);
  }
  auto at = rest.rfind('@');
  if (at != std::string_view::npos) {
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
  if (rest.empty()) bad_url(url, "missing host");
  if (rest.front() == '[') {  // [::1]:6379
    auto close = rest.find(']');
    if (close == std::string_view::npos) bad_url(url, "unterminated IPv6 address");
    o.host = std::string(rest.substr(1, close - 1));
    rest = rest.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') bad_url(url, "junk after IPv6 address");
      o.port = parse_int(rest.substr(1), url, "port");
    }
  } else {
    auto colon = rest.rfind(':');
    o.host = std::string(rest.substr(0, colon));
    if (colon != std::string_view::npos) o.port = parse_int(rest.substr(colon + 1), url, "port");
  }
  if (o.host.empty()) bad_url(url, "missing host");
  if (o.port <= 0 || o.port > 65535) bad_url(url, "port out of range");
  if (o.db < 0) bad_url(url, "db must not be negative");
  if (!query.empty()) apply_query(o, query, url);
  return o;
}

std::string Options::address() const {
  if (!unix_socket.empty()) return unix_socket;
  return host + ":" + std::to_string(port);
}

std::string Options::describe() const {
  std::string out;
  if (!unix_socket.empty()) {
    out = "unix://" + unix_socket;
    char sep = '?';
    auto param = [&](const std::string& kv) {
      out += sep;
      out += kv;
      sep = '&';
    };
    if (db != 0) param("db=" + std::to_string(db));
    if (!user.empty()) param("user=" + user);
    if (!password.empty()) param("password=***");
    return out;
  }
  out = "redis://";
  if (!user.empty() || !password.empty()) {
    out += user + ":" + (password.empty() ? "" : "***") + "@";
  }
  out += host.find(':') != std::string::npos ? "[" + host + "]" : host;
  out += ":" + std::to_string(port);
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
  while (!tail.empty()) {             // tail starts with "?password=" or "&password="
    constexpr std::size_t kKey = 10;  // "?password="
    out.append(tail.substr(0, kKey)).append("***");
    auto end = password_value_end(tail, kKey);
    auto after = tail.substr(end);  // "" or "&key=..."
    auto next = find_password_param(after);
    out.append(after.substr(0, next));
    tail = next == std::string_view::npos ? std::string_view() : after.substr(next);
  }
  return out;
}

}  // namespace gilmour::redis
