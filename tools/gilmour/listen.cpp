// gilmour listen PATTERN...: every signal, request and response on matching
// topics, decoded, one line each.
//
// Built on public slots: a slot topic starting with `gilmour.` is the
// channel itself, so `gilmour.request.<P>` and `gilmour.slot.<P>` subscribe
// to the raw channels. Responses travel on `gilmour.response.<sender>`,
// which names no topic: one slot on `gilmour.response.*` sees them all, and
// a response is printed when the request it answers was seen. The engine
// runs on a one-thread executor, so handlers run in the order Redis
// delivered the messages (a request before its response).
#include <condition_variable>
#include <deque>
#include <iostream>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>

#include "commands.hpp"

namespace gilmour::cli {

namespace {

/// Runs tasks one at a time, in submission order, on one thread.
class SerialExecutor final : public Executor {
 public:
  SerialExecutor() : thread_([this] { run(); }) {}
  ~SerialExecutor() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.get_id() == std::this_thread::get_id()) {
      thread_.detach();
    } else {
      thread_.join();
    }
  }
  void submit(std::function<void()> task) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
      queue_.push_back(std::move(task));
    }
    cv_.notify_one();
  }

 private:
  void run() {
    for (;;) {
      std::function<void()> task;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) return;
        task = std::move(queue_.front());
        queue_.pop_front();
      }
      try {
        task();
      } catch (...) {  // the engine's tasks catch their own
      }
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  bool stopping_ = false;
  std::thread thread_;
};

constexpr std::size_t kMaxPending = 100000;  // requests remembered for their responses
constexpr std::size_t kMaxTextData = 2048;   // data shown in a text line

class Printer {
 public:
  Printer(const ListenArgs& a, bool all_responses) : args_(a), all_responses_(all_responses) {}

  /// On the serial executor.
  void on_message(const Request& req) {
    if (done_) return;
    const Message& m = req.message();
    // Overlapping patterns deliver one message once per pattern, back to back.
    if (req.channel() == last_channel_ && m == last_) return;
    last_channel_ = req.channel();
    last_ = m;
    auto now = std::chrono::system_clock::now();
    auto info = classify_channel(req.channel());
    std::string topic = info.topic;
    std::string sender = m.sender();
    double latency_ms = -1;
    if (info.kind == "request" || info.kind == "health") {
      remember(m.sender(), info.kind == "health" ? req.channel() : info.topic);
      if (info.kind == "health") info.kind = "request";
    } else if (info.kind == "response") {
      sender = info.topic;  // the request's sender, from the channel
      auto it = pending_.find(sender);
      if (it != pending_.end()) {
        topic = it->second.topic;
        latency_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() -
                                                               it->second.at)
                         .count();
        pending_.erase(it);
      } else if (!all_responses_) {
        return;  // answers a request on a topic we do not listen to
      } else {
        topic = "";
      }
    }
    if (args_.json) {
      nlohmann::json j = {{"time", timestamp(now)},   {"kind", info.kind}, {"topic", topic},
                          {"channel", req.channel()}, {"sender", sender},  {"code", m.code()},
                          {"data", m.data()}};
      if (latency_ms >= 0) j["latency_ms"] = latency_ms;
      std::cout << dump(j) << "\n";
    } else {
      std::string data = dump(m.data());
      if (data.size() > kMaxTextData) {
        data = data.substr(0, kMaxTextData) + "...(" + std::to_string(data.size()) + " bytes)";
      }
      std::cout << timestamp(now) << " " << info.kind << " " << (topic.empty() ? "?" : topic)
                << " sender=" << sender << " code=" << m.code();
      if (latency_ms >= 0) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.3f", latency_ms);
        std::cout << " after=" << buf << "ms";
      }
      std::cout << " " << data << "\n";
    }
    std::cout.flush();
    if (!std::cout) {  // stdout closed (gilmour listen ... | head)
      done_ = true;
      stop::request();
      return;
    }
    if (args_.count > 0 && ++printed_ >= args_.count) {
      done_ = true;
      stop::request();
    }
  }

 private:
  struct Pending {
    std::string topic;
    std::chrono::steady_clock::time_point at;
  };
  void remember(const std::string& sender, const std::string& topic) {
    if (args_.no_responses) return;
    if (pending_.size() >= kMaxPending) {  // forget the oldest half
      while (order_.size() > kMaxPending / 2) {
        pending_.erase(order_.front());
        order_.pop_front();
      }
    }
    if (pending_.emplace(sender, Pending{topic, std::chrono::steady_clock::now()}).second) {
      order_.push_back(sender);
    }
    // order_ may name senders already answered; it is trimmed with pending_.
    if (order_.size() > 2 * kMaxPending) {
      std::deque<std::string> keep;
      for (auto& s : order_)
        if (pending_.count(s)) keep.push_back(s);
      order_.swap(keep);
    }
  }

  const ListenArgs& args_;
  bool all_responses_;
  bool done_ = false;
  long long printed_ = 0;
  std::string last_channel_;
  Message last_;
  std::unordered_map<std::string, Pending> pending_;
  std::deque<std::string> order_;
};

}  // namespace

int run_listen(const Global& g, const ListenArgs& a) {
  std::set<std::string> channels;
  bool all_responses = false;
  for (auto& p : a.patterns) {
    if (p.empty()) throw Failure(kExitUsage, "listen: empty pattern");
    if (p.rfind("gilmour.", 0) == 0) {
      channels.insert(p);
      if (p.rfind("gilmour.response.", 0) == 0 || p == "gilmour.*") all_responses = true;
    } else {
      channels.insert("gilmour.request." + p);
      channels.insert("gilmour.slot." + p);
      if (p == "*") all_responses = true;
    }
  }
  if (!a.no_responses) channels.insert("gilmour.response.*");

  auto executor = std::make_shared<SerialExecutor>();
  auto opts = engine_options(g);
  opts.executor = executor;
  Printer printer(a, all_responses);
  auto engine = make_engine(g, std::move(opts));
  std::vector<Subscription> subs;
  for (auto& c : channels) {
    subs.push_back(engine->slot(c, [&printer](const Request& r) { printer.on_message(r); }));
  }
  start_engine(*engine, g);  // subscribes every slot before returning
  stop::graceful(true);
  std::string list;
  for (auto& c : channels) list += " " + c;
  std::cerr << "gilmour: listening on" + list + "\n" << std::flush;
  stop::wait();
  subs.clear();
  engine->stop(std::chrono::seconds(2));
  engine.reset();
  return kExitOk;  // interrupted or --count reached: both are a normal end
}

}  // namespace gilmour::cli
