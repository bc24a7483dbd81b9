#include "raw_replier.hpp"

#include <memory>
#include <string>
#include <string_view>

namespace gilmour::bench {

namespace {

constexpr std::string_view kBody = R"({"data":{"n":1},"code":200,"sender":")";
constexpr std::string_view kLockSuffix = "_default";

void on_lock(redisAsyncContext* ac, void* reply, void* priv) {
  std::unique_ptr<std::string> key(static_cast<std::string*>(priv));
  auto* r = static_cast<redisReply*>(reply);
  if (!r || r->type != REDIS_REPLY_STATUS) return;  // lost the lock (or failed)
  std::string channel = "gilmour.response." + key->substr(0, key->size() - kLockSuffix.size());
  std::string payload(kBody);
  payload += channel + "\"}";
  const char* argv[] = {"PUBLISH", channel.data(), payload.data()};
  size_t len[] = {7, channel.size(), payload.size()};
  redisAsyncCommandArgv(ac, nullptr, nullptr, 3, argv, len);
}

}  // namespace

void raw_lock_then_respond(redisAsyncContext* cmd, const redisReply* message) {
  std::string_view payload(message->element[2]->str, message->element[2]->len);
  auto at = payload.find(R"("sender":")");
  if (at == std::string_view::npos) return;
  auto sender = payload.substr(at + 10);
  sender = sender.substr(0, sender.find('"'));
  auto* key = new std::string(sender);
  key->append(kLockSuffix);
  const char* argv[] = {"SET", key->data(), key->data(), "NX", "EX", "600"};
  size_t len[] = {3, key->size(), key->size(), 2, 2, 3};
  redisAsyncCommandArgv(cmd, on_lock, key, 6, argv, len);
}

}  // namespace gilmour::bench
