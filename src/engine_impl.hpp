// The engine's internals (gilmour::detail::Engine). Not installed.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <future>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "codec.hpp"
#include "engine/engine_util.hpp"
#include "engine/outbound_budget.hpp"
#include "engine/response_route.hpp"
#include "gilmour/engine.hpp"
#include "gilmour/error_record.hpp"
#include "gilmour/executor.hpp"
#include "io_loop.hpp"
#include "serial_executor.hpp"

namespace gilmour {

struct Request::Impl {
  std::string topic;
  std::string channel;
  std::shared_ptr<const Message> message;
  /// The invocation's deadline (min of the handler's timeout and the
  /// requester's budget) and trace id (the envelope's, else the sender).
  detail::CallContext ctx;
  bool trace_on_wire = false;  // the envelope carried trace_id: answers echo it
};

namespace detail {

enum class HandlerKind { kSlot, kReply };

/// A count of things in flight that one thread can wait to see reach zero.
/// Adding and removing are lock-free; the mutex is taken only to wake a
/// waiter (after the count reached zero), so no wake-up is lost.
class InflightCount {
 public:
  void add() noexcept { n_.fetch_add(1, std::memory_order_relaxed); }
  void done() noexcept {
    if (n_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      std::lock_guard<std::mutex> lock(mu_);
      cv_.notify_all();
    }
  }
  std::int64_t value() const noexcept { return n_.load(std::memory_order_acquire); }
  /// True when the count is zero, waiting up to `timeout` for it.
  bool wait_zero(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [this] { return value() == 0; });
  }

 private:
  std::atomic<std::int64_t> n_{0};
  std::mutex mu_;
  std::condition_variable cv_;
};

/// A handler's queue bound: invocations handed off and not started yet, in
/// messages and payload bytes. The I/O thread adds, the worker that starts an
/// invocation (or stop(), refusing it) removes; both are relaxed atomics, so
/// the count may briefly lag, never drift. Signed: a start may be counted
/// before its hand-off is.
struct PendingCount {
  std::int64_t max_messages = 0;  // set at registration (Engine::bound_queue), positive
  std::int64_t max_bytes = 0;
  std::atomic<std::int64_t> messages{0};
  std::atomic<std::int64_t> bytes{0};

  /// At or over either bound: the next message is refused (and a grouped
  /// handler delays its lock attempt, see Engine::on_message).
  bool full() const noexcept {
    return messages.load(std::memory_order_relaxed) >= max_messages ||
           bytes.load(std::memory_order_relaxed) >= max_bytes;
  }
  void add(std::int64_t size) noexcept {
    messages.fetch_add(1, std::memory_order_relaxed);
    bytes.fetch_add(size, std::memory_order_relaxed);
  }
  void remove(std::int64_t size) noexcept {
    messages.fetch_sub(1, std::memory_order_relaxed);
    bytes.fetch_sub(size, std::memory_order_relaxed);
  }
};

/// One registered slot or reply handler.
struct HandlerEntry {
  HandlerKind kind = HandlerKind::kSlot;
  std::string topic;    // as registered
  std::string channel;  // channel or pattern subscribed
  bool pattern = false;
  std::string group;  // empty: ungrouped slot
  std::chrono::milliseconds timeout{0};
  SlotHandler slot;
  ReplyHandler reply;
  bool internal = false;                   // the health handler: not listed in health answers
  bool ordered = false;                    // one invocation at a time, in arrival order
  bool inline_delivery = false;            // runs on the I/O thread
  std::shared_ptr<SerialExecutor> serial;  // ordered only: one at a time, in arrival order
  mutable InflightCount invocations;       // handed off and not finished
  std::size_t max_pending = 0;             // HandlerOptions' bounds (0: the engine's)
  std::size_t max_pending_bytes = 0;
  PendingCount pending;             // handed off and not started
  std::int64_t deferred_locks = 0;  // I/O thread only: delayed lock attempts
  std::int64_t deferred_bytes = 0;  // and their payload bytes
  std::atomic<bool> active{true};
  bool attached = false;  // I/O thread only: added to Engine::subs_
};

/// Counts a handler invocation or an unanswered reply for stop()'s drain.
class InflightToken {
 public:
  explicit InflightToken(const std::shared_ptr<Engine>& e);
  ~InflightToken();
  InflightToken(const InflightToken&) = delete;
  InflightToken& operator=(const InflightToken&) = delete;

