// Connection tests on private redis-servers: AUTH (password and ACL user),
// SELECT, unreachable servers, a server killed and restarted under traffic,
// CLIENT KILL, a server that stops answering (command timeout), and
// subscriptions made while disconnected.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <future>
#include <map>
#include <mutex>
#include <thread>

#include "integration/redis_fixture.hpp"
#include "integration/request_traffic.hpp"
#include "integration/state_log.hpp"

namespace gilmour::test {
namespace {

using Clock = std::chrono::steady_clock;
using Resilience = RedisTest;

TEST_F(Resilience, UnreachableServerFailsStartWithTheReason) {
  redis::Options o;
  o.port = 1;
  auto err = start_error(redis::make_backend(o));
  EXPECT_NE(err.find("connect to 127.0.0.1:1 failed: Connection refused"), std::string::npos)
      << err;
  o.unix_socket = "/nonexistent/redis.sock";
  err = start_error(redis::make_backend(o));
  EXPECT_NE(err.find("connect to /nonexistent/redis.sock failed"), std::string::npos) << err;
}

TEST_F(Resilience, StartCanBeRetriedOnceRedisIsUp) {
  // Nothing listens on the port yet: start() fails and leaves the engine
  // ready for another start(), with its handlers still registered.
  const int port = free_port();
  redis::Options ro;
  ro.port = port;
  ro.connect_timeout = scaled(1s);
  Gilmour g(redis::make_backend(ro), test_options());
  auto topic = unique_topic("retry");
  auto sub = g.reply_to(topic, [](const Request& r, Response& res) { res.set_data(r.data()); });
  EXPECT_THROW(g.start(), ConnectionError);
  EXPECT_FALSE(g.running());
  RedisServer late;
  ASSERT_TRUE(late.start({}, port)) << late.error();
  g.start();
  EXPECT_TRUE(g.running());
  EXPECT_EQ(g.request_sync(topic, "again").data<std::string>(), "again");
  g.stop();
}

TEST_F(Resilience, BadOptionsThrowInvalidArgument) {
  auto bad = [](auto mutate) {
    redis::Options o;
    mutate(o);
    EXPECT_THROW(redis::make_backend(o), InvalidArgument);
  };
  bad([](redis::Options& o) { o.port = 0; });
  bad([](redis::Options& o) { o.port = 70000; });
  bad([](redis::Options& o) { o.host.clear(); });
  bad([](redis::Options& o) { o.db = -1; });
  bad([](redis::Options& o) { o.connect_timeout = 0ms; });
  bad([](redis::Options& o) { o.command_timeout = -1ms; });
  bad([](redis::Options& o) { o.reconnect_min = 0ms; });
  bad([](redis::Options& o) { o.reconnect_max = 1ms; });
  bad([](redis::Options& o) { o.user = "alice"; });
  bad([](redis::Options& o) { o.unix_socket = "relative.sock"; });
  EXPECT_EQ(redis::make_backend("127.0.0.1:6390")->describe(), "redis 127.0.0.1:6390");
  EXPECT_EQ(redis::make_backend("unix:///tmp/r.sock")->describe(), "redis /tmp/r.sock");
}

TEST_F(Resilience, AuthWithPasswordAndAclUser) {
  auto s =
      own_server({"--requirepass", "s3cret", "--user", "alice", "on", ">pw", "~*", "&*", "+@all"});
  ASSERT_TRUE(s);
  std::string base = "127.0.0.1:" + std::to_string(s->port());
  // Right password: serves.
  auto& server = started_with(redis::Options::from_url("redis://:s3cret@" + base));
  auto topic = unique_topic("auth");
  auto sub =
      server.reply_to(topic, [](const Request& r, Response& res) { res.set_data(r.data()); });
  // ACL user in the URL.
  auto& alice = started_with(redis::Options::from_url("redis://alice:pw@" + base));
  EXPECT_EQ(alice.request_sync(topic, "hi").data<std::string>(), "hi");
  // Wrong password, wrong user password, none at all: start() says why,
  // without the password.
  auto err = start_error(redis::make_backend("redis://:wrongpw@" + base));
  EXPECT_NE(err.find("AUTH failed: WRONGPASS"), std::string::npos) << err;
  EXPECT_EQ(err.find("wrongpw"), std::string::npos) << err;
  err = start_error(redis::make_backend("redis://alice:nopepw@" + base));
  EXPECT_NE(err.find("AUTH failed: WRONGPASS"), std::string::npos) << err;
  EXPECT_EQ(err.find("nopepw"), std::string::npos) << err;
  err = start_error(redis::make_backend("redis://" + base));
  EXPECT_NE(err.find("NOAUTH"), std::string::npos) << err;
}

TEST_F(Resilience, SelectsTheDatabase) {
  auto topic = unique_topic("db");
  auto ro = options_for(*server_);
  ro.db = 3;
  auto& server = started_with(ro);
  auto sub = server.reply_to(topic, [](const Request&, Response& res) { res.set_data(1); });
  auto cap = std::make_unique<RawSubscriber>(target(), "gilmour.request." + topic, false);
  auto m = started().request_sync(topic, 0);
  ASSERT_EQ(m.code(), 200);
  auto s = sender_of(cap->wait_for(1).at(0).second);
  RawRedis raw(target());
  EXPECT_FALSE(raw.get(s + "_default"));  // not in db 0
  raw.command({"SELECT", "3"});
  EXPECT_EQ(raw.get(s + "_default"), "1");
  auto err = start_error(redis::make_backend(
      redis::Options::from_url("redis://127.0.0.1:" + std::to_string(server_->port()) + "/99")));
  EXPECT_NE(err.find("SELECT failed"), std::string::npos) << err;
}

TEST_F(Resilience, RestartUnderTrafficCompletesEveryRequestOnce) {
  auto s = own_server();
  ASSERT_TRUE(s);
  auto server_watch = watched();
  auto client_watch = watched();
  auto& server = started(server_watch.options, s.get());
  auto& client = started(client_watch.options, s.get());
  auto topic = unique_topic("restart");
  auto sub =
      server.reply_to(topic, [](const Request& r, Response& res) { res.set_data(r.data()); });
  RequestTraffic traffic(client, topic, *client_watch.log);
  ASSERT_TRUE(traffic.wait_ok(100, 10s));

  s->kill();
  ASSERT_TRUE(client_watch.log->wait_for(kLost, 1, 5s));
  ASSERT_TRUE(server_watch.log->wait_for(kLost, 1, 5s));
  EXPECT_FALSE(client_watch.log->detail_of_first(kLost).empty()) << "the hook names the reason";
  // Publishes while down fail fast instead of vanishing.
  auto t0 = Clock::now();
  auto down = client.request_sync(topic, -1, {scaled(10s)});
  EXPECT_EQ(down.code(), 503) << down.error_text();
  EXPECT_LT(Clock::now() - t0, scaled(1s));
  std::promise<SignalResult> sig;
  client.signal(topic, 1, [&](const SignalResult& r) { sig.set_value(r); });
  auto sr = sig.get_future().get();
  EXPECT_FALSE(sr.ok());
  EXPECT_TRUE(sr.unavailable()) << sr.status.message();
  EXPECT_EQ(sr.status.code(), StatusCode::kNotConnected) << sr.status.message();

  ASSERT_TRUE(s->restart()) << s->error();
  auto restarted = Clock::now();
  traffic.mark_new();
  // New requests succeed within 2 s (scaled) of the restart.
  auto first_ok = traffic.wait_first_new_ok(restarted + scaled(2s));
  ASSERT_NE(first_ok, Clock::time_point{})
      << "no successful request within " << scaled(2s).count() << " ms of the restart";
  std::cout << "[ restart ] first new success "
            << std::chrono::duration_cast<std::chrono::milliseconds>(first_ok - restarted).count()
            << " ms after the restart\n";
  ASSERT_TRUE(traffic.wait_ok(traffic.ok_total() + 100, 10s));
  traffic.stop();
  // Everything issued completes (1.5 s timeout at most).
  ASSERT_TRUE(traffic.wait_all_completed(5s));
  expect_each_completed_once(traffic, "restart");
  EXPECT_GE(client.stats().reconnects, 1u);
  EXPECT_GE(server.stats().reconnects, 1u);
}

TEST_F(Resilience, ClientKillRestoresSubscriptions) {
  auto s = own_server();
  ASSERT_TRUE(s);
  auto w = watched();
  auto& g = started(w.options, s.get());
  auto topic = unique_topic("kill");
  Counter hits;
  auto slot = g.slot(topic + ".*", [&](const Request&) { hits.add(); });
  auto rep = g.reply_to(topic, [](const Request&, Response& res) { res.set_data("ok"); });
  RawRedis raw(target(*s));
  auto killed = raw.command({"CLIENT", "KILL", "TYPE", "pubsub"});
  ASSERT_TRUE(killed && killed->type == REDIS_REPLY_INTEGER);
  EXPECT_EQ(killed->integer, 1);
  ASSERT_TRUE(w.log->wait_for(kLost, 1, 5s));
  ASSERT_TRUE(w.log->wait_for(kBack, 1, 5s));
  EXPECT_EQ(g.stats().reconnects, 1u);
  // Both the pattern and the channel are back.
  EXPECT_EQ(raw.numsub("gilmour.request." + topic), 1);
  auto other_watch = watched();
  auto& other = started(other_watch.options, s.get());
  other.signal(topic + ".a.b", 1);
  ASSERT_TRUE(hits.wait_for(1));
  EXPECT_EQ(other.request_sync(topic, 0).data<std::string>(), "ok");
  // And the command connections (both engines' are killed).
  raw.command({"CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"});
  ASSERT_TRUE(w.log->wait_for(kBack, 2, 5s));
  ASSERT_TRUE(other_watch.log->wait_for(kBack, 1, 5s));
  EXPECT_EQ(other.request_sync(topic, 0).data<std::string>(), "ok");
}

TEST_F(Resilience, CommandTimeoutResetsAStuckConnection) {
  auto s = own_server();
  ASSERT_TRUE(s);
  auto w = watched();
  auto ro = options_for(*s);
  ro.command_timeout = 300ms;
  ro.connect_timeout = 500ms;
  auto& g = started_with(ro, w.options);
  auto topic = unique_topic("stuck");
  auto sub = g.reply_to(topic, [](const Request&, Response& res) { res.set_data(1); });
  s->pause();  // accepts nothing more, answers nothing
  auto t0 = Clock::now();
  auto m = g.request_sync(topic, 0, {scaled(10s)});
  auto took = Clock::now() - t0;
  EXPECT_EQ(m.code(), 503) << m.error_text();
  EXPECT_NE(m.error_text().find("command timeout"), std::string::npos) << m.error_text();
  EXPECT_GE(took, 250ms);
  EXPECT_LT(took, scaled(3s));
  s->resume();
  ASSERT_TRUE(w.log->wait_for(kBack, 1, 5s));
  EXPECT_EQ(g.request_sync(topic, 0).code(), 200);
}

TEST_F(Resilience, SubscriptionsMadeWhileDownAreRestored) {
  auto s = own_server();
  ASSERT_TRUE(s);
  auto w = watched();
  auto& g = started(w.options, s.get());
  auto topic = unique_topic("later");
  s->kill();
  ASSERT_TRUE(w.log->wait_for(kLost, 1, 5s));
  Counter hits;
  auto t0 = Clock::now();
  auto first = g.slot(topic, [&](const Request&) { hits.add(); });
  EXPECT_LT(Clock::now() - t0, scaled(2s)) << "slot() must not wait for a server that is down";
  ASSERT_TRUE(s->restart());
  ASSERT_TRUE(w.log->wait_for(kBack, 1, 5s));
  // A second slot on the same channel: the engine knows it is confirmed now.
  t0 = Clock::now();
  auto second = g.slot(topic, [&](const Request&) { hits.add(); });
  EXPECT_LT(Clock::now() - t0, scaled(2s));
  auto& other = started(test_options(), s.get());
  std::promise<SignalResult> p;
  other.signal(topic, 1, [&](const SignalResult& r) { p.set_value(r); });
  EXPECT_EQ(p.get_future().get().receivers, 1);
  ASSERT_TRUE(hits.wait_for(2));
}

/// The outcomes of subscribe() on a real backend: what came, and when.
struct SubscribeOutcomes {
  struct Outcome {
    std::string channel;
    Status status;
    Clock::time_point at;
  };
  std::mutex mu;
  std::condition_variable cv;
  std::vector<Outcome> seen;

