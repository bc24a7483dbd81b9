// Helpers shared by the engine's files: running user code, joining backend
// callbacks, the handler-thread marker. Not installed.
#pragma once

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "gilmour/backend.hpp"
#include "gilmour/message.hpp"

namespace gilmour::detail {

class Engine;
struct HandlerEntry;

/// What a request made on this thread inherits (docs/reliability.md,
/// "Deadlines"): the deadline of the work it is part of and its trace id.
struct CallContext {
  /// Steady-clock deadline; none = no bound beyond the request's own timeout.
  std::optional<std::chrono::steady_clock::time_point> deadline;
  /// Empty: a request starts its own trace (its sender).
  std::string trace_id;

  /// Time left before the deadline (zero once passed); `fallback` without one.
  std::chrono::milliseconds remaining_or(std::chrono::milliseconds fallback) const {
    if (!deadline) return fallback;
    auto left =
        std::chrono::ceil<std::chrono::milliseconds>(*deadline - std::chrono::steady_clock::now());
    return std::max(std::chrono::milliseconds(0), std::min(left, fallback));
  }
};

/// The context of the handler or composition step the current thread runs.
inline thread_local const CallContext* tl_call_context = nullptr;

/// Sets tl_call_context for a scope (restoring the previous one).
class ContextScope {
 public:
  explicit ContextScope(const CallContext* c) : prev_(tl_call_context) { tl_call_context = c; }
  ~ContextScope() { tl_call_context = prev_; }
  ContextScope(const ContextScope&) = delete;
  ContextScope& operator=(const ContextScope&) = delete;

 private:
  const CallContext* prev_;
};

/// The engine whose handler the current thread runs, if any.
inline thread_local const Engine* tl_handler_engine = nullptr;

/// The handler the current thread runs, if any.
inline thread_local const HandlerEntry* tl_handler_entry = nullptr;

/// Marks the current thread as running handler `h` of `e` (stop() or
/// drain() from there would wait for itself), in context `ctx` (what the
/// handler's own requests inherit).
class HandlerScope {
 public:
  HandlerScope(const Engine* e, const HandlerEntry* h, const CallContext* ctx)
      : prev_(tl_handler_engine), prev_entry_(tl_handler_entry), context_(ctx) {
    tl_handler_engine = e;
    tl_handler_entry = h;
  }
  ~HandlerScope() {
    tl_handler_engine = prev_;
    tl_handler_entry = prev_entry_;
  }
  HandlerScope(const HandlerScope&) = delete;
  HandlerScope& operator=(const HandlerScope&) = delete;

 private:
  const Engine* prev_;
  const HandlerEntry* prev_entry_;
  ContextScope context_;
};

/// The 499 a request or a reply gets at its deadline.
inline Message timeout_message() { return Message("Execution timed out", code::kTimeout); }

/// Runs user code (a handler, callback or hook); returns the error text when
/// it threw, nothing otherwise. No exception leaves it.
template <typename F>
std::optional<std::string> run_user(F&& f) noexcept {
  try {
    f();
    return std::nullopt;
  } catch (const std::exception& e) {
    return std::string(e.what());
  } catch (...) {
    return std::string("unknown exception");
  }
}

/// Runs a user callback and logs (rather than propagates) what it throws.
template <typename F>
void call_logged(const std::shared_ptr<spdlog::logger>& log, const char* what, F&& f) noexcept {
  if (auto err = run_user(std::forward<F>(f))) log->warn("gilmour: {} threw: {}", what, *err);
}

/// Joins backend callbacks: `done` runs once, with the first error (or ok),
/// after every callback handed out by part() has run and seal() was called.
class StatusJoin {
 public:
  explicit StatusJoin(std::function<void(const Status&)> done) : s_(std::make_shared<Shared>()) {
    s_->done = std::move(done);
  }
  std::function<void(const Status&)> part() {
    ++s_->remaining;
    return [s = s_](const Status& st) { s->arrive(st); };
  }
  void seal() { s_->arrive(Status()); }

 private:
  struct Shared {
    std::size_t remaining = 1;  // the seal
    Status first;
    std::function<void(const Status&)> done;
    void arrive(const Status& st) {
      if (!st && first.ok()) first = st;
      if (--remaining == 0) done(first);
    }
  };
  std::shared_ptr<Shared> s_;
};

}  // namespace gilmour::detail
