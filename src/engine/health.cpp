// Health: the handler answering pings on gilmour.health.<ident>, and the
// registration in gilmour.known_host.health.
#include <spdlog/spdlog.h>

#include <algorithm>

#include "codec.hpp"
#include "engine/engine_util.hpp"
#include "engine_impl.hpp"
#include "gilmour/error.hpp"
#include "topic.hpp"

namespace gilmour::detail {

std::shared_ptr<HandlerEntry> Engine::make_health_entry() {
  auto h = std::make_shared<HandlerEntry>();
  h->kind = HandlerKind::kReply;
  h->topic = std::string(kHealthPrefix) + ident_;
  h->channel = h->topic;
  h->group = std::string(kHealthGroup);
  h->internal = true;
  h->reply = [this](const Request&, Response& res) { res.set_data(listened_channels()); };
  return h;
}

std::shared_ptr<HandlerEntry> Engine::make_stats_entry() {
  auto h = std::make_shared<HandlerEntry>();
  h->kind = HandlerKind::kReply;
  h->topic = std::string(kStatsPrefix) + ident_;
  h->channel = h->topic;
  h->group = std::string(kHealthGroup);
  h->internal = true;
  h->reply = [this](const Request&, Response& res) {
    res.set_data(nlohmann::json{{"ident", ident_}, {"stats", to_json(stats())}});
  };
  return h;
}

std::vector<std::string> Engine::listened_channels() const {
  std::lock_guard<std::mutex> lock(reg_mu_);
  std::vector<std::string> out;
  for (auto& e : entries_) {
    if (!e->internal && std::find(out.begin(), out.end(), e->channel) == out.end()) {
      out.push_back(e->channel);
    }
  }
  return out;
}

void Engine::enable_health_check() {
  bool now_running;
  {
    std::lock_guard<std::mutex> lock(reg_mu_);
    if (health_enabled_) return;
    health_enabled_ = true;
    now_running = state_.load() == kRunning;
  }
  if (!now_running) return;
  auto h = make_health_entry();
  {
    std::lock_guard<std::mutex> lock(reg_mu_);
    health_entry_ = h;
  }
  add_handler(h).detach();
  add_handler(make_stats_entry()).detach();
  Status st;
  wait_io(
      [this](auto done) {
        backend_->hash_set(std::string(kHealthHash), ident_, "true", std::move(done));
      },
      opts_.connect_timeout, &st);
}

}  // namespace gilmour::detail