 private:
  std::weak_ptr<Engine> engine_;
};

/// Ends one invocation of a handler (counted from hand-off, for
/// Subscription::drain()) when it goes out of scope.
struct InvocationDone {
  const HandlerEntry& h;
  ~InvocationDone() { h.invocations.done(); }
};

/// One invocation handed to the executor, from hand-off until it ends.
/// Whoever claims it first owns its start: the worker that runs it, or
/// stop() refusing what is still queued. Engine::queued_ lists it (I/O
/// thread) so that stop() finds it.
struct Invocation {
  std::shared_ptr<HandlerEntry> handler;
  std::int64_t bytes = 0;  // payload size, counted in handler->pending
  std::atomic<bool> claimed{false};
  bool tracked = false;                                  // I/O thread only
  std::list<std::shared_ptr<Invocation>>::iterator pos;  // in Engine::queued_, when tracked

  /// True for the first caller only.
  bool claim() noexcept { return !claimed.exchange(true, std::memory_order_acq_rel); }
};

/// The state of one reply: shared by the handler's Response, the deferred
/// handle and the server-side timer. Exactly one answer is sent.
struct ReplyState : Invocation {
  enum Phase : int { kQueued, kRunning, kExpired };
  std::weak_ptr<Engine> engine;
  std::shared_ptr<const Request::Impl> request;
  std::atomic<bool> done{false};
  std::atomic<int> phase{kQueued};  // the handler starts only from kQueued
  bool budget_bound = false;        // the deadline is the requester's budget, not the handler's
  IoLoop::TimerId timer;            // I/O thread only
  std::unique_ptr<InflightToken> token;  // released on the I/O thread when answered
};

/// The state of one slot invocation (its timeout report).
struct SlotState : Invocation {
  std::atomic<bool> done{false};
  IoLoop::TimerId timer;
};

/// The library's own access to a Gilmour's engine (compositions and health
/// bulletins hold it weakly, so they never dangle).
struct EngineAccess {
  static std::weak_ptr<Engine> of(const Gilmour& g) { return g.impl_; }
};

class Engine final : public BackendListener, public std::enable_shared_from_this<Engine> {
 public:
  Engine(std::shared_ptr<Backend> backend, EngineOptions options);
  ~Engine() override;

  void start();
  bool stop(std::chrono::milliseconds drain);
  bool running() const noexcept { return state_.load() == kRunning; }

  Subscription add_handler(std::shared_ptr<HandlerEntry> entry);
  void remove_handler(const std::shared_ptr<HandlerEntry>& entry) noexcept;

  void signal(std::string_view topic, nlohmann::json data, SignalCallback done,
              SignalOptions options);
  /// Sends a request. `ctx` (else the thread's CallContext, if any) bounds
  /// its timeout and gives its trace id.
  void request(std::string_view topic, nlohmann::json data, std::function<void(Message)> complete,
               bool complete_on_io, RequestOptions options, const CallContext* ctx = nullptr);
  Message request_sync(std::string_view topic, nlohmann::json data, RequestOptions options);

  /// Answers a reply (any thread); false when it was answered already.
  bool finish_reply(const std::shared_ptr<ReplyState>& st, nlohmann::json data, int code);
  /// Publishes an answer and its error record (I/O thread).
  void send_answer(const std::shared_ptr<ReplyState>& st, const std::string& channel,
                   std::string payload, std::optional<ErrorRecord> record);
  /// Schedules the server-side deadline: 499 when it passes unanswered.
  void arm_reply_deadline(const std::shared_ptr<ReplyState>& st, std::chrono::milliseconds timeout);
  void report_error(ErrorRecord record);

