// gilmour reply TOPIC --exec CMD: serves a topic with a shell command.
//
// The reply handler defers its answer and queues the request; a fixed set of
// workers (--concurrency) runs the command for each, so at most that many
// commands run at once, and requests beyond --max-queue are answered 503 at
// once. A command is killed (with its process group) at the handler
// deadline, when its output passes --max-output, and when the tool stops.
#include <signal.h>

#include <condition_variable>
#include <deque>
#include <iostream>
#include <mutex>
#include <set>
#include <thread>

#include "commands.hpp"
#include "exec.hpp"

namespace gilmour::cli {

namespace {

std::string trim_newlines(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

struct Job {
  std::string input;
  std::string sender;
  Response::Deferred answer;
  std::chrono::steady_clock::time_point arrived;
  std::chrono::steady_clock::time_point deadline;
};

class Workers {
 public:
  explicit Workers(const ReplyArgs& a) : args_(a) {
    for (int i = 0; i < a.concurrency; ++i) threads_.emplace_back([this] { run(); });
  }
  ~Workers() { shutdown(); }

  /// False when the queue is full.
  bool push(Job job) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_ || queue_.size() >= static_cast<std::size_t>(args_.max_queue) + idle_) {
        return false;
      }
      queue_.push_back(std::move(job));
    }
    cv_.notify_one();
    return true;
  }

  /// Kills running commands, answers what is queued 503, joins the workers.
  void shutdown() {
    std::deque<Job> left;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_ && threads_.empty()) return;
      stopping_ = true;
      left.swap(queue_);
      for (pid_t pid : running_) ::kill(-pid, SIGKILL);
    }
    cv_.notify_all();
    for (auto& j : left) j.answer.respond("gilmour reply: shutting down", code::kUnavailable);
    for (auto& t : threads_) t.join();
    threads_.clear();
  }

 private:
  void run() {
    for (;;) {
      Job job;
      {
        std::unique_lock<std::mutex> lock(mu_);
        ++idle_;
        cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
        --idle_;
        if (stopping_) return;
        job = std::move(queue_.front());
        queue_.pop_front();
      }
      serve(job);
    }
  }

  void serve(Job& job) {
    if (std::chrono::steady_clock::now() >= job.deadline) return;  // 499 was sent already
    ExecLimits limits;
    limits.deadline = job.deadline;
    limits.max_output = static_cast<std::size_t>(args_.max_output);
    auto r = run_command(args_.exec, job.input,
                         {"GILMOUR_TOPIC=" + args_.topic, "GILMOUR_SENDER=" + job.sender}, limits,
                         [this](pid_t pid, bool running) {
                           std::lock_guard<std::mutex> lock(mu_);
                           if (running) {
                             running_.insert(pid);
                             if (stopping_) ::kill(-pid, SIGKILL);
                           } else {
                             running_.erase(pid);
                           }
                         });
    nlohmann::json data;
    int code = code::kOk;
    switch (r.outcome) {
      case ExecResult::Outcome::kExited:
        if (r.exit_status == 0) {
          data = parse_data(trim_newlines(std::move(r.out)));
        } else {
          code = code::kHandlerError;
          auto err = trim_newlines(std::move(r.err));
          data = err.empty() ? "command exited with status " + std::to_string(r.exit_status) : err;
        }
        break;
      case ExecResult::Outcome::kSignaled:
        code = code::kHandlerError;
        data = "command killed by signal " + std::to_string(r.signal);
        break;
      case ExecResult::Outcome::kTimedOut:
        code = code::kTimeout;
        data = "Execution timed out";
        break;
      case ExecResult::Outcome::kOutputTooLong:
        code = code::kHandlerError;
        data = "command output exceeds " + std::to_string(args_.max_output) + " bytes";
        break;
      case ExecResult::Outcome::kSpawnFailed:
      case ExecResult::Outcome::kAborted:
        code = code::kHandlerError;
        data = r.error.empty() ? std::string("command failed") : r.error;
        break;
    }
    bool sent = job.answer.respond(data, code);
    if (!args_.quiet) {
      auto ms =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - job.arrived)
              .count();
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.1f", ms);
      std::lock_guard<std::mutex> lock(log_mu_);
      std::cerr << timestamp(std::chrono::system_clock::now()) << " " << args_.topic
                << " sender=" << job.sender << " -> " << code << " in " << buf << "ms"
                << (sent ? "" : " (not sent: already answered)") << std::endl;
    }
  }

  const ReplyArgs& args_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> queue_;
  std::set<pid_t> running_;
  std::size_t idle_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
  std::mutex log_mu_;
};

}  // namespace

int run_reply(const Global& g, const ReplyArgs& a) {
  if (a.topic.find('*') != std::string::npos) {
    throw Failure(kExitUsage, "reply: a reply topic may not contain '*'");
  }
  auto opts = engine_options(g);
  opts.error_policy = parse_error_policy(a.error_policy);
  opts.health_check = a.health;
  opts.handler_timeout = std::chrono::milliseconds(a.timeout_ms);
  auto engine = make_engine(g, std::move(opts));
  Workers workers(a);
  HandlerOptions ho;
  ho.group = a.group;
  ho.timeout = std::chrono::milliseconds(a.timeout_ms);
  auto sub = engine->reply_to(
      a.topic,
      [&workers, &a](const Request& req, Response& res) {
        Job job;
        const auto& d = req.data();
        job.input = d.is_string() ? d.get<std::string>() : dump(d);
        job.sender = req.sender();
        job.arrived = std::chrono::steady_clock::now();
        job.deadline = job.arrived + std::chrono::milliseconds(a.timeout_ms);
        job.answer = res.defer();
        auto answer = job.answer;
        if (!workers.push(std::move(job))) {
          answer.respond("gilmour reply: too many requests waiting", code::kUnavailable);
        }
      },
      ho);
  start_engine(*engine, g);
  stop::graceful(true);
  // One write, so that a reader never sees half of this line.
  std::string ready = "gilmour: serving " + a.topic + " (group " +
                      (a.group.empty() ? std::string("_default") : a.group) + ", " +
                      std::to_string(a.concurrency) + " at once) with: " + a.exec;
  if (a.health) ready += "; health ident " + engine->health_ident();
  std::cerr << ready + "\n" << std::flush;
  stop::wait();
  // Take no new requests, let running commands finish (up to the drain
  // timeout), then kill what is left.
  sub.cancel();
  engine->stop();
  workers.shutdown();
  return kExitOk;
}

}  // namespace gilmour::cli
