#include "gilmour/executor.hpp"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

namespace gilmour {

struct ThreadPool::State {
  std::mutex mu;
  std::condition_variable cv;       // work available or shutdown
  std::condition_variable done_cv;  // a worker exited
  std::deque<std::function<void()>> tasks;
  std::size_t core = 1;
  std::size_t max_threads = 1;
  std::size_t threads = 0;  // live workers
  std::size_t blocked = 0;  // workers inside a BlockingScope
  std::size_t idle = 0;     // workers waiting for a task
  bool stopping = false;

  void spawn_locked(const std::shared_ptr<State>& self);
  void run(const std::shared_ptr<State>& self);
};

namespace {
thread_local ThreadPool::State* tl_pool = nullptr;
thread_local std::shared_ptr<ThreadPool::State> tl_pool_owner;
}  // namespace

void ThreadPool::State::spawn_locked(const std::shared_ptr<State>& self) {
  ++threads;
  std::thread([self] { self->run(self); }).detach();
}

void ThreadPool::State::run(const std::shared_ptr<State>& self) {
  tl_pool = this;
  tl_pool_owner = self;
  std::unique_lock<std::mutex> lock(mu);
  for (;;) {
    ++idle;
    bool got =
        cv.wait_for(lock, std::chrono::seconds(5), [&] { return stopping || !tasks.empty(); });
    --idle;
    if (!got) {
      // Idle for a while: a temporary worker exits when the runnable count
      // exceeds the core size.
      if (threads - blocked > core) break;
      continue;
    }
    if (tasks.empty()) break;  // stopping and drained
    auto task = std::move(tasks.front());
    tasks.pop_front();
    lock.unlock();
    try {
      task();
    } catch (...) {  // contained: a worker never dies of a task's exception
    }
    task = nullptr;
    lock.lock();
  }
  --threads;
  tl_pool = nullptr;
  lock.unlock();
  done_cv.notify_all();
  tl_pool_owner.reset();
}

ThreadPool::ThreadPool(std::size_t size, std::size_t max_threads)
    : state_(std::make_shared<State>()) {
  state_->core = std::max<std::size_t>(1, size);
  state_->max_threads = max_threads ? std::max(max_threads, state_->core) : state_->core * 16 + 64;
  std::lock_guard<std::mutex> lock(state_->mu);
  for (std::size_t i = 0; i < state_->core; ++i) state_->spawn_locked(state_);
}

ThreadPool::~ThreadPool() { shutdown(); }

namespace {
/// How many sleeping workers a push that grew the queue from `before` to
/// `after` tasks must wake. A worker only goes to sleep on an empty queue and
/// every push that leaves no more tasks than idle workers wakes one, so the
/// first `idle` queued tasks each have a worker on its way; the rest are
/// taken by those workers (or busy ones) when they come back for more.
/// Pushing into a pool without idle workers costs no wake-up at all.
std::size_t wakes_for(std::size_t before, std::size_t after, std::size_t idle) {
  return before >= idle ? 0 : std::min(after, idle) - before;
}
}  // namespace

void ThreadPool::submit(std::function<void()> task) {
  std::size_t wake;
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    if (state_->stopping) return;
    state_->tasks.push_back(std::move(task));
    wake = wakes_for(state_->tasks.size() - 1, state_->tasks.size(), state_->idle);
  }
  if (wake) state_->cv.notify_one();
}

void ThreadPool::submit_bulk(std::vector<std::function<void()>>& tasks) {
  if (tasks.empty()) return;
  std::size_t wake;
  std::size_t idle;
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    if (state_->stopping) {
      tasks.clear();
      return;
    }
    const std::size_t before = state_->tasks.size();
    for (auto& t : tasks) state_->tasks.push_back(std::move(t));
    idle = state_->idle;
    wake = wakes_for(before, state_->tasks.size(), idle);
  }
  tasks.clear();
  if (wake != 0 && wake == idle) {
    state_->cv.notify_all();  // every idle worker gets a task: one futex call
  } else {
    for (std::size_t i = 0; i < wake; ++i) state_->cv.notify_one();
  }
}

void ThreadPool::shutdown() { shutdown(std::chrono::milliseconds::max()); }

bool ThreadPool::shutdown(std::chrono::milliseconds wait) {
  std::unique_lock<std::mutex> lock(state_->mu);
  state_->stopping = true;
  state_->cv.notify_all();
  // Called from one of our own workers, that worker cannot be waited for.
  const std::size_t self = tl_pool == state_.get() ? 1 : 0;
  auto done = [&] { return state_->threads <= self; };
  if (wait == std::chrono::milliseconds::max()) {
    state_->done_cv.wait(lock, done);
    return true;
  }
  return state_->done_cv.wait_for(lock, wait, done);
}

std::size_t ThreadPool::size() const noexcept { return state_->core; }

ThreadPool::BlockingScope::BlockingScope() {
  State* s = tl_pool;
  if (!s) return;
  std::lock_guard<std::mutex> lock(s->mu);
  ++s->blocked;
  // Keep `core` workers runnable while this one blocks.
  if (!s->stopping && s->idle == 0 && s->threads - s->blocked < s->core &&
      s->threads < s->max_threads) {
    s->spawn_locked(tl_pool_owner);
  }
  state_ = s;
}

ThreadPool::BlockingScope::~BlockingScope() {
  if (!state_) return;
  auto* s = static_cast<State*>(state_);
  std::lock_guard<std::mutex> lock(s->mu);
  --s->blocked;
}

}  // namespace gilmour