  Stats stats() const;
  void enable_health_check();

  /// A timer on this engine's loop for the library's code outside the
  /// engine (composition deadlines). Any thread: `fn` runs on the executor
  /// at `when`, unless cancel_timer(slot) ran first. False when the engine
  /// is not running (nothing scheduled). Timers still pending when the
  /// engine stops never run.
  using SharedTimer = std::shared_ptr<IoLoop::TimerId>;
  bool schedule_at(IoLoop::Clock::time_point when, std::function<void()> fn,
                   const SharedTimer& slot);
  /// Cancels what schedule_at(…, slot) scheduled. Any thread.
  void cancel_timer(const SharedTimer& slot);

  /// Runs `op(backend, done)` on the I/O thread; the future gets what `done`
  /// is given. InvalidState when the engine is not running.
  template <typename T, typename Op>
  std::future<T> on_backend(const char* what, T on_fail, Op op) {
    require_running(what);
    auto p = std::make_shared<std::promise<T>>();
    auto f = p->get_future();
    bool posted = io_.try_post([self = shared_from_this(), p, op = std::move(op)]() mutable {
      op(*self->backend_, [p](T v) { p->set_value(std::move(v)); });
    });
    if (!posted) p->set_value(std::move(on_fail));
    return f;
  }
  std::vector<std::string> listened_channels() const;

  // BackendListener (I/O thread)
  void on_message(std::string_view channel, std::string_view pattern,
                  std::string_view payload) override;
  void on_connection_state(ConnectionState state, std::string_view detail) override;

  void inflight_add() noexcept { inflight_.add(); }
  void inflight_done() noexcept { inflight_.done(); }

  std::shared_ptr<Backend> backend_;
  EngineOptions opts_;
  std::shared_ptr<spdlog::logger> log_;
  std::string id_;
  std::string ident_;
  std::atomic<ErrorPolicy> policy_;

 private:
  enum State : int { kNew, kStarting, kRunning, kStopping, kStopped };
  struct ChannelSubs {
    bool pattern = false;
    bool confirmed = false;
    std::vector<std::shared_ptr<HandlerEntry>> handlers;
    std::vector<std::function<void(const Status&)>> waiters;
  };
  struct Pending {
    std::function<void(Message)> complete;
    IoLoop::TimerId timer;
  };
  struct Counters {
    std::atomic<std::uint64_t> requests_sent{0}, responses_received{0}, requests_handled{0},
        responses_sent{0}, signals_sent{0}, signals_received{0}, lock_lost{0}, handler_errors{0},
        server_timeouts{0}, client_timeouts{0}, no_listeners{0}, publish_failures{0},
        malformed_dropped{0}, oversized_dropped{0}, stray_responses{0}, errors_reported{0},
        reconnects{0}, slow_inline{0}, overloaded{0}, requests_failed_at_stop{0},
        signals_dropped_at_stop{0}, slow_consumer_dropped{0}, lock_deferred{0},
        requests_refused_at_stop{0}, inbound_dropped_at_stop{0}, expired_dropped{0};
  };

