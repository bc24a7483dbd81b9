// The `gilmour` command, driven as an operator would: the real binary
// (GILMOUR_CLI) against a real redis-server on a free loopback port.
//
// Processes are synchronised on what they print (`listening on`, `serving`)
// and on their exit, never on sleeps; every wait has a generous deadline
// (the suite also runs under sanitizers on small machines).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <condition_variable>
#include <gilmour/error_record.hpp>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/redis_raw.hpp"
#include "support/redis_server.hpp"

extern char** environ;

namespace gilmour::test {
namespace {

using namespace std::chrono_literals;
constexpr auto kWait = 60s;

/// A child `gilmour` process; stdout and stderr are collected by threads.
class Cli {
 public:
  explicit Cli(std::vector<std::string> args, std::vector<std::string> env = {},
               const std::string& input = "") {
    std::vector<std::string> argv_s = {GILMOUR_CLI};
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    std::vector<std::string> env_s;
    for (char** e = environ; *e; ++e) {
      // The tests choose the URL; an operator's setting must not leak in.
      if (std::string(*e).rfind("GILMOUR_REDIS_URL=", 0) != 0) env_s.emplace_back(*e);
    }
    env_s.insert(env_s.end(), env.begin(), env.end());
    std::vector<char*> argv, envp;
    for (auto& a : argv_s) argv.push_back(a.data());
    argv.push_back(nullptr);
    for (auto& e : env_s) envp.push_back(e.data());
    envp.push_back(nullptr);
    int in[2], out[2], err[2];
    if (::pipe(in) != 0 || ::pipe(out) != 0 || ::pipe(err) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      die_with_parent();
      ::dup2(in[0], 0);
      ::dup2(out[1], 1);
      ::dup2(err[1], 2);
      for (int fd : {in[0], in[1], out[0], out[1], err[0], err[1]}) ::close(fd);
      ::execve(argv[0], argv.data(), envp.data());
      ::_exit(127);
    }
    ::close(in[0]);
    ::close(out[1]);
    ::close(err[1]);
    if (!input.empty()) {
      auto n = ::write(in[1], input.data(), input.size());
      (void)n;
    }
    ::close(in[1]);
    readers_.emplace_back([this, fd = out[0]] { read_into(fd, out_); });
    readers_.emplace_back([this, fd = err[0]] { read_into(fd, err_); });
    readers_.emplace_back([this] {
      int status = 0;
      ::waitpid(pid_, &status, 0);
      std::lock_guard<std::mutex> lock(mu_);
      exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      cv_.notify_all();
    });
  }
  ~Cli() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (exit_code_ < 0 && pid_ > 0) ::kill(pid_, SIGKILL);
    }
    for (auto& t : readers_) t.join();
  }

  /// Waits until stderr contains `needle`.
  bool wait_err(const std::string& needle, std::chrono::seconds timeout = kWait) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] {
      return err_.find(needle) != std::string::npos || (exit_code_ >= 0 && eof_ == 2);
    }) && err_.find(needle) != std::string::npos;
  }
  /// Waits until stdout contains `needle`.
  bool wait_out(const std::string& needle, std::chrono::seconds timeout = kWait) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] {
      return out_.find(needle) != std::string::npos || (exit_code_ >= 0 && eof_ == 2);
    }) && out_.find(needle) != std::string::npos;
  }
  /// Waits for a complete stderr line containing `needle`; returns what
  /// follows `needle` on it ("" on timeout).
  std::string wait_err_line(const std::string& needle, std::chrono::seconds timeout = kWait) {
    std::unique_lock<std::mutex> lock(mu_);
    std::string rest;
    cv_.wait_for(lock, timeout, [&] {
      auto pos = err_.find(needle);
      if (pos == std::string::npos) return exit_code_ >= 0 && eof_ == 2;
      auto nl = err_.find('\n', pos);
      if (nl == std::string::npos) return exit_code_ >= 0 && eof_ == 2;
      rest = err_.substr(pos + needle.size(), nl - pos - needle.size());
      return true;
    });
    return rest;
  }
  /// Waits for the exit (and the end of its output); -1 on timeout.
  int wait_exit(std::chrono::seconds timeout = kWait) {
    std::unique_lock<std::mutex> lock(mu_);
    if (!cv_.wait_for(lock, timeout, [&] { return exit_code_ >= 0 && eof_ == 2; })) return -1;
    return exit_code_;
  }
  /// SIGTERM, then wait_exit().
  int terminate() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (exit_code_ < 0) ::kill(pid_, SIGTERM);
    }
    return wait_exit();
  }
  std::string out() {
    std::lock_guard<std::mutex> lock(mu_);
    return out_;
  }
  std::string err() {
    std::lock_guard<std::mutex> lock(mu_);
    return err_;
  }

 private:
  void read_into(int fd, std::string& into) {
    char buf[4096];
    for (;;) {
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n <= 0) break;
      std::lock_guard<std::mutex> lock(mu_);
      into.append(buf, static_cast<std::size_t>(n));
      cv_.notify_all();
    }
    ::close(fd);
    std::lock_guard<std::mutex> lock(mu_);
    ++eof_;
    cv_.notify_all();
  }

  pid_t pid_ = -1;
  std::mutex mu_;
  std::condition_variable cv_;
  std::string out_, err_;
  int eof_ = 0;
  int exit_code_ = -1;
  std::vector<std::thread> readers_;
};

