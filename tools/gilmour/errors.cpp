// gilmour errors [--queue] [--follow]: error records, decoded, from the
// error channel (a slot on it) or the error queue (LRANGE).
//
// The engine offers no way to read a list (the Backend seam only pushes to
// one), so the queue is read with a small synchronous hiredis client on the
// same URL.
#include <hiredis/hiredis.h>

#include <algorithm>
#include <iostream>
#include <memory>
#include <mutex>

#include "commands.hpp"

namespace gilmour::cli {

namespace {

void print_record(const nlohmann::json& j, bool json) {
  if (json) {
    std::cout << dump(j) << "\n";
    return;
  }
  ErrorRecord r;
  if (!ErrorRecord::from_json(j, r)) {
    std::cout << "(not an error record) " << dump(j) << "\n";
    return;
  }
  std::cout << r.timestamp << " " << r.code << " " << r.topic << " sender=" << r.sender;
  if (r.multi_process) std::cout << " multi_process";
  std::cout << " error=" << dump(r.backtrace);
  // The request's data, when request_data is an envelope.
  auto req = nlohmann::json::parse(r.request_data, nullptr, false);
  if (!req.is_discarded() && req.is_object() && req.contains("data")) {
    std::cout << " request=" << dump(req["data"]);
  } else if (!r.request_data.empty()) {
    std::cout << " request_data=" << dump(r.request_data);
  }
  if (!r.user_data.empty()) std::cout << " user_data=" << dump(r.user_data);
  std::cout << "\n";
}

/// A synchronous Redis connection for LRANGE.
class QueueReader {
 public:
  explicit QueueReader(const Global& g) {
    redis::Options o;
    try {
      o = redis::Options::from_url(g.url);
    } catch (const Error&) {
      throw Failure(kExitUsage, "bad URL " + redis::redact_url(g.url));
    }
    timeval tv{g.connect_timeout_ms / 1000, (g.connect_timeout_ms % 1000) * 1000};
    ctx_.reset(o.unix_socket.empty() ? redisConnectWithTimeout(o.host.c_str(), o.port, tv)
                                     : redisConnectUnixWithTimeout(o.unix_socket.c_str(), tv));
    auto where = "cannot connect to Redis at " + redis::redact_url(g.url) + ": ";
    if (!ctx_ || ctx_->err) {
      throw Failure(kExitUnreachable, where + (ctx_ ? ctx_->errstr : "out of memory"));
    }
    timeval cmd{5, 0};
    redisSetTimeout(ctx_.get(), cmd);
    if (!o.password.empty()) {
      std::vector<std::string> auth = {"AUTH"};
      if (!o.user.empty()) auth.push_back(o.user);
      auth.push_back(o.password);
      expect_ok(command(auth), where + "AUTH failed");
    }
    if (o.db != 0) expect_ok(command({"SELECT", std::to_string(o.db)}), where + "SELECT failed");
  }
  QueueReader(const QueueReader&) = delete;
  QueueReader& operator=(const QueueReader&) = delete;

  /// LRANGE key 0 n-1 (n <= 0: all), newest first.
  std::vector<std::string> range(const std::string& key, long long n) {
    auto* r = command({"LRANGE", key, "0", std::to_string(n > 0 ? n - 1 : -1)});
    std::vector<std::string> out;
    if (!r) throw Failure(kExitUnreachable, std::string("LRANGE: ") + ctx_->errstr);
    if (r->type == REDIS_REPLY_ERROR) {
      std::string e(r->str, r->len);
      freeReplyObject(r);
      throw Failure(kExitFailed, "LRANGE " + key + ": " + e);
    }
    for (std::size_t i = 0; i < r->elements; ++i) {
      auto* e = r->element[i];
      if (e->type == REDIS_REPLY_STRING) out.emplace_back(e->str, e->len);
    }
    freeReplyObject(r);
    return out;
  }

 private:
  redisReply* command(const std::vector<std::string>& args) {
    std::vector<const char*> argv;
    std::vector<std::size_t> lens;
    for (auto& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    return static_cast<redisReply*>(
        redisCommandArgv(ctx_.get(), static_cast<int>(args.size()), argv.data(), lens.data()));
  }
  void expect_ok(redisReply* r, const std::string& what) {
    bool ok = r && r->type != REDIS_REPLY_ERROR;
    std::string detail = !r ? ctx_->errstr : ok ? "" : std::string(r->str, r->len);
    if (r) freeReplyObject(r);
    if (!ok) throw Failure(kExitUnreachable, what + ": " + detail);
  }
  struct Free {
    void operator()(redisContext* c) const noexcept { redisFree(c); }
  };
  std::unique_ptr<redisContext, Free> ctx_;  // freed also when the constructor throws
};

/// How many entries at the head of `now` (newest first) are new since
/// `before` (the previous read, newest first): the position where the
/// previous head reappears followed by what came after it.
std::size_t new_entries(const std::vector<std::string>& before,
                        const std::vector<std::string>& now) {
  if (before.empty()) return now.size();
  for (std::size_t k = 0; k < now.size(); ++k) {
    std::size_t m = std::min<std::size_t>({before.size(), now.size() - k, 8});
    if (std::equal(before.begin(), before.begin() + static_cast<std::ptrdiff_t>(m),
                   now.begin() + static_cast<std::ptrdiff_t>(k))) {
      return k;
    }
  }
  return now.size();
}

int run_queue(const Global& g, const ErrorsArgs& a) {
  QueueReader reader(g);
  auto print = [&](const std::vector<std::string>& newest_first, std::size_t n) {
    for (std::size_t i = n; i-- > 0;) {  // oldest first
      auto j = nlohmann::json::parse(newest_first[i], nullptr, false);
      if (j.is_discarded()) j = newest_first[i];
      print_record(j, a.json);
    }
    std::cout << std::flush;
  };
  auto before = reader.range(a.queue_key, a.count);
  print(before, before.size());
  if (!a.follow) return kExitOk;
  stop::graceful(true);
  std::cerr << "gilmour: following " << a.queue_key << std::endl;
  while (!stop::wait_for(std::chrono::milliseconds(a.interval_ms))) {
    auto now = reader.range(a.queue_key, 0);
    print(now, new_entries(before, now));
    if (!std::cout) break;
    before = std::move(now);
  }
  return kExitOk;
}

int run_channel(const Global& g, const ErrorsArgs& a) {
  auto engine = make_engine(g, engine_options(g));
  std::mutex mu;
  long long printed = 0;
  auto sub = engine->slot(
      a.channel,
      [&](const Request& req) {
        std::lock_guard<std::mutex> lock(mu);
        if (a.count > 0 && printed >= a.count) return;
        print_record(req.data(), a.json);
        std::cout << std::flush;
        if (!std::cout || (a.count > 0 && ++printed >= a.count)) stop::request();
      },
      HandlerOptions{{}, {}, /*ordered=*/true});
  start_engine(*engine, g);
  stop::graceful(true);
  std::cerr << "gilmour: listening on " << a.channel << std::endl;
  stop::wait();
  sub.cancel();
  engine->stop(std::chrono::seconds(2));
  return kExitOk;
}

}  // namespace

int run_errors(const Global& g, const ErrorsArgs& a) {
  if (a.channel.rfind("gilmour.", 0) != 0 && !a.queue) {
    // slot() prefixes other names with gilmour.slot.; the channel is raw.
    throw Failure(kExitUsage, "errors: --channel must start with gilmour.");
  }
  return a.queue ? run_queue(g, a) : run_channel(g, a);
}

}  // namespace gilmour::cli
