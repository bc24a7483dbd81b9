// Composition: execution of step trees on the engine's public callback API.
//
// Execution is continuation passing: each step is started with a
// continuation (`Next`) that receives its outcome exactly once, on whatever
// thread completed it. Sequential kinds (pipe, andand, oror, batch) loop in a
// trampoline while their steps complete synchronously (local lambdas), so a
// long pipe of lambdas does not grow the stack; parallel collects outcomes
// into slots and continues on the last one. A Run is shared by every step of
// one execution: it owns the user's completion, delivers it once (an atomic
// flag settles the race between the last step and the overall timeout), and
// once finished stops every further step from starting.
#include "gilmour/composition.hpp"

#include <algorithm>
#include <atomic>
#include <optional>

#include "engine_impl.hpp"
#include "gilmour/executor.hpp"
#include "topic.hpp"

namespace gilmour {

struct Composition::Node {
  Kind kind = Kind::kPipe;
  // kRequest
  std::weak_ptr<gilmour::detail::Engine> engine;  // never dangles: 503 once it is gone
  std::string topic;
  nlohmann::json with;  // null or an object
  RequestOptions options;
  // The engine whose loop keeps an execution's deadline: a request node's
  // own, a group's first step's that has one (`has_engine`).
  std::weak_ptr<gilmour::detail::Engine> timer_engine;
  bool has_engine = false;
  // kLambda
  compose::detail::AsyncFn fn;
  // groups
  std::vector<Composition> steps;
  bool record = false;
};

struct CompositionAccess {
  static Composition make(std::shared_ptr<const Composition::Node> node) {
    return Composition(std::move(node));
  }
  static const std::shared_ptr<const Composition::Node>& node(const Composition& c) {
    return c.node_;
  }
};

namespace {

using Kind = Composition::Kind;
using NodePtr = std::shared_ptr<const Composition::Node>;
using Next = std::function<void(Message)>;
using Clock = std::chrono::steady_clock;

Message timeout_message() { return Message("Execution timed out", code::kTimeout); }

// -------------------------------------------------------------------- run

/// One execution: delivers the user's completion exactly once.
class Run {
 public:
  explicit Run(Completion done) : done_(std::move(done)) {}
  ~Run() {
    // Every continuation was dropped without an outcome (an engine dropped a
    // request callback, e.g. racing stop()); still complete, once.
    finish(Message("composition abandoned: a step never completed", code::kHandlerError));
  }
  Run(const Run&) = delete;
  Run& operator=(const Run&) = delete;

  bool finished() const noexcept { return finished_.load(std::memory_order_acquire); }

  /// True when the execution is over: finished, or its deadline passed (it
  /// completes with 499 now). Checked before every step starts, so that the
  /// deadline holds between steps even without a timer (no running engine).
  bool over() noexcept {
    if (finished()) return true;
    if (!ctx.deadline || Clock::now() < *ctx.deadline) return false;
    finish(timeout_message());
    return true;
  }

  /// The execution's deadline and trace id, which every step inherits. Set
  /// before the first step starts, read-only after.
  gilmour::detail::CallContext ctx;

  /// How to cancel the deadline's timer; set before it is scheduled.
  void set_cancel(std::function<void()> cancel) { cancel_timer_ = std::move(cancel); }

  void finish(Message m) noexcept {
    if (finished_.exchange(true, std::memory_order_acq_rel)) return;
    if (cancel_timer_) cancel_timer_();
    auto done = std::move(done_);
    done_ = nullptr;
    m.set_sender({});
    try {
      done(std::move(m));
    } catch (...) {  // documented: a throwing completion is dropped
    }
  }