struct Run {
  int code;
  std::string out, err;
};

/// Runs the command to its end.
Run run(std::vector<std::string> args, std::vector<std::string> env = {},
        const std::string& input = "") {
  Cli c(std::move(args), std::move(env), input);
  int code = c.wait_exit();
  return {code, c.out(), c.err()};
}

std::vector<std::string> lines(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);)
    if (!l.empty()) out.push_back(l);
  return out;
}

bool contains(const std::string& s, const std::string& needle) {
  return s.find(needle) != std::string::npos;
}

// ---------------------------------------------------------------- no Redis

TEST(CliArgs, VersionAndHelp) {
  auto v = run({"--version"});
  EXPECT_EQ(v.code, 0) << v.err;
  EXPECT_TRUE(contains(v.out, "gilmour ")) << v.out;
  EXPECT_TRUE(contains(v.out, std::string(gilmour::version()))) << v.out;
  for (const char* cmd :
       {"request", "signal", "listen", "reply", "health", "errors", "stats", "bench"}) {
    auto h = run({cmd, "--help"});
    EXPECT_EQ(h.code, 0) << cmd << ": " << h.err;
    EXPECT_TRUE(contains(h.out, "Usage")) << cmd << ": " << h.out;
  }
}

TEST(CliArgs, InvalidArgumentsExit2) {
  for (std::vector<std::string> args : std::vector<std::vector<std::string>>{
           {},
           {"frobnicate"},
           {"request"},
           {"request", "t", "--timeout", "abc"},
           {"request", "t", "--timeout", "-5"},
           {"listen"},
           {"reply", "t"},
           {"reply", "t", "--exec", "cat", "--error-policy", "shout"},
           {"bench", "request", "t", "--inflight", "0"},
           {"bench"},
       }) {
    auto r = run(args);
    std::string joined;
    for (auto& a : args) joined += a + " ";
    EXPECT_EQ(r.code, 2) << joined << "\n" << r.err;
    EXPECT_FALSE(r.err.empty()) << joined;
  }
}

TEST(CliArgs, BadUrlIsReportedWithoutThePassword) {
  auto r = run({"--redis", "http://127.0.0.1:6379", "request", "t"});
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_TRUE(contains(r.err, "bad URL")) << r.err;

  r = run({"--redis", "redis://:s3cretpw@127.0.0.1:notaport", "request", "t"});
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_TRUE(contains(r.err, "bad URL")) << r.err;
  EXPECT_FALSE(contains(r.err, "s3cretpw")) << r.err;
  EXPECT_TRUE(contains(r.err, "***")) << r.err;

  // From the environment too.
  r = run({"signal", "t"}, {"GILMOUR_REDIS_URL=redis://u:s3cretpw@127.0.0.1:x/0"});
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_FALSE(contains(r.err, "s3cretpw")) << r.err;
}

TEST(CliArgs, UnreachableRedisFailsFast) {
  int port = free_port();  // nothing listens there
  std::string url = "redis://:s3cretpw@127.0.0.1:" + std::to_string(port);
  for (std::vector<std::string> args : std::vector<std::vector<std::string>>{
           {"--redis", url, "request", "t", "x"},
           {"--redis", url, "listen", "t"},
           {"--redis", url, "health"},
           {"--redis", url, "errors", "--queue"},
           {"--redis", url, "reply", "t", "--exec", "cat"},
       }) {
    auto r = run(args);
    EXPECT_EQ(r.code, 3) << args[2] << ": " << r.err;
    EXPECT_TRUE(contains(r.err, "cannot connect to Redis")) << r.err;
    EXPECT_FALSE(contains(r.err, "s3cretpw")) << r.err;
  }
}

