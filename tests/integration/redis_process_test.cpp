// Exclusion across processes: three gilmour_test_peer processes serve one
// topic in one group; every request is handled by exactly one of them.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <condition_variable>
#include <future>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "integration/redis_fixture.hpp"

namespace gilmour::test {
namespace {

/// A child gilmour_test_peer with its stdout read line by line on a thread.
class Peer {
 public:
  Peer(const std::string& url, const std::string& topic, const std::string& group) {
    int fds[2];
    if (::pipe(fds) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      die_with_parent();
      ::dup2(fds[1], 1);
      ::close(fds[0]);
      ::close(fds[1]);
      ::execl(GILMOUR_TEST_PEER, GILMOUR_TEST_PEER, url.c_str(), topic.c_str(), group.c_str(),
              static_cast<char*>(nullptr));
      ::_exit(127);
    }
    ::close(fds[1]);
    fd_ = fds[0];
    reader_ = std::thread([this] { read_all(); });
  }
  ~Peer() {
    stop();
    if (reader_.joinable()) reader_.join();
  }

  /// Waits for the "ready" line.
  bool wait_ready(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return ready_ || eof_; }) && ready_;
  }
  /// SIGTERM, then waits for its exit and for the end of its output.
  int stop() {
    if (pid_ <= 0) return exit_status_;
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (reader_.joinable()) reader_.join();
    return exit_status_;
  }
  std::vector<int> handled() {
    std::lock_guard<std::mutex> lock(mu_);
    return handled_;
  }

 private:
  void read_all() {
    std::string buf;
    char chunk[4096];
    for (;;) {
      ssize_t n = ::read(fd_, chunk, sizeof chunk);
      if (n <= 0) break;
      buf.append(chunk, static_cast<std::size_t>(n));
      std::size_t nl;
      while ((nl = buf.find('\n')) != std::string::npos) {
        std::string line = buf.substr(0, nl);
        buf.erase(0, nl + 1);
        std::lock_guard<std::mutex> lock(mu_);
        if (line == "ready") {
          ready_ = true;
        } else if (line.rfind("handled ", 0) == 0) {
          handled_.push_back(std::stoi(line.substr(8)));
        }
        cv_.notify_all();
      }
    }
    ::close(fd_);
    std::lock_guard<std::mutex> lock(mu_);
    eof_ = true;
    cv_.notify_all();
  }

  pid_t pid_ = -1;
  int fd_ = -1;
  int exit_status_ = -1;
  std::mutex mu_;
  std::condition_variable cv_;
  bool ready_ = false;
  bool eof_ = false;
  std::vector<int> handled_;
  std::thread reader_;
};

using Processes = RedisTest;

TEST_F(Processes, ThreeProcessesOneGroupEachRequestHandledOnce) {
  constexpr int kPeers = 3, kRequests = 3000;
  auto topic = unique_topic("procs");
  std::vector<std::unique_ptr<Peer>> peers;
  for (int i = 0; i < kPeers; ++i) {
    peers.push_back(std::make_unique<Peer>(server_->url(), topic, "workers"));
  }
  for (auto& p : peers) ASSERT_TRUE(p->wait_ready(scaled(10s))) << "a peer did not start";
  RawRedis raw(target());
  ASSERT_EQ(raw.numsub("gilmour.request." + topic), kPeers);

  auto o = test_options();
  o.request_timeout = scaled(30s);
  auto& client = started(o);
  std::vector<std::future<Message>> fs;
  fs.reserve(kRequests);
  for (int i = 0; i < kRequests; ++i) fs.push_back(client.request(topic, i));
  for (int i = 0; i < kRequests; ++i) {
    auto m = fs[i].get();
    ASSERT_EQ(m.code(), 200) << "request " << i << ": " << m.error_text();
    ASSERT_EQ(m.data<int>(), i);
  }
  // Stop the peers: each has written every line before answering, and its
  // output ends when it exits.
  std::map<int, int> count;
  std::ostringstream split;
  for (auto& p : peers) {
    EXPECT_EQ(p->stop(), 0);
    auto h = p->handled();
    split << " " << h.size();
    for (int i : h) ++count[i];
  }
  ASSERT_EQ(count.size(), static_cast<std::size_t>(kRequests));
  int twice = 0;
  for (auto& [i, n] : count) twice += n != 1;
  EXPECT_EQ(twice, 0) << "messages handled more than once";
  EXPECT_EQ(client.stats().stray_responses, 0u);
  std::cout << "[ processes ] handled per peer:" << split.str() << "\n";
}

}  // namespace
}  // namespace gilmour::test