  /// The reply handler answering health pings on gilmour.health.<ident>.
  std::shared_ptr<HandlerEntry> make_health_entry();
  /// The reply handler answering gilmour.stats.<ident> with stats() (our
  /// extension, registered with health checks).
  std::shared_ptr<HandlerEntry> make_stats_entry();
  void require_running(const char* what) const;
  /// The trace id an outgoing message carries: `ctx`'s (else the thread's
  /// CallContext's), or its own sender when there is none.
  static std::string_view trace_for(std::string_view sender, const CallContext* ctx);
  // I/O thread
  void attach(const std::shared_ptr<HandlerEntry>& entry, std::function<void(const Status&)> done);
  void detach(const std::shared_ptr<HandlerEntry>& entry);
  /// Forgets every subscription (I/O thread), failing attach() waiters with `why`.
  void clear_subscriptions(const Status& why);
  /// I/O thread: sends request `seq` on `topic`'s channel (built here, not
  /// by the caller, to keep allocations on the thread that frees them).
  void start_request(std::uint64_t seq, std::string payload, std::string topic,
                     std::chrono::milliseconds timeout, bool confirm,
                     std::function<void(Message)> complete);
  void finish_request(std::uint64_t seq, Message m);
  void on_response(std::string_view channel, std::string_view payload);
  /// Takes a grouped handler's exclusion lock, then dispatches (I/O thread).
  void lock_then_dispatch(const std::shared_ptr<HandlerEntry>& h,
                          const std::shared_ptr<const Message>& msg, const std::string& channel,
                          std::int64_t bytes, const CallContext& sent);
  /// Hands a message to a handler, or refuses it when the handler's queue is
  /// full (I/O thread).
  void dispatch(const std::shared_ptr<HandlerEntry>& h, const std::shared_ptr<const Message>& msg,
                const std::string& channel, std::int64_t bytes, const CallContext& sent);
  // Inbound bounds (inbound_limits.cpp).
  /// Sets a handler's queue bounds from its options (0: the engine's).
  void bound_queue(HandlerEntry& e) const;
  /// Counts an invocation handed off: in its handler's queue and queued_.
  void track(const std::shared_ptr<Invocation>& inv);
  /// Forgets a finished invocation (I/O thread).
  void untrack(Invocation& inv);
  /// Claims a queued invocation for the worker starting it; false when
  /// stop() refused it already.
  static bool begin(Invocation& inv) noexcept;
  /// Answers a request whose handler's queue is full (503, I/O thread).
  void refuse_overloaded(const std::shared_ptr<ReplyState>& st, const std::string& channel);
  /// Drops a signal whose handler's queue is full.
  void drop_overloaded(const HandlerEntry& h, const std::string& channel);
  /// Answers 503 to every request still queued and drops every queued slot
  /// invocation, counting both (stop(), I/O thread, before the backend closes).
  void refuse_queued_at_stop();
  /// Publishes a 503 answer without an error record (I/O thread); false
  /// when the request was answered already.
  bool answer_unavailable(const std::shared_ptr<ReplyState>& st, std::string_view why);
  // Deadlines that travel (deadlines.cpp).
  /// The requester's deadline (arrival + `budget_ms`) and trace id, as sent.
  static CallContext sender_context(const EnvelopeExtras& extras);
  /// Sets `req.ctx` from the handler's `timeout` (counted from now) and what
  /// the sender asked; shortens `timeout` to the sender's budget and returns
  /// true when that is the earlier one.
  static bool bound_by_sender(Request::Impl& req, const CallContext& sent,
                              std::chrono::milliseconds& timeout);
  /// The reply's deadline passed (I/O timer, or a worker about to run it):
  /// a handler that never started and whose requester already gave up is
  /// dropped (Stats::expired_dropped); otherwise the answer is 499.
  void expire_reply(const std::shared_ptr<ReplyState>& st);
  /// On a worker, before the handler: false when the reply expired instead.
  bool begin_reply(const std::shared_ptr<ReplyState>& st);
  /// Hands a handler invocation to the executor (through the handler's own
  /// queue when it is ordered).
  void submit_for(const std::shared_ptr<HandlerEntry>& h, std::function<void()> task);
  /// Runs `task` on the executor. On the I/O thread, with the engine's own
  /// pool, the task is collected instead and handed over with the rest of
  /// the socket read (or drained batch of posts) that produced it, in
  /// flush_handoff(): one pool lock and one wake-up for the whole batch.
  void hand_off(std::function<void()> task);
  /// I/O thread, at the end of each loop phase (IoLoop::set_batch_end):
  /// hands what hand_off() collected to the pool in one submit_bulk().
  void flush_handoff();
  void run_reply(const std::shared_ptr<ReplyState>& st);
  void run_slot(const std::shared_ptr<HandlerEntry>& h,
                const std::shared_ptr<const Request::Impl>& req,
                const std::shared_ptr<SlotState>& st);
  void publish_error(const ErrorRecord& record);
  ErrorRecord make_record(const Request::Impl& req, int code, nlohmann::json backtrace) const;
  void warn_malformed(std::string_view channel, std::string_view reason);
  /// Drops (counts, warns rate-limited) an inbound payload over max_payload;
  /// true when it did.
  bool drop_oversized(std::string_view channel, std::size_t size);
  /// Throws InvalidArgument when an outgoing payload exceeds max_payload.
  void check_outgoing(const std::string& payload, const char* what) const;
  /// Warns at most once a second (per engine); counts what it suppressed.
  void warn_rate_limited(std::atomic<std::int64_t>& last, std::atomic<std::uint64_t>& suppressed,
                         const std::string& text);
  /// Runs an inline handler invocation on the I/O thread, timing it.
  template <typename F>
  void run_inline(const HandlerEntry& h, F&& f);
  bool wait_io(std::function<void(std::function<void(const Status&)>)> op,
               std::chrono::milliseconds timeout, Status* out);
  /// Takes room in budget_ for one outbound message of `bytes` (any thread),
  /// by overflow_policy; the error says why not (counted when overloaded).
  Status admit_outbound(std::size_t bytes, const char* what);
  /// True once stop() has ended outbound work: what is still queued for the
  /// I/O thread completes at once (503 "shutting down" / counted as dropped).
  bool outbound_closed() const noexcept { return outbound_closed_.load(); }
  /// stop(): completes every waiting request with 503 "shutting down" (I/O thread).
  void fail_pending_at_stop();

