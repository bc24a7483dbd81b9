// The programs as a user runs them: the example binaries' command lines
// (usage errors, --timeout, --group) and gilmour-health-bulletin's exit
// status against a real redis-server.
//
// The binaries' paths come from the build (GILMOUR_ECHO_CLIENT etc.); a test
// whose program is not built is not compiled. Redis tests start a private
// redis-server each (skipped without one locally, failing under CI).
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <string>
#include <vector>

#include "support/backends.hpp"
#include "support/child_process.hpp"
#include "support/redis_raw.hpp"
#include "support/redis_server.hpp"

namespace gilmour::test {
namespace {

using Clock = std::chrono::steady_clock;

::testing::AssertionResult exited(const ProgramResult& r, int code) {
  if (r.exit_code == code) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "exit " << r.exit_code << " (signal " << r.signal
                                       << "), wanted " << code << "\nstdout:\n"
                                       << r.out << "\nstderr:\n"
                                       << r.err;
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

/// A private redis-server per test, so registrations never leak between tests.
class CliRedisTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (RedisServer::binary().empty()) {
      if (RedisServer::required()) FAIL() << "Redis is required under CI";
      GTEST_SKIP() << "redis-server unavailable";
    }
    ASSERT_TRUE(server_.start()) << server_.error();
  }
  void TearDown() override {
    for (auto& e : engines_) e->stop();
  }
  RawTarget target() const { return RawTarget{server_.host(), server_.port(), "", ""}; }
  /// An engine on the server with health checks on (registered in the hash).
  Gilmour& healthy_process() {
    auto o = test_options();
    o.health_check = true;
    engines_.push_back(std::make_unique<Gilmour>(redis::make_backend(server_.url()), o));
    engines_.back()->start();
    return *engines_.back();
  }
  RedisServer server_;
  std::vector<std::unique_ptr<Gilmour>> engines_;
};

#ifdef GILMOUR_ECHO_CLIENT
const std::string kClient = GILMOUR_ECHO_CLIENT;

TEST(EchoClientCli, TimeoutIsAnOptionNotATextToSend) {
  auto r = run_program({kClient, "--timeout", "3000", "hello"});
  ASSERT_TRUE(exited(r, 0));
  EXPECT_EQ(r.out, "Pong hello\n");
  r = run_program({kClient, "--timeout=3000", "hello"});
  ASSERT_TRUE(exited(r, 0));
  EXPECT_EQ(r.out, "Pong hello\n");
}

TEST(EchoClientCli, TimeoutMustBeAPositiveInteger) {
  for (const char* bad : {"abc", "0", "-5", "1.5", "10ms", ""}) {
    auto r = run_program({kClient, "--timeout", bad, "hello"});
    EXPECT_TRUE(exited(r, 2)) << "--timeout '" << bad << "'";
    EXPECT_TRUE(contains(r.err, "--timeout must be an integer")) << r.err;
    EXPECT_EQ(r.out, "");
  }
  auto r = run_program({kClient, "hello", "--timeout"});
  EXPECT_TRUE(exited(r, 2));
  EXPECT_TRUE(contains(r.err, "--timeout needs a value")) << r.err;
}

TEST(EchoClientCli, EmptyRedisIsAnErrorNotInProcess) {
  for (std::vector<std::string> args : {std::vector<std::string>{kClient, "--redis", "", "hello"},
                                        std::vector<std::string>{kClient, "--redis=", "hello"}}) {
    auto r = run_program(args);
    EXPECT_TRUE(exited(r, 2));
    EXPECT_TRUE(contains(r.err, "--redis needs a URL")) << r.err;
    EXPECT_EQ(r.out, "");  // nothing was answered in-process
  }
}

TEST(EchoClientCli, RedisAsTheLastArgumentIsAnError) {
  auto r = run_program({kClient, "hello", "--redis"});
  EXPECT_TRUE(exited(r, 2));
  EXPECT_TRUE(contains(r.err, "--redis needs a value")) << r.err;
  EXPECT_EQ(r.out, "");
}

TEST(EchoClientCli, MalformedRedisIsAnError) {
  for (const char* bad : {"redis://127.0.0.1:notaport", "http://127.0.0.1:6379", "redis://"}) {
    auto r = run_program({kClient, "--redis", bad, "hello"});
    EXPECT_TRUE(exited(r, 2)) << bad;
    EXPECT_TRUE(contains(r.err, "--redis: ")) << r.err;
    EXPECT_TRUE(contains(r.err, "bad URL")) << r.err;
    EXPECT_EQ(r.out, "");
  }
}

TEST(EchoClientCli, UnknownOptionIsAnError) {
  auto r = run_program({kClient, "--bogus", "hello"});
  EXPECT_TRUE(exited(r, 2));
  EXPECT_TRUE(contains(r.err, "unknown option --bogus")) << r.err;
  // After "--" everything is text to send.
  r = run_program({kClient, "--", "--bogus"});
  ASSERT_TRUE(exited(r, 0));
  EXPECT_EQ(r.out, "Pong --bogus\n");
}

TEST_F(CliRedisTest, EchoClientGivesUpAfterItsTimeout) {
  // Someone listens on the echo channel (so confirm-subscribers passes) but
  // never answers: the request fails with 499 after --timeout, well before
  // the client's 5 s default would have run out.
  RawSubscriber silent(target(), "gilmour.request.echo", false);
  ASSERT_TRUE(silent.ok()) << silent.error();
  auto begin = Clock::now();
  auto r = run_program({kClient, "--redis", server_.url(), "--timeout", "200", "hello"});
  auto took = Clock::now() - begin;
  ASSERT_TRUE(exited(r, 1));
  EXPECT_TRUE(contains(r.err, "error 499")) << r.err;
  EXPECT_LT(took, std::chrono::milliseconds(5000));
  // The timeout was not sent as a request: only "hello" went out.
  auto got = silent.wait_for(1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(contains(got[0].second, "\"data\":\"hello\"")) << got[0].second;
}
#endif

#ifdef GILMOUR_ECHO_SERVER
const std::string kServer = GILMOUR_ECHO_SERVER;

TEST(EchoServerCli, GroupNeedsANonEmptyValue) {
  auto r = run_program({kServer, "--group"});
  EXPECT_TRUE(exited(r, 2));
  EXPECT_TRUE(contains(r.err, "--group needs a value")) << r.err;
  r = run_program({kServer, "--group", ""});
  EXPECT_TRUE(exited(r, 2));
  EXPECT_TRUE(contains(r.err, "--group needs a non-empty name")) << r.err;
}

TEST_F(CliRedisTest, EchoServerAnswersInTheGroupItWasGiven) {
  ChildProcess server({kServer, "--redis", server_.url(), "--group", "exclusive", "--no-health"});
  ASSERT_TRUE(server.started());
  ASSERT_TRUE(server.wait_for_output("(group exclusive)\n"));
  // A request as a Go client sends it: the replier takes the lock
  // <sender><group>, so the group is visible on the wire.
  const std::string sender = "cli-test-" + std::to_string(::getpid());
  RawSubscriber responses(target(), "gilmour.response." + sender, false);
  ASSERT_TRUE(responses.ok()) << responses.error();
  RawRedis raw(target());
  ASSERT_TRUE(raw.ok()) << raw.error();
  EXPECT_EQ(raw.publish("gilmour.request.echo",
                        R"({"data":"hi","code":200,"sender":")" + sender + R"("})"),
            1);
  auto got = responses.wait_for(1, 30s);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(contains(got[0].second, "\"data\":\"Pong hi\"")) << got[0].second;
  EXPECT_EQ(raw.get(sender + "exclusive"),
            "1");  // the group named on the command line took the lock
  EXPECT_EQ(raw.get(sender + "_default"), std::nullopt);
  server.signal(SIGTERM);
  auto r = server.wait();
  EXPECT_TRUE(exited(r, 0));
}
#endif

#ifdef GILMOUR_LOG_SLOTS
const std::string kLogSlots = GILMOUR_LOG_SLOTS;

TEST(LogSlotsCli, CountMustBeAWholeNumber) {
  for (const char* bad : {"abc", "3x", "-1", "1e3", ""}) {
    auto r = run_program({kLogSlots, bad});
    EXPECT_TRUE(exited(r, 2)) << "COUNT '" << bad << "'";
    EXPECT_TRUE(contains(r.err, "COUNT must be an integer")) << r.err;
  }
  auto r = run_program({kLogSlots, "2"});
  ASSERT_TRUE(exited(r, 0));
  EXPECT_TRUE(contains(r.out, "purchases: 2, slot runs: 6, push messages: 2")) << r.out;
}
#endif

#ifdef GILMOUR_HEALTH_BULLETIN
const std::string kBulletin = GILMOUR_HEALTH_BULLETIN;
const EnvChanges kNoEnvUrl = {{"GILMOUR_REDIS_URL", std::nullopt}};

TEST_F(CliRedisTest, BulletinOnceExitsZeroWhenEveryProcessAnswers) {
  auto r = run_program({kBulletin, "--redis", server_.url(), "--once"}, kNoEnvUrl);
  ASSERT_TRUE(exited(r, 0));
  EXPECT_TRUE(contains(r.out, "processes=0 dead=0 essential_unheard=0")) << r.out;

  auto& a = healthy_process();
  auto& b = healthy_process();
  r = run_program({kBulletin, "--redis", server_.url(), "--once", "--timeout", "30"}, kNoEnvUrl);
  ASSERT_TRUE(exited(r, 0));
  EXPECT_TRUE(contains(r.out, "redis=127.0.0.1:" + std::to_string(server_.port()))) << r.out;
  EXPECT_TRUE(contains(r.out, "processes=2 dead=0")) << r.out;
  EXPECT_TRUE(contains(r.out, "alive  " + a.health_ident())) << r.out;
  EXPECT_TRUE(contains(r.out, "alive  " + b.health_ident())) << r.out;
}

TEST_F(CliRedisTest, BulletinOnceFailsWhenARegisteredProcessDoesNotAnswer) {
  auto& alive = healthy_process();
  RawRedis raw(target());
  ASSERT_TRUE(raw.ok()) << raw.error();
  const std::string ghost = "ghost-host-pid-1-uuid-00000000-0000-4000-8000-000000000000";
  raw.hash_set("gilmour.known_host.health", ghost, "true");
  auto r =
      run_program({kBulletin, "--redis", server_.url(), "--once", "--timeout", "30"}, kNoEnvUrl);
  ASSERT_TRUE(exited(r, 1));
  EXPECT_TRUE(contains(r.out, "FAILED " + ghost)) << r.out;
  EXPECT_TRUE(contains(r.out, "alive  " + alive.health_ident())) << r.out;
  // One failed round is below --retries (3): reported, not yet pruned.
  bool kept = false;
  for (auto& [k, v] : raw.hash_get_all("gilmour.known_host.health")) kept |= k == ghost;
  EXPECT_TRUE(kept);
  // With --retries 1 the same round declares it dead and prunes it.
  r = run_program(
      {kBulletin, "--redis", server_.url(), "--once", "--retries", "1", "--timeout", "30"},
      kNoEnvUrl);
  ASSERT_TRUE(exited(r, 1));
  EXPECT_TRUE(contains(r.out, "DEAD   " + ghost)) << r.out;
  for (auto& [k, v] : raw.hash_get_all("gilmour.known_host.health")) EXPECT_NE(k, ghost);
  // And then all is well again.
  r = run_program({kBulletin, "--redis", server_.url(), "--once", "--timeout", "30"}, kNoEnvUrl);
  EXPECT_TRUE(exited(r, 0));
}

TEST_F(CliRedisTest, BulletinOnceFailsWhenAnEssentialTopicHasNoListener) {
  auto r = run_program(
      {kBulletin, "--redis", server_.url(), "--once", "--essential", "nobody", "--timeout", "30"},
      kNoEnvUrl);
  ASSERT_TRUE(exited(r, 1));
  EXPECT_TRUE(contains(r.out, "NO LISTENER on essential topic nobody")) << r.out;
}

TEST_F(CliRedisTest, BulletinReadsGilmourRedisUrlFromTheEnvironment) {
  // The only Redis it can know about is the one in the environment: the
  // ghost found there proves it neither used the in-process bus nor the
  // default address.
  RawRedis raw(target());
  ASSERT_TRUE(raw.ok()) << raw.error();
  raw.hash_set("gilmour.known_host.health", "ghost-from-env", "true");
  auto r = run_program({kBulletin, "--once"}, {{"GILMOUR_REDIS_URL", server_.url()}});
  ASSERT_TRUE(exited(r, 1));
  EXPECT_TRUE(contains(r.out, "FAILED ghost-from-env")) << r.out;
  // --redis wins over the environment.
  r = run_program({kBulletin, "--once", "--redis", server_.url()},
                  {{"GILMOUR_REDIS_URL", "redis://127.0.0.1:notaport"}});
  EXPECT_TRUE(exited(r, 1));
  // A malformed environment value is a usage error that names it.
  r = run_program({kBulletin, "--once"}, {{"GILMOUR_REDIS_URL", "redis://127.0.0.1:notaport"}});
  EXPECT_TRUE(exited(r, 2));
  EXPECT_TRUE(contains(r.err, "GILMOUR_REDIS_URL")) << r.err;
}

TEST(BulletinCli, WithoutRedisOrEnvironmentItUsesTheDefaultAddress) {
  // Whether or not a Redis runs on the default port here, the bulletin
  // talks about 127.0.0.1:6379: it reports on it, or fails to reach it.
  auto r = run_program({kBulletin, "--once", "--no-prune", "--timeout", "30"}, kNoEnvUrl);
  if (r.exit_code == 3) {
    EXPECT_TRUE(contains(r.err, "cannot reach Redis at 127.0.0.1:6379")) << r.err;
  } else {
    EXPECT_TRUE(r.exit_code == 0 || r.exit_code == 1) << r.exit_code << r.err;
    EXPECT_TRUE(contains(r.out, "redis=127.0.0.1:6379")) << r.out;
  }
}

TEST(BulletinCli, UnreachableRedisIsAClearFailure) {
  int port = free_port();  // nothing listens there
  auto r = run_program(
      {kBulletin, "--redis", "redis://127.0.0.1:" + std::to_string(port), "--once"}, kNoEnvUrl);
  EXPECT_TRUE(exited(r, 3));
  EXPECT_TRUE(contains(r.err, "cannot reach Redis at 127.0.0.1:" + std::to_string(port))) << r.err;
  EXPECT_EQ(r.out, "");
}

TEST(BulletinCli, UsageErrors) {
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  std::vector<Case> cases = {
      {{"--retries", "1.5"}, "--retries needs a positive integer"},
      {{"--retries", "0"}, "--retries needs a positive integer"},
      {{"--retries", "three"}, "--retries needs a positive integer"},
      {{"--interval", "x"}, "--interval needs a positive number of seconds"},
      {{"--timeout", "-1"}, "--timeout needs a positive number of seconds"},
      {{"--redis", ""}, "--redis needs a URL"},
      {{"--redis", "http://x"}, "--redis: "},
      {{"--redis"}, "--redis needs a value"},
      {{"--essential", "a.*"}, "--essential needs a topic"},
      {{"--error-policy", "loud"}, "loud"},
      {{"--bogus"}, "unknown argument --bogus"},
  };
  for (auto& c : cases) {
    std::vector<std::string> argv = {kBulletin, "--once"};
    argv.insert(argv.end(), c.args.begin(), c.args.end());
    auto r = run_program(argv, kNoEnvUrl);
    EXPECT_TRUE(exited(r, 2)) << c.args[0];
    EXPECT_TRUE(contains(r.err, c.message)) << c.args[0] << ": " << r.err;
  }
}
#endif

}  // namespace
}  // namespace gilmour::test
