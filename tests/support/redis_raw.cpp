#include "support/redis_raw.hpp"

#include <sys/socket.h>

namespace gilmour::test {

namespace {

redisContext* connect_raw(const RawTarget& t, std::string* error) {
  timeval tv{5, 0};
  redisContext* c = redisConnectWithTimeout(t.host.c_str(), t.port, tv);
  if (!c || c->err) {
    *error = c ? c->errstr : "cannot allocate";
    if (c) redisFree(c);
    return nullptr;
  }
  if (!t.password.empty()) {
    std::vector<std::string> args = {"AUTH"};
    if (!t.user.empty()) args.push_back(t.user);
    args.push_back(t.password);
    std::vector<const char*> argv;
    std::vector<size_t> len;
    for (auto& a : args) {
      argv.push_back(a.data());
      len.push_back(a.size());
    }
    ReplyPtr r(static_cast<redisReply*>(
        redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), len.data())));
    if (!r || r->type == REDIS_REPLY_ERROR) {
      *error = r ? std::string(r->str, r->len) : "AUTH failed";
      redisFree(c);
      return nullptr;
    }
  }
  return c;
}

}  // namespace

RawRedis::RawRedis(RawTarget target) { ctx_ = connect_raw(target, &error_); }

RawRedis::~RawRedis() {
  if (ctx_) redisFree(ctx_);
}

ReplyPtr RawRedis::command(const std::vector<std::string>& args) {
  if (!ctx_) return nullptr;
  std::vector<const char*> argv;
  std::vector<size_t> len;
  for (auto& a : args) {
    argv.push_back(a.data());
    len.push_back(a.size());
  }
  return ReplyPtr(static_cast<redisReply*>(
      redisCommandArgv(ctx_, static_cast<int>(argv.size()), argv.data(), len.data())));
}

std::int64_t RawRedis::publish(const std::string& channel, const std::string& payload) {
  auto r = command({"PUBLISH", channel, payload});
  return r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
}

std::optional<std::string> RawRedis::get(const std::string& key) {
  auto r = command({"GET", key});
  if (!r || r->type != REDIS_REPLY_STRING) return std::nullopt;
  return std::string(r->str, r->len);
}

std::int64_t RawRedis::ttl(const std::string& key) {
  auto r = command({"TTL", key});
  return r && r->type == REDIS_REPLY_INTEGER ? r->integer : -100;
}

std::int64_t RawRedis::numsub(const std::string& channel) {
  auto r = command({"PUBSUB", "NUMSUB", channel});
  if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) return -1;
  return r->element[1]->integer;
}

std::vector<std::string> RawRedis::list_range(const std::string& key) {
  std::vector<std::string> out;
  auto r = command({"LRANGE", key, "0", "-1"});
  if (!r || r->type != REDIS_REPLY_ARRAY) return out;
  for (std::size_t i = 0; i < r->elements; ++i) {
    out.emplace_back(r->element[i]->str, r->element[i]->len);
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> RawRedis::hash_get_all(const std::string& key) {
  std::vector<std::pair<std::string, std::string>> out;
  auto r = command({"HGETALL", key});
  if (!r || r->type != REDIS_REPLY_ARRAY) return out;
  for (std::size_t i = 0; i + 1 < r->elements; i += 2) {
    out.emplace_back(std::string(r->element[i]->str, r->element[i]->len),
                     std::string(r->element[i + 1]->str, r->element[i + 1]->len));
  }
  return out;
}

void RawRedis::hash_set(const std::string& key, const std::string& field,
                        const std::string& value) {
  command({"HSET", key, field, value});
}

RawSubscriber::RawSubscriber(RawTarget target, const std::string& channel, bool pattern,
                             Callback on_message)
    : cb_(std::move(on_message)) {
  ctx_ = connect_raw(target, &error_);
  if (!ctx_) return;
  const char* argv[2] = {pattern ? "PSUBSCRIBE" : "SUBSCRIBE", channel.c_str()};
  size_t len[2] = {std::char_traits<char>::length(argv[0]), channel.size()};
  ReplyPtr r(static_cast<redisReply*>(redisCommandArgv(ctx_, 2, argv, len)));
  // The confirmation: ["subscribe"|"psubscribe", channel, count].
  if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 3) {
    error_ = "subscription not confirmed";
    return;
  }
  ok_ = true;
  reader_ = std::thread([this] { run(); });
}

RawSubscriber::~RawSubscriber() {
  if (ctx_) {
    // Wakes the reader blocked in redisGetReply: it gets EOF and returns.
    ::shutdown(ctx_->fd, SHUT_RDWR);
  }
  if (reader_.joinable()) reader_.join();
  if (ctx_) redisFree(ctx_);
}

void RawSubscriber::run() {
  for (;;) {
    void* raw = nullptr;
    if (redisGetReply(ctx_, &raw) != REDIS_OK || !raw) return;
    ReplyPtr r(static_cast<redisReply*>(raw));
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 3) continue;
    std::string kind(r->element[0]->str, r->element[0]->len);
    std::string channel, payload;
    if (kind == "message") {
      channel.assign(r->element[1]->str, r->element[1]->len);
      payload.assign(r->element[2]->str, r->element[2]->len);
    } else if (kind == "pmessage" && r->elements == 4) {
      channel.assign(r->element[2]->str, r->element[2]->len);
      payload.assign(r->element[3]->str, r->element[3]->len);
    } else {
      continue;
    }
    if (cb_) cb_(channel, payload);
    add(std::move(channel), std::move(payload));
  }
}

}  // namespace gilmour::test