  std::vector<Outcome> of(const std::string& channel) {
    std::lock_guard<std::mutex> lock(mu);
    std::vector<Outcome> out;
    for (auto& o : seen)
      if (o.channel == channel) out.push_back(o);
    return out;
  }
  bool wait_for(const std::string& channel, std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, scaled(timeout), [&] {
      return std::any_of(seen.begin(), seen.end(),
                         [&](const Outcome& o) { return o.channel == channel; });
    });
  }
};

/// A Backend that forwards to a real one, recording subscribe() outcomes.
class RecordingBackend final : public Backend {
 public:
  RecordingBackend(std::shared_ptr<Backend> inner, std::shared_ptr<SubscribeOutcomes> log)
      : inner_(std::move(inner)), log_(std::move(log)) {}
  void open(IoContext& io, BackendListener& l, StatusCallback done) override {
    inner_->open(io, l, std::move(done));
  }
  void close(StatusCallback done) override { inner_->close(std::move(done)); }
  void subscribe(const std::string& channel, bool pattern, StatusCallback done) override {
    inner_->subscribe(channel, pattern, [log = log_, channel, done](const Status& st) {
      {
        std::lock_guard<std::mutex> lock(log->mu);
        log->seen.push_back({channel, st, Clock::now()});
      }
      log->cv.notify_all();
      done(st);
    });
  }
  void unsubscribe(const std::string& channel, bool pattern, StatusCallback done) override {
    inner_->unsubscribe(channel, pattern, std::move(done));
  }
  void publish(const std::string& channel, std::string payload, CountCallback done) override {
    inner_->publish(channel, std::move(payload), std::move(done));
  }
  void acquire_lock(const std::string& key, std::chrono::seconds ttl, BoolCallback done) override {
    inner_->acquire_lock(key, ttl, std::move(done));
  }
  void hash_set(const std::string& key, const std::string& field, const std::string& value,
                StatusCallback done) override {
    inner_->hash_set(key, field, value, std::move(done));
  }
  void hash_delete(const std::string& key, const std::string& field, StatusCallback done) override {
    inner_->hash_delete(key, field, std::move(done));
  }
  void hash_get_all(const std::string& key, HashCallback done) override {
    inner_->hash_get_all(key, std::move(done));
  }
  void list_push_trim(const std::string& key, std::string value, std::int64_t keep,
                      StatusCallback done) override {
    inner_->list_push_trim(key, std::move(value), keep, std::move(done));
  }
  void subscriber_count(const std::string& channel, CountCallback done) override {
    inner_->subscriber_count(channel, std::move(done));
  }
  std::string describe() const override { return inner_->describe(); }

