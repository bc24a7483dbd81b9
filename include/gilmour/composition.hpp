/// @file gilmour/composition.hpp
/// Composition: services composed like shell commands (the Gilmour talk's
/// `fetch | words | stopfilter | count | (popular3 & popular4 & popular5)`).
///
/// A Composition is an immutable tree of steps. A leaf is a request to a topic
/// (compose::request) or a local function (compose::lambda); an inner node
/// runs its children as a pipe, andand, oror, batch or parallel. Every kind
/// nests inside every other. Executing a composition is asynchronous: no
/// thread is blocked while a request step is in flight.
///
/// @code
///   namespace c = gilmour::compose;
///   auto step = [&](const char* topic) { return c::request(g, topic); };
///   gilmour::Composition popular =
///       c::parallel({step("example.popular3"), step("example.popular4")});
///   gilmour::Composition wordcount =
///       step("example.fetch") | step("example.words") | step("example.count") | popular;
///   gilmour::Message m = wordcount.execute("sample.txt", {std::chrono::seconds(5)}).get();
///   // m.code() == 200; m.data() == [<popular3's output>, <popular4's output>]
/// @endcode
///
/// Results, for a composition run on input `x` (a step's outcome is a Message:
/// data and code; "ok" below means code == 200 exactly):
///
/// - request: sends `x` (merged with the step's `with` object, see below).
///   Result: the response, i.e. the handler's data and code; 499 at the
///   request's timeout; 404 (confirm_subscribers and nobody listens); 503
///   (engine not running, or the request could not be sent); 500 (the engine
///   refused the request).
/// - lambda: the function on Message{x} (code 200). Result: what it returns;
///   500 with the error text when it throws.
/// - pipe: step 1 on `x`, step i+1 on step i's output data; stops at the
///   first step that is not ok. Result: the last step run.
/// - andand: each step on `x`, in order, while each is ok. Result: the last
///   step run.
/// - oror: each step on `x`, in order, until one is ok. Result: that step, or
///   the last failure.
/// - batch: every step on `x`, in order, whatever the codes. Result: the last
///   step's; with `record`, data = `[{"data":d0,"code":c0}, ...]` and code =
///   the highest step code.
/// - parallel: every step on `x`, started at once. Result: data =
///   `[d0, d1, ...]` in step order (not completion order), code = the highest
///   step code.
///
/// Empty compositions: pipe, andand, oror and batch of no steps return `x`
/// with 200 (the identity); a recording batch or a parallel of no steps
/// returns `[]` with 200. A default-constructed Composition is the empty pipe.
/// A result's sender is always empty.
///
/// With: a request step may carry a JSON object. When the step's input is an
/// object, the step's keys are merged into it (shallow: a step's key replaces
/// the input's key of the same name) before sending; any other input is sent
/// unchanged.
///
/// Overall timeout: ExecuteOptions::timeout bounds the whole execution. When
/// it passes, the execution completes with 499 "Execution timed out"; no
/// further step starts and the late outcomes of running steps are ignored
/// (requests already sent still run to their own end on the services). The
/// deadline is kept by a timer on the I/O loop of the composition's first
/// request step's engine (for local lambdas only: ExecuteOptions::engine's)
/// when that engine runs. The library has no timer thread of its own: without
/// a running engine the deadline is checked before each step starts (a step
/// due after it is not started and the execution completes with 499), and a
/// running lambda is not interrupted (the execution completes with 499 when
/// it returns).
///
/// Deadlines and traces: see ExecuteOptions::timeout. A request made inside
/// a lambda inherits them as well (as one made by a handler does).
///
/// Threads: a lambda runs on the thread that completed the step before it: a
/// worker of the engine's Executor after a request step, or the thread that
/// called execute() when it is the first step. The completion (callback, or
/// the future's value) is delivered on the thread that completed the last
/// step, on the thread calling execute() when every step completed
/// synchronously, or on timeout on a worker of that engine's Executor. Keep lambdas
/// and completion callbacks short; for slow local work use the
/// completion-callback form of lambda and hand the work to your own thread.
/// Parallel branches are started one after another by one thread: local
/// synchronous lambdas among them run one at a time; request steps run at
/// once.
///
/// Thread safety: a Composition is immutable and cheap to copy (it shares its
/// tree); one composition may be executed any number of times, concurrently,
/// from any threads. A request step refers to its engine weakly: when the
/// engine is stopped, not started or destroyed, the step answers 503 (a
/// Gilmour cannot be moved, so the reference never goes stale).
///
/// Errors: misuse throws gilmour::InvalidArgument at construction (null
/// engine, empty topic, topic containing `*`, non-object `with`, negative
/// timeout, null function) or at execute() (negative timeout, null callback).
/// Everything that goes wrong while executing is a step outcome, never an
/// exception: the execution always completes, exactly once (if an engine
/// loses a step's callback, with 500 "composition abandoned: a step never
/// completed").
#pragma once