 private:
  std::atomic<bool> finished_{false};
  Completion done_;
  // Written before the timer is scheduled (and before any step starts).
  std::function<void()> cancel_timer_;
};

using RunPtr = std::shared_ptr<Run>;

void exec(const NodePtr& node, const RunPtr& run, nlohmann::json input, Next k);

Message strip(Message m) {
  m.set_sender({});
  return m;
}

// ----------------------------------------------------------------- leaves

void exec_request(const NodePtr& node, const RunPtr& run, nlohmann::json input, const Next& k) {
  if (run->finished()) return;
  if (input.is_object() && node->with.is_object()) input.update(node->with);
  std::optional<Message> failed;
  try {
    auto engine = node->engine.lock();
    if (!engine) throw InvalidState("gilmour: composition: its engine was destroyed");
    engine->request(
        node->topic, std::move(input),
        [run, k](Message m) {
          if (run->finished()) return;  // the overall timeout won: ignore
          k(strip(std::move(m)));
        },
        node->options.inline_callback, node->options, &run->ctx);
  } catch (const InvalidState& e) {  // not started, or stopped
    failed = Message(std::string(e.what()), code::kUnavailable);
  } catch (const std::exception& e) {
    failed = Message(std::string(e.what()), code::kHandlerError);
  }
  // Outside the handler: the continuation may run the rest of the tree.
  if (failed) k(std::move(*failed));
}

/// The completion handed to an asynchronous lambda: fires once; when every
/// copy is dropped uncalled, completes the step with 500.
class LambdaDone {
 public:
  LambdaDone(RunPtr run, Next k) : run_(std::move(run)), k_(std::move(k)) {}
  ~LambdaDone() {
    fire(Message("composition: lambda dropped its completion without calling it",
                 code::kHandlerError));
  }
  LambdaDone(const LambdaDone&) = delete;
  LambdaDone& operator=(const LambdaDone&) = delete;

  void fire(Message m) noexcept {
    if (fired_.exchange(true, std::memory_order_acq_rel)) return;
    auto k = std::move(k_);
    k_ = nullptr;
    if (run_->finished()) return;
    k(strip(std::move(m)));
  }

 private:
  std::atomic<bool> fired_{false};
  RunPtr run_;
  Next k_;
};

std::string exception_text(std::exception_ptr e) {
  try {
    std::rethrow_exception(std::move(e));
  } catch (const std::exception& ex) {
    return ex.what();
  } catch (...) {
    return "unknown exception";
  }
}

void exec_lambda(const NodePtr& node, const RunPtr& run, nlohmann::json input, Next k) {
  if (run->finished()) return;
  auto guard = std::make_shared<LambdaDone>(run, std::move(k));
  std::exception_ptr error;
  try {
    gilmour::detail::ContextScope scope(&run->ctx);  // its own requests inherit
    node->fn(Message(std::move(input)), [guard](Message m) { guard->fire(std::move(m)); });
  } catch (...) {
    error = std::current_exception();
  }
  if (error) guard->fire(Message(exception_text(error), code::kHandlerError));
}

/// Completes `run` with 499 at `when` on the loop of `engine` (the
/// composition's first request step's, else ExecuteOptions::engine) when it
/// runs. There is no other timer: without a running engine the deadline is
/// checked before each step starts (Run::over()).
void arm_deadline(const std::weak_ptr<gilmour::detail::Engine>& weak_engine, const RunPtr& run,
                  Clock::time_point when) {
  auto engine = weak_engine.lock();
  if (!engine) return;
  auto slot = std::make_shared<gilmour::detail::IoLoop::TimerId>();
  run->set_cancel([weak_engine, slot] {
    if (auto e = weak_engine.lock()) e->cancel_timer(slot);
  });
  engine->schedule_at(
      when,
      [weak = std::weak_ptr<Run>(run)] {
        if (auto r = weak.lock()) r->finish(timeout_message());
      },
      slot);
}

// ------------------------------------------------------------- sequential

/// pipe, andand, oror and batch: one step at a time.
class Sequence : public std::enable_shared_from_this<Sequence> {
 public:
  Sequence(NodePtr node, RunPtr run, nlohmann::json input, Next k)
      : node_(std::move(node)), run_(std::move(run)), input_(std::move(input)), k_(std::move(k)) {
    if (node_->kind == Kind::kBatch && node_->record) records_ = nlohmann::json::array();
  }

