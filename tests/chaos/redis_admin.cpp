#include "chaos/redis_admin.hpp"

#include <hiredis/hiredis.h>

#include <memory>

namespace gilmour::chaos {

std::optional<std::string> redis_command(int port, const std::vector<std::string>& args,
                                         std::chrono::milliseconds timeout, std::string* error) {
  auto ms = timeout.count();
  timeval tv{static_cast<time_t>(ms / 1000), static_cast<suseconds_t>((ms % 1000) * 1000)};
  std::unique_ptr<redisContext, void (*)(redisContext*)> ctx(
      redisConnectWithTimeout("127.0.0.1", port, tv), redisFree);
  auto fail = [&](const std::string& why) -> std::optional<std::string> {
    if (error) *error = why;
    return std::nullopt;
  };
  if (!ctx || ctx->err) return fail(ctx ? ctx->errstr : "out of memory");
  redisSetTimeout(ctx.get(), tv);
  std::vector<const char*> argv;
  std::vector<std::size_t> lens;
  for (const auto& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  auto* raw = static_cast<redisReply*>(
      redisCommandArgv(ctx.get(), static_cast<int>(argv.size()), argv.data(), lens.data()));
  std::unique_ptr<redisReply, void (*)(void*)> reply(raw, freeReplyObject);
  if (!reply) return fail(ctx->errstr);
  switch (reply->type) {
    case REDIS_REPLY_INTEGER:
      return std::to_string(reply->integer);
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
      return std::string(reply->str, reply->len);
    case REDIS_REPLY_ERROR:
      return fail(std::string(reply->str, reply->len));
    default:
      return std::string();
  }
}

std::string info_field(const std::string& info, const std::string& name) {
  std::string key = "\n" + name + ":";
  auto at = ("\n" + info).find(key);
  if (at == std::string::npos) return "";
  auto begin = at + key.size() - 1;  // in `info`, one character shorter
  auto end = info.find_first_of("\r\n", begin);
  return info.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
}

}  // namespace gilmour::chaos