#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "gilmour/engine.hpp"
#include "gilmour/error.hpp"
#include "gilmour/export.hpp"
#include "gilmour/message.hpp"
#include "gilmour/options.hpp"

namespace gilmour {

/// Options of one execution of a Composition. Thread safety: a plain value.
struct ExecuteOptions {
  /// Bound on the whole execution; 0 = none (each request step still has its
  /// own RequestOptions timeout). When it passes: 499 "Execution timed out".
  /// Executed from a handler's thread, the execution is also bounded by that
  /// handler's Request::deadline() and carries its trace id; every request
  /// step is bounded by what is left of the execution's deadline and carries
  /// the execution's trace id (a fresh one outside a handler).
  std::chrono::milliseconds timeout{0};
  /// The engine whose I/O loop keeps the deadline of a composition that has
  /// no request step (local lambdas only); ignored otherwise (the first
  /// request step's engine keeps it). Not owned: it must outlive the
  /// execute() call only (the execution refers to it weakly). Null: such a
  /// composition's deadline is checked before each step starts, and a
  /// running lambda is not interrupted.
  Gilmour* engine = nullptr;

  /// Sets `timeout`; returns *this.
  ExecuteOptions& set_timeout(std::chrono::milliseconds v) {
    timeout = v;
    return *this;
  }
  /// Sets `engine`; returns *this.
  ExecuteOptions& set_engine(Gilmour& v) {
    engine = &v;
    return *this;
  }
};

/// Receives the outcome of an execution or of a step (exactly once).
using Completion = std::function<void(Message)>;

/// An immutable tree of steps; see the file comment for the result of each
/// kind. Build one with the functions of namespace gilmour::compose.
///
/// Thread safety: immutable; copies share the tree; execute() may be called
/// concurrently from any threads, any number of times.
class GILMOUR_API Composition {
 public:
  /// What a node is: a leaf (request, lambda) or how it runs its steps.
  enum class Kind { kRequest, kLambda, kPipe, kAndAnd, kOrOr, kBatch, kParallel };

  /// The empty pipe: returns its input with 200.
  Composition();

  /// Runs the composition on `input`. Never throws once started, and the
  /// future never holds an exception: failures are codes (see the file comment).
  /// Leading local lambdas run on the calling thread before this returns.
  /// @throws InvalidArgument for a negative timeout.
  [[nodiscard]] std::future<Message> execute(nlohmann::json input,
                                             ExecuteOptions options = {}) const;
  /// As above; `done` runs exactly once with the result (see the file comment
  /// for its thread). An exception thrown by `done` is caught and dropped.
  /// @throws InvalidArgument for a negative timeout or a null `done` (before
  ///         any step runs).
  void execute(nlohmann::json input, Completion done, ExecuteOptions options = {}) const;

  /// What this node is.
  Kind kind() const noexcept;
  /// The direct steps of a pipe, andand, oror, batch or parallel (empty for a
  /// leaf).
  const std::vector<Composition>& steps() const noexcept;
  /// A shell-like rendering, e.g. `(fetch | words | (popular3 & popular4))`;
  /// lambdas show as `<lambda>`, batches as `(a; b)`, recording batches as
  /// `(a; b)>`, with-objects as `topic+{...}`.
  std::string describe() const;

  struct Node;  ///< implementation detail

