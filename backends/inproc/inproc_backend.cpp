// The in-process backend: a Bus holding what a Redis server would hold
// (channels, patterns, keys with expiry, hashes, lists), shared by every
// backend made from it. Deliveries and callbacks are posted to each engine's
// I/O thread, so the Backend threading contract holds as over Redis.
#include <algorithm>
#include <chrono>
#include <deque>
#include <mutex>
#include <unordered_map>

#include "gilmour/backends/inproc.hpp"
#include "gilmour/error.hpp"
#include "topic.hpp"

namespace gilmour::inproc {

namespace {
using Clock = std::chrono::steady_clock;

/// One backend's attachment to the bus.
struct Client {
  IoContext* io = nullptr;
  BackendListener* listener = nullptr;
  bool open = false;  // read and written on the client's I/O thread only
};
}  // namespace

struct Bus::Impl {
  mutable std::mutex mu;
  std::unordered_map<std::string, std::vector<std::shared_ptr<Client>>> channels;
  std::unordered_map<std::string, std::vector<std::shared_ptr<Client>>> patterns;
  struct Key {
    std::string value;
    Clock::time_point expires;
  };
  std::unordered_map<std::string, Key> keys;
  std::deque<std::pair<Clock::time_point, std::string>> expiry;  // in insertion order
  std::unordered_map<std::string, std::vector<std::pair<std::string, std::string>>> hashes;
  std::unordered_map<std::string, std::deque<std::string>> lists;

  // mu held.
  void purge_expired(Clock::time_point now) {
    while (!expiry.empty() && expiry.front().first <= now) {
      auto it = keys.find(expiry.front().second);
      if (it != keys.end() && it->second.expires <= now) keys.erase(it);
      expiry.pop_front();
    }
  }

  template <typename F>
  void for_each_receiver(const std::string& channel, F&& f) const {
    auto it = channels.find(channel);
    if (it != channels.end()) {
      for (auto& c : it->second) f(c, std::string());
    }
    for (auto& [pattern, clients] : patterns) {
      if (!detail::glob_match(pattern, channel)) continue;
      for (auto& c : clients) f(c, pattern);
    }
  }

  static void remove_client(std::vector<std::shared_ptr<Client>>& v,
                            const std::shared_ptr<Client>& c) {
    auto it = std::find(v.begin(), v.end(), c);
    if (it != v.end()) v.erase(it);
  }
};

Bus::Bus() : impl_(std::make_shared<Impl>()) {}
Bus::~Bus() = default;

std::optional<std::string> Bus::get(const std::string& key) const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  auto it = impl_->keys.find(key);
  if (it == impl_->keys.end() || it->second.expires <= Clock::now()) return std::nullopt;
  return it->second.value;
}

std::vector<std::pair<std::string, std::string>> Bus::hash_get_all(const std::string& key) const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  auto it = impl_->hashes.find(key);
  if (it == impl_->hashes.end()) return {};
  return it->second;
}

void Bus::hash_set(const std::string& key, const std::string& field, const std::string& value) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  auto& h = impl_->hashes[key];
  for (auto& kv : h) {
    if (kv.first == field) {
      kv.second = value;
      return;
    }
  }
  h.emplace_back(field, value);
}

std::vector<std::string> Bus::list_range(const std::string& key) const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  auto it = impl_->lists.find(key);
  if (it == impl_->lists.end()) return {};
  return {it->second.begin(), it->second.end()};
}

std::int64_t Bus::receivers(const std::string& channel) const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  std::int64_t n = 0;
  impl_->for_each_receiver(channel, [&](const auto&, const std::string&) { ++n; });
  return n;
}

namespace {

class InprocBackend final : public Backend {
 public:
  explicit InprocBackend(std::shared_ptr<Bus> bus) : bus_(std::move(bus)), b_(bus_->impl()) {}
  ~InprocBackend() override { detach_all(); }

  void open(IoContext& io, BackendListener& listener, StatusCallback done) override {
    client_ = std::make_shared<Client>();
    client_->io = &io;
    client_->listener = &listener;
    client_->open = true;
    io_ = &io;
    later([done] { done(Status()); });
  }

  void close(StatusCallback done) override {
    detach_all();
    later([done] { done(Status()); });
  }

  void subscribe(const std::string& channel, bool pattern, StatusCallback done) override {
    {
      std::lock_guard<std::mutex> lock(b_->mu);
      auto& v = (pattern ? b_->patterns : b_->channels)[channel];
      if (std::find(v.begin(), v.end(), client_) == v.end()) v.push_back(client_);
      subs_.emplace_back(channel, pattern);
    }
    // The bus never loses its connection: confirmed at once (gilmour/backend.hpp).
    later([done] { done(Status()); });
  }