// ---------------------------------------------------------------- with Redis

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = shared_redis();
    if (!server_) {
      if (RedisServer::required()) FAIL() << "redis-server is required under CI";
      GTEST_SKIP() << "redis-server unavailable";
    }
    url_ = server_->url();
    prefix_ = unique_topic("cli");
  }
  /// `gilmour --redis URL args...`
  std::vector<std::string> cmd(std::vector<std::string> args) const {
    args.insert(args.begin(), {"--redis", url_});
    return args;
  }
  std::string topic(const std::string& name) const { return prefix_ + "." + name; }
  RawTarget target() const { return RawTarget{server_->host(), server_->port(), "", ""}; }

  /// A `gilmour reply` serving `t`, ready.
  std::unique_ptr<Cli> serve(const std::string& t, const std::string& exec,
                             std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"reply", t, "--exec", exec};
    args.insert(args.end(), extra.begin(), extra.end());
    auto c = std::make_unique<Cli>(cmd(args));
    EXPECT_TRUE(c->wait_err("serving " + t)) << c->err();
    return c;
  }

  RedisServer* server_ = nullptr;
  std::string url_;
  std::string prefix_;
};

TEST_F(CliTest, RequestPrintsTheDataAndExits0On200) {
  auto t = topic("echo");
  auto server = serve(t, "cat");

  auto r = run(cmd({"request", t, "hello"}));
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "hello\n");

  r = run(cmd({"request", t, R"({"a":[1,2]})"}));
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "{\"a\":[1,2]}\n");

  r = run(cmd({"request", t, "--string", "42"}));
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "42\n");

  r = run(cmd({"request", t, "-", "--full"}), {}, "from stdin");
  EXPECT_EQ(r.code, 0) << r.err;
  auto env = nlohmann::json::parse(r.out);
  EXPECT_EQ(env["data"], "from stdin");
  EXPECT_EQ(env["code"], 200);
  EXPECT_TRUE(env["sender"].is_string());

  // The URL from the environment.
  r = run({"request", t, "env"}, {"GILMOUR_REDIS_URL=" + url_});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "env\n");

  EXPECT_EQ(server->terminate(), 0) << server->err();
  EXPECT_TRUE(contains(server->err(), " -> 200 ")) << server->err();
}

TEST_F(CliTest, RequestExitsNonZeroWithTheCodeAndErrorText) {
  auto t = topic("fail");
  auto server = serve(t, "cat >/dev/null; echo disk on fire >&2; exit 3");
  auto r = run(cmd({"request", t, "x"}));
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(contains(r.err, "500 disk on fire")) << r.err;
  EXPECT_EQ(r.out, "");

  r = run(cmd({"request", t, "x", "--full"}));
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(nlohmann::json::parse(r.out)["code"], 500) << r.out;

  // Nobody listens: 404 at once.
  r = run(cmd({"request", topic("nobody"), "x"}));
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(contains(r.err, "404")) << r.err;
  EXPECT_EQ(server->terminate(), 0);
}

TEST_F(CliTest, ReplyKillsCommandsAtTheDeadlineAndBeyondTheOutputLimit) {
  auto slow = topic("slow");
  auto s1 = serve(slow, "sleep 60", {"--timeout", "300"});
  auto r = run(cmd({"request", slow, "x", "--timeout", "30000"}));
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(contains(r.err, "499")) << r.err;

  auto big = topic("big");
  auto s2 = serve(big, "yes", {"--max-output", "1000"});
  r = run(cmd({"request", big, "x"}));
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(contains(r.err, "500 command output exceeds 1000 bytes")) << r.err;

  // The environment names the topic; JSON output is JSON data.
  auto envt = topic("env");
  auto s3 = serve(envt, R"(printf '{"topic":"%s"}' "$GILMOUR_TOPIC")");
  r = run(cmd({"request", envt, "x", "--full"}));
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["data"]["topic"], envt) << r.out;

  EXPECT_EQ(s1->terminate(), 0);
  EXPECT_EQ(s2->terminate(), 0);
  EXPECT_EQ(s3->terminate(), 0);
}

