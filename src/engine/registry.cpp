// The handler registry: add/remove handlers, and the subscription set they
// share on the backend (attach/detach on the I/O thread).
#include <spdlog/spdlog.h>

#include <algorithm>

#include "codec.hpp"
#include "engine/engine_util.hpp"
#include "engine_impl.hpp"
#include "gilmour/error.hpp"
#include "topic.hpp"

namespace gilmour::detail {

Subscription Engine::add_handler(std::shared_ptr<HandlerEntry> entry) {
  if (state_.load() >= kStopping) {
    throw InvalidState("gilmour: cannot add a handler for '" + entry->topic +
                       "': the engine is stopping or stopped");
  }
  bound_queue(*entry);
  if (entry->ordered && !entry->inline_delivery) {
    entry->serial = std::make_shared<SerialExecutor>(executor_);
  }
  {
    std::lock_guard<std::mutex> lock(reg_mu_);
    if (entry->kind == HandlerKind::kReply) {
      auto key = std::make_pair(entry->channel, entry->group);
      if (reply_keys_.count(key)) {
        throw InvalidArgument("gilmour: reply_to(): a handler for topic '" + entry->topic +
                              "' and group '" + entry->group + "' already exists");
      }
      reply_keys_.insert(std::move(key));
    }
    entries_.push_back(entry);
  }
  Subscription sub;
  sub.engine_ = weak_from_this();
  sub.entry_ = entry;
  int s = state_.load();
  if (s == kRunning || s == kStarting) {
    if (io_.on_io_thread()) {
      attach(entry, [](const Status&) {});
    } else if (backend_down_.load()) {
      // The backend confirms the subscription once it is back; no wait.
      log_->info("gilmour: subscription to {} is confirmed when {} is back", entry->channel,
                 backend_->describe());
      io_.post([self = shared_from_this(), entry] { self->attach(entry, [](const Status&) {}); });
    } else {
      Status st;
      bool ok = wait_io([this, entry](auto done) { attach(entry, std::move(done)); },
                        opts_.connect_timeout, &st);
      if (!ok || !st) {
        log_->warn(
            "gilmour: subscription to {} not confirmed yet ({}); it stands and is "
            "restored when the backend reconnects",
            entry->channel, ok ? st.message() : "timed out");
      }
    }
  }
  return sub;
}

void Engine::remove_handler(const std::shared_ptr<HandlerEntry>& entry) noexcept {
  if (!entry->active.exchange(false)) return;
  {
    std::lock_guard<std::mutex> lock(reg_mu_);
    if (entry->kind == HandlerKind::kReply) reply_keys_.erase({entry->channel, entry->group});
    entries_.erase(std::remove(entries_.begin(), entries_.end(), entry), entries_.end());
  }
  int s = state_.load();
  if (s == kRunning || s == kStarting) {
    try {
      io_.post([self = shared_from_this(), entry] { self->detach(entry); });
    } catch (...) {  // allocation failure: the handler stays inactive
    }
  }
}

void Engine::attach(const std::shared_ptr<HandlerEntry>& entry,
                    std::function<void(const Status&)> done) {
  if (state_.load() >= kStopping) {
    done(Status::error(StatusCode::kClosing, "engine stopping"));
    return;
  }
  if (entry->attached || !entry->active.load() || !connected_) {
    done(Status());
    return;
  }
  entry->attached = true;
  auto [it, inserted] = subs_.try_emplace(entry->channel);
  auto& subs = it->second;
  subs.handlers.push_back(entry);
  if (!inserted) {
    if (subs.confirmed) {
      done(Status());
    } else {
      subs.waiters.push_back(std::move(done));
    }
    return;
  }
  subs.pattern = entry->pattern;
  subs.waiters.push_back(std::move(done));
  backend_->subscribe(entry->channel, entry->pattern,
                      [self = shared_from_this(), key = entry->channel](const Status& st) {
                        auto it = self->subs_.find(key);
                        if (it == self->subs_.end()) return;
                        if (st) it->second.confirmed = true;
                        auto waiters = std::move(it->second.waiters);
                        it->second.waiters.clear();
                        for (auto& w : waiters) w(st);
                      });
}

void Engine::detach(const std::shared_ptr<HandlerEntry>& entry) {
  if (!entry->attached) return;
  entry->attached = false;
  auto it = subs_.find(entry->channel);
  if (it == subs_.end()) return;
  auto& hs = it->second.handlers;
  hs.erase(std::remove(hs.begin(), hs.end(), entry), hs.end());
  if (!hs.empty()) return;
  for (auto& w : it->second.waiters) w(Status::error(StatusCode::kInvalid, "unsubscribed"));
  bool pattern = it->second.pattern;
  subs_.erase(it);
  backend_->unsubscribe(entry->channel, pattern, [](const Status&) {});
}

}  // namespace gilmour::detail