 private:
  friend struct CompositionAccess;
  explicit Composition(std::shared_ptr<const Node> node);
  std::shared_ptr<const Node> node_;
};

/// The factories of Composition. Every function validates its arguments and
/// throws InvalidArgument before anything runs.
namespace compose {

/// A request step: sends its input to `topic` through `engine` with `options`.
/// `with`: null or a JSON object merged into object inputs (the step's keys
/// win). The engine must outlive every execution and must not be moved (it
/// need not be started yet).
/// @throws InvalidArgument for a null engine, an invalid topic (empty, or
///         holding `*`, whitespace, a control character or NUL), a `with`
///         that is neither null nor an object, a negative timeout.
GILMOUR_API Composition request(Gilmour* engine, std::string_view topic,
                                nlohmann::json with = nullptr, RequestOptions options = {});
/// As above, without a with-object.
GILMOUR_API Composition request(Gilmour* engine, std::string_view topic, RequestOptions options);
/// As above, taking the engine by reference.
inline Composition request(Gilmour& engine, std::string_view topic, nlohmann::json with = nullptr,
                           RequestOptions options = {}) {
  return request(&engine, topic, std::move(with), options);
}
/// As above, taking the engine by reference, without a with-object.
inline Composition request(Gilmour& engine, std::string_view topic, RequestOptions options) {
  return request(&engine, topic, nullptr, options);
}

/// Runs the steps in order, each on the previous step's output data; stops at
/// the first step whose code is not 200. Result: the last step run.
GILMOUR_API Composition pipe(std::vector<Composition> steps);
/// Runs the steps in order on the original input while each answers 200.
/// Result: the last step run.
GILMOUR_API Composition andand(std::vector<Composition> steps);
/// Runs the steps in order on the original input until one answers 200.
/// Result: that step, or the last failure.
GILMOUR_API Composition oror(std::vector<Composition> steps);
/// Runs every step in order on the original input, whatever their codes.
/// Result: the last step's; with `record`, data = the array of every step's
/// `{"data":...,"code":...}` and code = the highest step code.
GILMOUR_API Composition batch(std::vector<Composition> steps, bool record = false);
/// Starts every step at once on the original input. Result: data = the array
/// of the steps' output data in step order; code = the highest step code.
GILMOUR_API Composition parallel(std::vector<Composition> steps);

namespace detail {
using SyncFn = std::function<Message(Message)>;
using FutureFn = std::function<std::future<Message>(Message)>;
using AsyncFn = std::function<void(Message, Completion)>;
GILMOUR_API Composition lambda_sync(SyncFn fn);
GILMOUR_API Composition lambda_future(FutureFn fn);
GILMOUR_API Composition lambda_async(AsyncFn fn);

template <typename T>
struct IsStdFunction : std::false_type {};
template <typename R, typename... A>
struct IsStdFunction<std::function<R(A...)>> : std::true_type {};
}  // namespace detail

/// A local step. `fn` is one of:
/// - `Message(Message)` (or returning anything a Message converts from, such
///   as nlohmann::json: code 200): runs in place; a throw is a 500 outcome
///   with the error text.
/// - `std::future<Message>(Message)`: the future is waited for on the thread
///   that ran the function (marked blocking, so a ThreadPool grows meanwhile);
///   prefer the next form for truly asynchronous work. A future holding an
///   exception is a 500 outcome.
/// - `void(Message, Completion)`: asynchronous; call the Completion once,
///   from any thread, with the outcome. Later calls are ignored. A throw
///   before the call is a 500 outcome; if every copy of the Completion is
///   destroyed uncalled, the outcome is 500 "lambda dropped its completion".
/// The input Message carries the step's input data with code 200.
/// @throws InvalidArgument when `fn` is a null std::function or pointer.
template <typename F>
Composition lambda(F fn) {
  using D = std::decay_t<F>;
  if constexpr (std::is_pointer_v<D> || detail::IsStdFunction<D>::value) {
    if (!fn) throw InvalidArgument("gilmour: compose::lambda(): null function");
  }
  if constexpr (std::is_invocable_v<D&, Message, Completion>) {
    return detail::lambda_async(detail::AsyncFn(std::move(fn)));
  } else if constexpr (std::is_invocable_v<D&, Message> &&
                       std::is_same_v<std::decay_t<std::invoke_result_t<D&, Message>>,
                                      std::future<Message>>) {
    return detail::lambda_future(detail::FutureFn(std::move(fn)));
  } else {
    static_assert(std::is_invocable_r_v<Message, D&, Message>,
                  "compose::lambda: fn must be Message(Message), std::future<Message>(Message) "
                  "or void(Message, Completion)");
    return detail::lambda_sync(detail::SyncFn(std::move(fn)));
  }
}

}  // namespace compose

/// `a | b`: compose::pipe({a, b}). A pipe on the left (or right) is extended
/// rather than nested (same result: pipes are associative), so `a | b | c` is
/// one pipe of three steps. There is deliberately no `&&`, `||` or `&`:
/// C++ precedence and short-circuit rules differ from the shell's, and
/// `(a & b) & c` would be ambiguous (nested or flat result arrays).
GILMOUR_API Composition operator|(const Composition& a, const Composition& b);

}  // namespace gilmour