TEST_F(CliTest, ReplyBoundsConcurrencyAndAnswers503BeyondTheQueue) {
  char dir_template[] = "/tmp/gilmour-cli-test-XXXXXX";
  ASSERT_NE(::mkdtemp(dir_template), nullptr);
  std::string dir = dir_template;
  const std::string started = dir + "/started", go = dir + "/go";
  ASSERT_EQ(::mkfifo(started.c_str(), 0600), 0);
  ASSERT_EQ(::mkfifo(go.c_str(), 0600), 0);
  // Opened before the command runs (non-blocking), so its `echo > started`
  // finds a reader; the command then blocks reading `go` until the test writes.
  int started_fd = ::open(started.c_str(), O_RDONLY | O_NONBLOCK);
  ASSERT_GE(started_fd, 0);
  auto t = topic("bounded");
  auto server = serve(t, "echo > " + started + "; read line < " + go + "; cat",
                      {"--concurrency", "1", "--max-queue", "0"});
  Cli first(cmd({"request", t, "first"}));
  pollfd pfd{started_fd, POLLIN, 0};
  ASSERT_EQ(::poll(&pfd, 1, static_cast<int>(std::chrono::milliseconds(kWait).count())), 1)
      << "the command never started";
  auto r = run(cmd({"request", t, "second"}));
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(contains(r.err, "503 gilmour reply: too many requests waiting")) << r.err;
  int go_fd = ::open(go.c_str(), O_WRONLY);  // the command is blocked reading it
  ASSERT_GE(go_fd, 0);
  ASSERT_EQ(::write(go_fd, "go\n", 3), 3);
  ::close(go_fd);
  EXPECT_EQ(first.wait_exit(), 0) << first.err();
  EXPECT_EQ(first.out(), "first\n");
  EXPECT_EQ(server->terminate(), 0);
  ::close(started_fd);
  ::unlink(started.c_str());
  ::unlink(go.c_str());
  ::rmdir(dir.c_str());
}

TEST_F(CliTest, ListenSeesSignalsRequestsAndResponses) {
  auto pattern = topic("item.*");
  Cli listen(cmd({"listen", pattern, "--count", "3", "--json"}));
  ASSERT_TRUE(listen.wait_err("listening on")) << listen.err();

  auto r = run(cmd({"signal", topic("item.buy"), R"({"price":500})"}));
  EXPECT_EQ(r.code, 0) << r.err;
  auto server = serve(topic("item.get"), "cat");
  r = run(cmd({"request", topic("item.get"), "hi"}));
  EXPECT_EQ(r.code, 0) << r.err;

  ASSERT_EQ(listen.wait_exit(), 0) << listen.err();
  auto got = lines(listen.out());
  ASSERT_EQ(got.size(), 3u) << listen.out();
  auto sig = nlohmann::json::parse(got[0]);
  EXPECT_EQ(sig["kind"], "signal");
  EXPECT_EQ(sig["topic"], topic("item.buy"));
  EXPECT_EQ(sig["channel"], "gilmour.slot." + topic("item.buy"));
  EXPECT_EQ(sig["data"]["price"], 500);
  EXPECT_EQ(sig["code"], 200);
  auto req = nlohmann::json::parse(got[1]);
  EXPECT_EQ(req["kind"], "request");
  EXPECT_EQ(req["topic"], topic("item.get"));
  EXPECT_EQ(req["data"], "hi");
  auto res = nlohmann::json::parse(got[2]);
  EXPECT_EQ(res["kind"], "response");
  EXPECT_EQ(res["topic"], topic("item.get"));
  EXPECT_EQ(res["sender"], req["sender"]);
  EXPECT_EQ(res["code"], 200);
  EXPECT_EQ(res["data"], "hi");
  EXPECT_EQ(server->terminate(), 0);
}

TEST_F(CliTest, ListenTextLinesAndSignalConfirm) {
  auto t = topic("plain");
  // Nobody listens yet: --confirm fails.
  auto r = run(cmd({"signal", t, "x", "--confirm"}));
  EXPECT_EQ(r.code, 1) << r.err;

  Cli listen(cmd({"listen", t, "-n", "1"}));
  ASSERT_TRUE(listen.wait_err("listening on")) << listen.err();
  r = run(cmd({"signal", t, "--confirm", "--", "just text"}));
  EXPECT_EQ(r.code, 0) << r.err;
  ASSERT_EQ(listen.wait_exit(), 0) << listen.err();
  auto out = listen.out();
  EXPECT_TRUE(contains(out, " signal " + t + " sender=")) << out;
  EXPECT_TRUE(contains(out, " code=200 \"just text\"")) << out;
}

