// Redis connection options: URL parsing and validation.
#include <charconv>

#include "gilmour/backends/redis.hpp"
#include "gilmour/error.hpp"

namespace gilmour::redis {

namespace {
[[noreturn]] void bad_url(std::string_view url, const std::string& why) {
  throw InvalidArgument("gilmour::redis: bad URL '" + std::string(url) + "': " + why);
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
    } else if (key == "user") {
      o.user = value;
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

}  // namespace gilmour::redis