  void unsubscribe(const std::string& channel, bool pattern, StatusCallback done) override {
    {
      std::lock_guard<std::mutex> lock(b_->mu);
      unsubscribe_locked(channel, pattern);
      subs_.erase(std::remove(subs_.begin(), subs_.end(), std::make_pair(channel, pattern)),
                  subs_.end());
    }
    later([done] { done(Status()); });
  }

  void publish(const std::string& channel, std::string payload, CountCallback done) override {
    std::int64_t n = 0;
    {
      auto shared = std::make_shared<const std::string>(std::move(payload));
      std::lock_guard<std::mutex> lock(b_->mu);
      b_->for_each_receiver(channel,
                            [&](const std::shared_ptr<Client>& c, const std::string& pattern) {
                              ++n;
                              c->io->post([c, channel, pattern, shared] {
                                if (c->open) c->listener->on_message(channel, pattern, *shared);
                              });
                            });
    }
    later([done, n] { done(Status(), n); });
  }

  void acquire_lock(const std::string& key, std::chrono::seconds ttl, BoolCallback done) override {
    bool won = false;
    {
      auto now = Clock::now();
      std::lock_guard<std::mutex> lock(b_->mu);
      b_->purge_expired(now);
      auto it = b_->keys.find(key);
      if (it == b_->keys.end() || it->second.expires <= now) {
        b_->keys[key] = Bus::Impl::Key{key, now + ttl};
        b_->expiry.emplace_back(now + ttl, key);
        won = true;
      }
    }
    later([done, won] { done(Status(), won); });
  }

  void hash_set(const std::string& key, const std::string& field, const std::string& value,
                StatusCallback done) override {
    bus_->hash_set(key, field, value);
    later([done] { done(Status()); });
  }

  void hash_delete(const std::string& key, const std::string& field, StatusCallback done) override {
    {
      std::lock_guard<std::mutex> lock(b_->mu);
      auto it = b_->hashes.find(key);
      if (it != b_->hashes.end()) {
        auto& h = it->second;
        h.erase(std::remove_if(h.begin(), h.end(), [&](auto& kv) { return kv.first == field; }),
                h.end());
        if (h.empty()) b_->hashes.erase(it);
      }
    }
    later([done] { done(Status()); });
  }

  void hash_get_all(const std::string& key, HashCallback done) override {
    auto all = bus_->hash_get_all(key);
    later([done, all = std::move(all)]() mutable { done(Status(), std::move(all)); });
  }

  void list_push_trim(const std::string& key, std::string value, std::int64_t keep,
                      StatusCallback done) override {
    {
      std::lock_guard<std::mutex> lock(b_->mu);
      auto& l = b_->lists[key];
      l.push_front(std::move(value));
      while (keep >= 0 && static_cast<std::int64_t>(l.size()) > keep) l.pop_back();
    }
    later([done] { done(Status()); });
  }

  void subscriber_count(const std::string& channel, CountCallback done) override {
    std::int64_t n = 0;
    {
      std::lock_guard<std::mutex> lock(b_->mu);
      auto it = b_->channels.find(channel);
      if (it != b_->channels.end()) n = static_cast<std::int64_t>(it->second.size());
    }
    later([done, n] { done(Status(), n); });
  }

  std::string describe() const override { return "inproc"; }

 private:
  template <typename F>
  void later(F&& f) {
    io_->post(std::forward<F>(f));
  }

  void unsubscribe_locked(const std::string& channel, bool pattern) {
    auto& map = pattern ? b_->patterns : b_->channels;
    auto it = map.find(channel);
    if (it == map.end()) return;
    Bus::Impl::remove_client(it->second, client_);
    if (it->second.empty()) map.erase(it);
  }

  void detach_all() {
    if (!client_) return;
    std::lock_guard<std::mutex> lock(b_->mu);
    for (auto& [channel, pattern] : subs_) unsubscribe_locked(channel, pattern);
    subs_.clear();
    client_->open = false;
  }

  std::shared_ptr<Bus> bus_;
  std::shared_ptr<Bus::Impl> b_;
  std::shared_ptr<Client> client_;
  IoContext* io_ = nullptr;
  std::vector<std::pair<std::string, bool>> subs_;
};

}  // namespace

std::shared_ptr<Bus> default_bus() {
  static auto bus = std::make_shared<Bus>();
  return bus;
}

std::shared_ptr<Bus> make_bus() { return std::make_shared<Bus>(); }

std::shared_ptr<Backend> make_backend(std::shared_ptr<Bus> bus) {
  if (!bus) throw InvalidArgument("gilmour::inproc::make_backend: bus is null");
  return std::make_shared<InprocBackend>(std::move(bus));
}

}  // namespace gilmour::inproc