TEST_F(CliTest, HealthListsLiveProcessesAndFailsOnASilentOne) {
  auto t = topic("healthy");
  auto server = serve(t, "cat", {"--health"});
  auto ident = server->wait_err_line("health ident ");
  ASSERT_FALSE(ident.empty()) << server->err();

  auto r = run(cmd({"health"}));
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_TRUE(contains(r.out, "ok          " + ident + "  topics: " + t)) << r.out;

  r = run(cmd({"health", "--json"}));
  EXPECT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["healthy"], true);
  ASSERT_EQ(j["processes"].size(), 1u) << r.out;
  EXPECT_EQ(j["processes"][0]["channels"][0], "gilmour.request." + t);

  // A registered process that does not answer (killed without HDEL).
  RawRedis raw(target());
  raw.hash_set("gilmour.known_host.health", "ghost-pid-1-uuid-x", "true");
  r = run(cmd({"health", "--timeout", "2000"}));
  EXPECT_EQ(r.code, 1) << r.out << r.err;
  EXPECT_TRUE(contains(r.out, "NO ANSWER   ghost-pid-1-uuid-x")) << r.out;
  EXPECT_TRUE(contains(r.out, "ok          " + ident)) << r.out;

  // Essential topics without listeners fail too.
  r = run(cmd({"health", "--prune", "--essential", topic("nobody")}));
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_TRUE(contains(r.out, "NO LISTENER essential topic " + topic("nobody"))) << r.out;
  // --prune removed the ghost.
  r = run(cmd({"health"}));
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_FALSE(contains(r.out, "ghost")) << r.out;
  EXPECT_EQ(server->terminate(), 0);
}

TEST_F(CliTest, StatsOfOneOrEveryProcessAsTextJsonAndPrometheus) {
  auto t = topic("counted");
  auto server = serve(t, "cat", {"--health"});
  auto ident = server->wait_err_line("health ident ");
  ASSERT_FALSE(ident.empty()) << server->err();
  ASSERT_EQ(run(cmd({"request", t, "1"})).code, 0);

  auto r = run(cmd({"stats", ident, "--json"}));
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["ident"], ident);
  EXPECT_GE(j["stats"]["requests_handled"].get<int>(), 1) << r.out;

  r = run(cmd({"stats", "--prometheus"}));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "# TYPE gilmour_requests_handled_total counter")) << r.out;
  EXPECT_TRUE(contains(r.out, "gilmour_requests_handled_total{ident=\"" + ident + "\"} ")) << r.out;

  r = run(cmd({"stats"}));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out.rfind(ident + "\n  ", 0), 0u) << r.out;  // the ident, then its counters
  EXPECT_TRUE(contains(r.out, "\n  requests_handled ")) << r.out;

  // A named process that does not answer is a failure.
  r = run(cmd({"stats", "ghost-pid-1-uuid-x", "--timeout", "500"}));
  EXPECT_EQ(r.code, 1) << r.out << r.err;
  EXPECT_EQ(server->terminate(), 0);
}

TEST_F(CliTest, ErrorsFromTheQueueAndTheChannel) {
  auto q = topic("queued");
  auto server = serve(q, "echo queued failure >&2; exit 1", {"--error-policy", "queue"});
  auto r = run(cmd({"request", q, R"({"n":1})"}));
  EXPECT_EQ(r.code, 1);
  // The record is pushed after the response: wait for it.
  RawRedis raw(target());
  // Rotating the list onto itself blocks in Redis until the record is there.
  auto waited = raw.command({"BLMOVE", "gilmour.errorqueue", "gilmour.errorqueue", "RIGHT", "RIGHT",
                             std::to_string(std::chrono::seconds(kWait).count())});
  ASSERT_TRUE(waited && waited->type == REDIS_REPLY_STRING) << "no error record was queued";
  r = run(cmd({"errors", "--queue"}));
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, " 500 " + q + " sender=")) << r.out;
  EXPECT_TRUE(contains(r.out, "error=\"queued failure\" request={\"n\":1}")) << r.out;
  r = run(cmd({"errors", "--queue", "--json", "-n", "1"}));
  EXPECT_EQ(r.code, 0) << r.err;
  auto rec = nlohmann::json::parse(r.out);
  EXPECT_EQ(rec["topic"], q);
  EXPECT_EQ(rec["code"], 500);

  // The channel (default publish policy).
  Cli errors(cmd({"errors", "--count", "1"}));
  ASSERT_TRUE(errors.wait_err("listening on gilmour.error")) << errors.err();
  auto p = topic("published");
  auto s2 = serve(p, "exit 7");
  r = run(cmd({"request", p, "x"}));
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(contains(r.err, "500 command exited with status 7")) << r.err;
  ASSERT_EQ(errors.wait_exit(), 0) << errors.err();
  EXPECT_TRUE(contains(errors.out(), " 500 " + p + " ")) << errors.out();
  EXPECT_EQ(server->terminate(), 0);
  EXPECT_EQ(s2->terminate(), 0);
}