  IoLoop io_;
  std::shared_ptr<Executor> executor_;
  std::shared_ptr<ThreadPool> own_pool_;
  std::vector<std::function<void()>> handoff_;  // I/O thread only: see flush_handoff()
  std::atomic<int> state_{kNew};
  std::atomic<bool> io_started_{false};
  std::atomic<std::uint64_t> seq_{0};
  std::unique_ptr<ResponseRoute> route_;  // gilmour.response.<id>.<seq>
  bool health_enabled_ = false;           // guarded by reg_mu_

  mutable std::mutex reg_mu_;
  std::set<std::pair<std::string, std::string>> reply_keys_;  // (channel, group)
  std::vector<std::shared_ptr<HandlerEntry>> entries_;
  std::shared_ptr<HandlerEntry> health_entry_;

  // I/O thread only.
  std::unordered_map<std::string, ChannelSubs> subs_;
  std::unordered_map<std::uint64_t, Pending> pending_;
  bool connected_ = false;
  // Between kDisconnected and kReconnected: add_handler() does not wait for a
  // confirmation that comes only when the backend is back.
  std::atomic<bool> backend_down_{false};
  std::string lookup_key_;                         // on_message's scratch key
  std::list<std::shared_ptr<Invocation>> queued_;  // handed to the executor, not finished

  Counters counters_;
  InflightCount inflight_;          // for stop()'s drain
  OutboundBudget budget_;           // requests and signals not yet completed
  InflightCount signals_inflight_;  // signals not yet published, for stop()'s drain
  std::atomic<bool> outbound_closed_{false};
  std::atomic<std::int64_t> last_outbound_log_{0};  // the outbound bound's warning
  std::atomic<std::uint64_t> outbound_suppressed_{0};
  std::atomic<std::int64_t> last_malformed_log_{0};
  std::atomic<std::uint64_t> malformed_suppressed_{0};
  std::atomic<std::int64_t> last_oversized_log_{0};
  std::atomic<std::uint64_t> oversized_suppressed_{0};
  std::atomic<std::int64_t> last_slow_log_{0};
  std::atomic<std::uint64_t> slow_suppressed_{0};
  std::atomic<std::int64_t> last_overload_log_{0};
  std::atomic<std::uint64_t> overload_suppressed_{0};
};

}  // namespace detail
}  // namespace gilmour
