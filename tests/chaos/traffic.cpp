#include "chaos/traffic.hpp"

namespace gilmour::chaos {

Traffic::Traffic(Gilmour& g, Topics topics, int rate, int signal_every,
                 std::chrono::milliseconds timeout)
    : g_(g),
      topics_(std::move(topics)),
      period_(std::chrono::microseconds(1000000 / std::max(rate, 1))),
      signal_every_(std::max(signal_every, 1)),
      timeout_(timeout) {}

Traffic::~Traffic() { stop(); }

void Traffic::start() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = false;
  }
  sender_ = std::thread([this] { run(); });
}

void Traffic::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (sender_.joinable()) sender_.join();
}

void Traffic::run() {
  // Paced at the rate; a sender that fell more than a second behind (a
  // loaded machine) starts again from now rather than bursting.
  auto next = Clock::now();
  for (std::uint64_t tick = 0;; ++tick) {
    send_request();
    if (tick % static_cast<std::uint64_t>(signal_every_) == 0) send_signal();
    next += period_;
    auto now = Clock::now();
    if (next < now - std::chrono::seconds(1)) next = now;
    std::unique_lock<std::mutex> lock(mu_);
    if (cv_.wait_until(lock, next, [this] { return stopping_; })) return;
  }
}

void Traffic::send_request() {
  std::int64_t id = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    id = static_cast<std::int64_t>(requests_.size());
    requests_.push_back({});
    requests_.back().sent = Clock::now();
    ++open_;
  }
  try {
    g_.request(
        topics_.request, id, [this, id](const Message& m) { on_answer(id, m); },
        RequestOptions{}.set_timeout(timeout_));
  } catch (const std::exception&) {
    std::lock_guard<std::mutex> lock(mu_);
    requests_[static_cast<std::size_t>(id)].threw = true;
    --open_;
    cv_.notify_all();
  }
}

void Traffic::send_signal() {
  std::int64_t id = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    id = static_cast<std::int64_t>(signals_.size());
    signals_.emplace_back();
    ++open_;
  }
  auto done = [this, id](const SignalResult& r) {
    std::lock_guard<std::mutex> lock(mu_);
    auto& s = signals_[static_cast<std::size_t>(id)];
    if (!s.done) --open_;
    s.done = true;
    s.published = r.ok();
    s.receivers = r.receivers;
    cv_.notify_all();
  };
  try {
    g_.signal(topics_.signal, nlohmann::json{{"id", id}}, done);
  } catch (const std::exception&) {
    std::lock_guard<std::mutex> lock(mu_);
    signals_[static_cast<std::size_t>(id)].threw = true;
    --open_;
    cv_.notify_all();
  }
}

void Traffic::on_answer(std::int64_t id, const Message& m) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& r = requests_[static_cast<std::size_t>(id)];
  if (++r.answers == 1) {
    --open_;
    r.answered = Clock::now();
    r.code = m.code();
    r.wrong = m.ok() && m.data() != nlohmann::json(id);
  }
  cv_.notify_all();
}

std::int64_t Traffic::next_request_id() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<std::int64_t>(requests_.size());
}

std::int64_t Traffic::next_signal_id() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<std::int64_t>(signals_.size());
}

std::optional<Clock::time_point> Traffic::wait_first_ok_after(Clock::time_point since,
                                                              std::chrono::milliseconds timeout) {
  std::optional<Clock::time_point> first;
  // Requests are sent in time order: only those from the first sent at or
  // after `since` are looked at.
  std::size_t from = 0;
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, timeout, [&] {
    while (from < requests_.size() && requests_[from].sent < since) ++from;
    for (std::size_t i = from; i < requests_.size(); ++i) {
      const auto& r = requests_[i];
      if (r.answers > 0 && r.code == code::kOk && (!first || r.answered < *first)) {
        first = r.answered;
      }
    }
    return first.has_value();
  });
  return first;
}

std::size_t Traffic::unanswered_locked() const {
  std::size_t n = 0;
  for (const auto& r : requests_) n += r.answers == 0 && !r.threw;
  return n;
}

std::size_t Traffic::wait_all_done(Clock::time_point deadline) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_until(lock, deadline, [this] { return open_ == 0; });
  return unanswered_locked();
}

Clock::time_point Traffic::last_sent() const {
  std::lock_guard<std::mutex> lock(mu_);
  return requests_.empty() ? Clock::time_point{} : requests_.back().sent;
}

std::vector<RequestRecord> Traffic::requests(std::int64_t from, std::int64_t to) const {
  std::lock_guard<std::mutex> lock(mu_);
  return {requests_.begin() + from, requests_.begin() + to};
}

std::vector<SignalRecord> Traffic::signals(std::int64_t from, std::int64_t to) const {
  std::lock_guard<std::mutex> lock(mu_);
  return {signals_.begin() + from, signals_.begin() + to};
}

}  // namespace gilmour::chaos