TEST_F(CliTest, ErrorsFollowTheQueue) {
  RawRedis raw(target());
  auto record = [&](const std::string& topic) {
    ErrorRecord r;
    r.topic = topic;
    r.sender = "s1";
    r.timestamp = ErrorRecord::now_timestamp();
    r.backtrace = "broken " + topic;
    r.code = 500;
    return r.dump();
  };
  auto key = topic("errorqueue");
  raw.command({"LPUSH", key, record(topic("old"))});
  Cli follow(cmd({"errors", "--queue", "--queue-key", key, "--follow", "--interval", "50"}));
  ASSERT_TRUE(follow.wait_err("following " + key)) << follow.err();
  raw.command({"LPUSH", key, record(topic("new1"))});
  raw.command({"LPUSH", key, record(topic("new2"))});
  ASSERT_TRUE(follow.wait_out(topic("new2"))) << follow.out();
  EXPECT_EQ(follow.terminate(), 0);
  auto got = lines(follow.out());
  ASSERT_EQ(got.size(), 3u) << follow.out();
  EXPECT_TRUE(contains(got[0], topic("old")));
  EXPECT_TRUE(contains(got[1], topic("new1")));
  EXPECT_TRUE(contains(got[2], topic("new2")));
  EXPECT_TRUE(contains(got[2], "error=\"broken " + topic("new2") + "\"")) << got[2];
}

TEST_F(CliTest, ListenPrintsAMessageOnceWhenPatternsOverlap) {
  Cli listen(cmd({"listen", topic("a.*"), topic("a.b"), "-n", "2", "--json", "--no-responses"}));
  ASSERT_TRUE(listen.wait_err("listening on")) << listen.err();
  EXPECT_EQ(run(cmd({"signal", topic("a.b"), "1"})).code, 0);
  EXPECT_EQ(run(cmd({"signal", topic("a.b"), "2"})).code, 0);
  ASSERT_EQ(listen.wait_exit(), 0) << listen.err();
  auto got = lines(listen.out());
  ASSERT_EQ(got.size(), 2u) << listen.out();
  EXPECT_EQ(nlohmann::json::parse(got[0])["data"], 1);
  EXPECT_EQ(nlohmann::json::parse(got[1])["data"], 2);
}

TEST_F(CliTest, BenchShortRuns) {
  auto t = topic("bench");
  auto r = run(cmd({"bench", "request", t, "--duration", "1"}));
  EXPECT_EQ(r.code, 1) << r.out;  // nobody listens
  EXPECT_TRUE(contains(r.err, "nobody listens")) << r.err;

  Cli replier(cmd({"bench", "reply", t}));
  ASSERT_TRUE(replier.wait_err("serving " + t)) << replier.err();
  r = run(cmd({"bench", "request", t, "--duration", "1", "--inflight", "2"}));
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_TRUE(contains(r.out, "req/s")) << r.out;
  EXPECT_TRUE(contains(r.out, "p50")) << r.out;
  EXPECT_TRUE(contains(r.out, "p99")) << r.out;

  r = run(cmd({"bench", "signal", t, "--duration", "1", "--json"}));
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_GT(j["ok"].get<long long>(), 0);
  EXPECT_EQ(j["failed"], 0);

  EXPECT_EQ(replier.terminate(), 0) << replier.err();
  EXPECT_TRUE(contains(replier.out(), "requests served")) << replier.out();
}

}  // namespace
}  // namespace gilmour::test