 private:
  std::shared_ptr<Backend> inner_;
  std::shared_ptr<SubscribeOutcomes> log_;
};

// One owner of the subscription set (gilmour/backend.hpp): a subscription
// made while Redis is down is reported once, confirmed, and only after the
// restarted server confirmed it (never "not connected" first, never guessed
// by the engine at kReconnected); requests with confirm_subscribers reach it.
TEST_F(Resilience, SubscriptionsAreConfirmedOnlyByTheServerAcrossARestart) {
  auto s = own_server();
  ASSERT_TRUE(s);
  auto outcomes = std::make_shared<SubscribeOutcomes>();
  auto w = watched();
  engines_.push_back(std::make_unique<Gilmour>(
      std::make_shared<RecordingBackend>(redis::make_backend(options_for(*s)), outcomes),
      w.options));
  auto& g = *engines_.back();
  g.start();
  auto topic = unique_topic("owner");
  const std::string channel = "gilmour.request." + topic;
  s->kill();
  ASSERT_TRUE(w.log->wait_for(kLost, 1, 5s));
  auto t0 = Clock::now();
  auto rep = g.reply_to(topic, [](const Request&, Response& res) { res.set_data("ok"); });
  EXPECT_LT(Clock::now() - t0, scaled(2s)) << "reply_to() must not wait for a server that is down";
  // The server is down until restart() begins; restart() returns only once
  // it answers PING, by which time the backend may already have reconnected
  // and been confirmed, so the earliest honest confirmation is after this.
  auto restarting = Clock::now();
  ASSERT_TRUE(s->restart()) << s->error();
  ASSERT_TRUE(outcomes->wait_for(channel, 5s));
  ASSERT_TRUE(w.log->wait_for(kBack, 1, 5s));
  auto seen = outcomes->of(channel);
  ASSERT_EQ(seen.size(), 1u) << "reported more than once";
  EXPECT_TRUE(seen[0].status.ok())
      << "reported before the server confirmed it: " << seen[0].status.message();
  EXPECT_GE(seen[0].at, restarting) << "reported while the server was down";
  RawRedis raw(target(*s));
  EXPECT_EQ(raw.numsub(channel), 1);
  auto& other = started(test_options(), s.get());
  auto m = other.request_sync(topic, 1, RequestOptions{}.set_confirm_subscribers());
  EXPECT_EQ(m.code(), 200) << m.error_text();
  EXPECT_EQ(m.data<std::string>(), "ok");
}

/// A fake server on 127.0.0.1 that answers every command with `reply`
/// (a server that echoes what it was sent in its errors).
class EchoingServer {
 public:
  explicit EchoingServer(std::string reply) : reply_(std::move(reply)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&a), len) != 0 ||
        ::listen(fd_, 8) != 0 || ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      return;
    }
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { run(); });
  }
  ~EchoingServer() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    for (int c : clients_) ::close(c);
    if (fd_ >= 0) ::close(fd_);
  }
  int port() const { return port_; }

 private:
  void run() {
    while (!stop_) {
      std::vector<pollfd> fds{{fd_, POLLIN, 0}};
      for (int c : clients_) fds.push_back({c, POLLIN, 0});
      if (::poll(fds.data(), fds.size(), 20) <= 0) continue;
      if (fds[0].revents & POLLIN) {
        int c = ::accept(fd_, nullptr, nullptr);
        if (c >= 0) clients_.push_back(c);
      }
      for (std::size_t i = 1; i < fds.size(); ++i) {
        if (!(fds[i].revents & (POLLIN | POLLHUP))) continue;
        char buf[512];
        if (::read(fds[i].fd, buf, sizeof buf) > 0) {
          (void)!::write(fds[i].fd, reply_.data(), reply_.size());
        }
      }
    }
  }
  std::string reply_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::vector<int> clients_;
  std::thread thread_;
};

TEST_F(Resilience, AuthErrorEchoingThePasswordIsRedacted) {
  const std::string pw = "Ech0edSecret";
  EchoingServer fake("-ERR invalid password '" + pw + "' for AUTH\r\n");
  ASSERT_NE(fake.port(), 0);
  redis::Options o;
  o.port = fake.port();
  o.password = pw;
  o.connect_timeout = scaled(2s);
  auto err = start_error(redis::make_backend(o));
  EXPECT_NE(err.find("AUTH failed: ERR invalid password '***' for AUTH"), std::string::npos) << err;
  EXPECT_EQ(err.find(pw), std::string::npos) << err;
}

}  // namespace
}  // namespace gilmour::test
