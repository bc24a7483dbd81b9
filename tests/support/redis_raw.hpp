// Raw Redis access for tests, with synchronous hiredis: a command client and
// a subscriber that reads on its own thread. They speak to the server the
// way a foreign (Go, Ruby) Gilmour peer would, independently of the backend
// under test.
//
// Thread safety: RawRedis is not synchronised (one thread at a time);
// RawSubscriber's callback runs on its reader thread.
#pragma once

#include <hiredis/hiredis.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "support/backends.hpp"

namespace gilmour::test {

struct ReplyDeleter {
  void operator()(redisReply* r) const noexcept {
    if (r) freeReplyObject(r);
  }
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyDeleter>;

/// Where and as whom to connect.
struct RawTarget {
  std::string host = "127.0.0.1";
  int port = 0;
  std::string user;
  std::string password;
};

/// A synchronous command connection.
class RawRedis {
 public:
  explicit RawRedis(RawTarget target);
  ~RawRedis();
  RawRedis(const RawRedis&) = delete;
  RawRedis& operator=(const RawRedis&) = delete;

  bool ok() const noexcept { return ctx_ && !ctx_->err; }
  const std::string& error() const noexcept { return error_; }

  /// Runs a command given as separate arguments (binary safe). Null on I/O error.
  ReplyPtr command(const std::vector<std::string>& args);

  std::int64_t publish(const std::string& channel, const std::string& payload);
  std::optional<std::string> get(const std::string& key);
  std::int64_t ttl(const std::string& key);
  std::int64_t numsub(const std::string& channel);
  std::vector<std::string> list_range(const std::string& key);
  std::vector<std::pair<std::string, std::string>> hash_get_all(const std::string& key);
  void hash_set(const std::string& key, const std::string& field, const std::string& value);

 private:
  redisContext* ctx_ = nullptr;
  std::string error_;
};

/// A raw subscriber: SUBSCRIBEs (or PSUBSCRIBEs) one channel, confirmed
/// before the constructor returns, then reads messages on its own thread.
/// Each message is captured (Capture::wait_for) and passed to `on_message`
/// if given (on the reader thread). The destructor shuts the socket down and
/// joins the reader.
class RawSubscriber final : public Capture {
 public:
  using Callback = std::function<void(const std::string& channel, const std::string& payload)>;
  RawSubscriber(RawTarget target, const std::string& channel, bool pattern,
                Callback on_message = nullptr);
  ~RawSubscriber() override;

  bool ok() const noexcept { return ok_; }
  const std::string& error() const noexcept { return error_; }

 private:
  void run();
  redisContext* ctx_ = nullptr;
  Callback cb_;
  bool ok_ = false;
  std::string error_;
  std::thread reader_;
};

}  // namespace gilmour::test