  /// Starts steps while they complete synchronously (the trampoline).
  void advance() {
    const auto& steps = node_->steps;
    for (;;) {
      if (run_->finished()) return;
      if (index_ == steps.size()) {
        complete();
        return;
      }
      nlohmann::json in =
          node_->kind == Kind::kPipe && index_ > 0 ? std::move(last_.data()) : input_;
      step_returned_.store(false, std::memory_order_relaxed);
      auto self = shared_from_this();
      exec(CompositionAccess::node(steps[index_]), run_, std::move(in), [self](Message m) {
        self->last_ = std::move(m);
        // The starter has returned already: continue here.
        if (self->step_returned_.exchange(true, std::memory_order_acq_rel)) {
          if (self->step_done()) self->advance();
        }
      });
      // The step is still running: its continuation will advance.
      if (!step_returned_.exchange(true, std::memory_order_acq_rel)) return;
      if (!step_done()) return;
    }
  }

 private:
  /// Books the outcome in last_; false when the sequence has completed.
  bool step_done() {
    ++index_;
    const int c = last_.code();
    bool stop = false;
    switch (node_->kind) {
      case Kind::kPipe:
      case Kind::kAndAnd:
        stop = c != code::kOk;
        break;
      case Kind::kOrOr:
        stop = c == code::kOk;
        break;
      case Kind::kBatch:
        if (node_->record) {
          records_.push_back({{"data", last_.data()}, {"code", c}});
          max_code_ = std::max(max_code_, c);
        }
        break;
      default:
        break;
    }
    if (stop || index_ == node_->steps.size()) {
      complete();
      return false;
    }
    return true;
  }

  void complete() {
    if (run_->finished()) return;
    Message result;
    if (node_->steps.empty()) {
      result = records_.is_array() ? Message(nlohmann::json::array()) : Message(std::move(input_));
    } else if (records_.is_array()) {
      result = Message(std::move(records_), max_code_);
    } else {
      result = std::move(last_);
    }
    auto k = std::move(k_);
    k_ = nullptr;
    k(std::move(result));
  }

  NodePtr node_;
  RunPtr run_;
  nlohmann::json input_;
  Next k_;
  std::size_t index_ = 0;
  Message last_;
  nlohmann::json records_;  // array when recording
  int max_code_ = code::kOk;
  std::atomic<bool> step_returned_{false};
};

// --------------------------------------------------------------- parallel

class Parallel {
 public:
  Parallel(std::size_t n, Next k) : outcomes_(n), remaining_(n), k_(std::move(k)) {}

  void set(std::size_t i, Message m) {
    outcomes_[i] = std::move(m);
    if (remaining_.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
    auto data = nlohmann::json::array();
    int max_code = code::kOk;
    for (auto& o : outcomes_) {
      max_code = std::max(max_code, o.code());
      data.push_back(std::move(o.data()));
    }
    auto k = std::move(k_);
    k_ = nullptr;
    k(Message(std::move(data), max_code));
  }

 private:
  std::vector<Message> outcomes_;
  std::atomic<std::size_t> remaining_;
  Next k_;
};

void exec_parallel(const NodePtr& node, const RunPtr& run, const nlohmann::json& input, Next k) {
  if (run->finished()) return;
  const auto n = node->steps.size();
  if (n == 0) {
    k(Message(nlohmann::json::array()));
    return;
  }
  auto state = std::make_shared<Parallel>(n, std::move(k));
  for (std::size_t i = 0; i < n; ++i) {
    if (run->finished()) return;
    exec(CompositionAccess::node(node->steps[i]), run, input,
         [state, i](Message m) { state->set(i, std::move(m)); });
  }
}

void exec(const NodePtr& node, const RunPtr& run, nlohmann::json input, Next k) {
  if (run->over()) return;
  switch (node->kind) {
    case Kind::kRequest:
      exec_request(node, run, std::move(input), k);
      return;
    case Kind::kLambda:
      exec_lambda(node, run, std::move(input), std::move(k));
      return;
    case Kind::kParallel:
      exec_parallel(node, run, input, std::move(k));
      return;
    default:
      if (run->finished()) return;
      std::make_shared<Sequence>(node, run, std::move(input), std::move(k))->advance();
      return;
  }
}

// ------------------------------------------------------------ construction

NodePtr empty_pipe() {
  static const NodePtr empty = std::make_shared<const Composition::Node>();
  return empty;
}

Composition make_group(Kind kind, std::vector<Composition> steps, bool record = false) {
  auto n = std::make_shared<Composition::Node>();
  n->kind = kind;
  n->steps = std::move(steps);
  n->record = record;
  for (const auto& s : n->steps) {
    const auto& child = CompositionAccess::node(s);
    if (!child->has_engine) continue;
    n->timer_engine = child->timer_engine;
    n->has_engine = true;
    break;
  }
  return CompositionAccess::make(std::move(n));
}

Composition make_lambda(compose::detail::AsyncFn fn) {
  auto n = std::make_shared<Composition::Node>();
  n->kind = Kind::kLambda;
  n->fn = std::move(fn);
  return CompositionAccess::make(std::move(n));
}

void describe_into(const Composition::Node& n, std::string& out) {
  const char* sep = nullptr;
  switch (n.kind) {
    case Kind::kRequest:
      out += n.topic;
      if (n.with.is_object()) out += "+" + n.with.dump();
      return;
    case Kind::kLambda:
      out += "<lambda>";
      return;
    case Kind::kPipe:
      sep = " | ";
      break;
    case Kind::kAndAnd:
      sep = " && ";
      break;
    case Kind::kOrOr:
      sep = " || ";
      break;
    case Kind::kBatch:
      sep = "; ";
      break;
    case Kind::kParallel:
      sep = " & ";
      break;
  }
  out += '(';
  for (std::size_t i = 0; i < n.steps.size(); ++i) {
    if (i) out += sep;
    describe_into(*CompositionAccess::node(n.steps[i]), out);
  }
  out += ')';
  if (n.kind == Kind::kBatch && n.record) out += '>';
}

}  // namespace

// ------------------------------------------------------------- Composition

Composition::Composition() : node_(empty_pipe()) {}

Composition::Composition(std::shared_ptr<const Node> node) : node_(std::move(node)) {}

Composition::Kind Composition::kind() const noexcept { return node_->kind; }

const std::vector<Composition>& Composition::steps() const noexcept { return node_->steps; }

std::string Composition::describe() const {
  std::string out;
  describe_into(*node_, out);
  return out;
}

void Composition::execute(nlohmann::json input, Completion done, ExecuteOptions options) const {
  if (!done) throw InvalidArgument("gilmour: Composition::execute(): null callback");
  if (options.timeout.count() < 0) {
    throw InvalidArgument("gilmour: Composition::execute(): negative timeout");
  }
  auto run = std::make_shared<Run>(std::move(done));
  // Inside a handler or another composition's lambda: its deadline and trace.
  if (const auto* outer = gilmour::detail::tl_call_context) run->ctx = *outer;
  if (run->ctx.trace_id.empty()) run->ctx.trace_id = gilmour::detail::make_uuid();
  if (options.timeout.count() > 0) {
    // "Forever" (milliseconds::max()) must not overflow the clock.
    auto timeout =
        std::min(options.timeout, std::chrono::milliseconds(std::chrono::hours(24 * 365 * 100)));
    auto own = Clock::now() + timeout;
    if (!run->ctx.deadline || own < *run->ctx.deadline) run->ctx.deadline = own;
  }
  if (run->ctx.deadline) {
    auto timer_engine = node_->timer_engine;
    if (!node_->has_engine && options.engine != nullptr) {
      timer_engine = gilmour::detail::EngineAccess::of(*options.engine);
    }
    arm_deadline(timer_engine, run, *run->ctx.deadline);
  }
  exec(node_, run, std::move(input), [run](Message m) {
    if (!run->over()) run->finish(std::move(m));  // past the deadline: 499
  });
}

std::future<Message> Composition::execute(nlohmann::json input, ExecuteOptions options) const {
  if (options.timeout.count() < 0) {
    throw InvalidArgument("gilmour: Composition::execute(): negative timeout");
  }
  auto p = std::make_shared<std::promise<Message>>();
  auto f = p->get_future();
  execute(
      std::move(input), [p](Message m) { p->set_value(std::move(m)); }, options);
  return f;
}

Composition operator|(const Composition& a, const Composition& b) {
  std::vector<Composition> steps;
  auto add = [&](const Composition& c) {
    if (c.kind() == Composition::Kind::kPipe) {
      steps.insert(steps.end(), c.steps().begin(), c.steps().end());
    } else {
      steps.push_back(c);
    }
  };
  add(a);
  add(b);
  return compose::pipe(std::move(steps));
}

// ---------------------------------------------------------------- compose

namespace compose {

Composition request(Gilmour* engine, std::string_view topic, nlohmann::json with,
                    RequestOptions options) {
  if (!engine) throw InvalidArgument("gilmour: compose::request(): null engine");
  gilmour::detail::validate_topic(topic, "compose::request()", /*allow_wildcard=*/false);
  if (!with.is_null() && !with.is_object()) {
    throw InvalidArgument("gilmour: compose::request(): `with` must be a JSON object or null");
  }
  if (options.timeout.count() < 0) {
    throw InvalidArgument("gilmour: compose::request(): negative timeout");
  }
  auto n = std::make_shared<Composition::Node>();
  n->kind = Kind::kRequest;
  n->engine = gilmour::detail::EngineAccess::of(*engine);
  n->timer_engine = n->engine;
  n->has_engine = true;
  n->topic = std::string(topic);
  if (with.is_object() && !with.empty()) n->with = std::move(with);
  n->options = options;
  return CompositionAccess::make(std::move(n));
}

Composition request(Gilmour* engine, std::string_view topic, RequestOptions options) {
  return request(engine, topic, nullptr, options);
}

Composition pipe(std::vector<Composition> steps) {
  return make_group(Kind::kPipe, std::move(steps));
}

Composition andand(std::vector<Composition> steps) {
  return make_group(Kind::kAndAnd, std::move(steps));
}

Composition oror(std::vector<Composition> steps) {
  return make_group(Kind::kOrOr, std::move(steps));
}

Composition batch(std::vector<Composition> steps, bool record) {
  return make_group(Kind::kBatch, std::move(steps), record);
}

Composition parallel(std::vector<Composition> steps) {
  return make_group(Kind::kParallel, std::move(steps));
}

namespace detail {

Composition lambda_async(AsyncFn fn) {
  if (!fn) throw InvalidArgument("gilmour: compose::lambda(): null function");
  return make_lambda(std::move(fn));
}

Composition lambda_sync(SyncFn fn) {
  if (!fn) throw InvalidArgument("gilmour: compose::lambda(): null function");
  return make_lambda([fn = std::move(fn)](Message in, const Completion& done) {
    Message out = fn(std::move(in));  // a throw becomes the step's 500
    done(std::move(out));
  });
}

Composition lambda_future(FutureFn fn) {
  if (!fn) throw InvalidArgument("gilmour: compose::lambda(): null function");
  return make_lambda([fn = std::move(fn)](Message in, const Completion& done) {
    auto f = fn(std::move(in));
    Message out;
    {
      ThreadPool::BlockingScope blocking;
      try {
        out = f.get();
      } catch (...) {
        out = Message(exception_text(std::current_exception()), code::kHandlerError);
      }
    }
    done(std::move(out));
  });
}

}  // namespace detail
}  // namespace compose
}  // namespace gilmour
