// RESP command writer and a ring queue: the allocation-free pieces of the
// Redis backend's hot path. Internal to backends/redis.
//
// Thread safety: none; both live on the engine's I/O thread.
#pragma once

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace gilmour::redis::detail {

/// Formats one Redis command as a RESP array of bulk strings into a buffer
/// that is reused from command to command (its capacity only grows), so a
/// PUBLISH costs no allocation once the buffer has reached the payload size
/// (up to the size its owner keeps: see release_if_over). hiredis copies the
/// bytes into its output buffer (redisAsyncFormattedCommand).
class CommandWriter {
 public:
  /// Starts a command of `argc` arguments (the command name included).
  CommandWriter& begin(std::size_t argc) {
    buf_.clear();
    buf_ += '*';
    number(static_cast<std::int64_t>(argc));
    buf_ += "\r\n";
    return *this;
  }
  CommandWriter& arg(std::string_view s) {
    // Room for the header, the bytes and the CRLF at once: a large argument
    // is copied once into a buffer of its size, never into a doubled one.
    const std::size_t need = buf_.size() + s.size() + kArgFraming;
    if (need > buf_.capacity()) buf_.reserve(need);
    buf_ += '$';
    number(static_cast<std::int64_t>(s.size()));
    buf_ += "\r\n";
    buf_.append(s.data(), s.size());
    buf_ += "\r\n";
    return *this;
  }
  CommandWriter& arg(std::int64_t v) {
    char tmp[24];
    auto [end, ec] = std::to_chars(tmp, tmp + sizeof tmp, v);
    (void)ec;
    return arg(std::string_view(tmp, static_cast<std::size_t>(end - tmp)));
  }
  const char* data() const noexcept { return buf_.data(); }
  std::size_t size() const noexcept { return buf_.size(); }
  std::size_t capacity() const noexcept { return buf_.capacity(); }
  /// Frees the buffer when a large command made it grow past `keep` bytes,
  /// so one large message does not hold its size for the connection's life.
  void release_if_over(std::size_t keep) {
    if (buf_.capacity() > keep) std::string().swap(buf_);
  }

 private:
  void number(std::int64_t v) {
    char tmp[24];
    auto [end, ec] = std::to_chars(tmp, tmp + sizeof tmp, v);
    (void)ec;
    buf_.append(tmp, static_cast<std::size_t>(end - tmp));
  }
  static constexpr std::size_t kArgFraming = 32;  // '$', up to 20 digits, two CRLFs
  std::string buf_;
};

/// A FIFO over a power-of-two ring that grows and never shrinks: pushing and
/// popping allocate nothing in steady state (std::deque allocates a block
/// every few elements).
template <typename T>
class RingQueue {
 public:
  bool empty() const noexcept { return size_ == 0; }
  std::size_t size() const noexcept { return size_; }
  T& front() noexcept { return slots_[head_]; }
  /// The element `i` places behind the front (i < size()).
  T& at(std::size_t i) noexcept { return slots_[(head_ + i) & (slots_.size() - 1)]; }
  void push_back(T&& v) {
    if (size_ == slots_.size()) grow();
    slots_[(head_ + size_) & (slots_.size() - 1)] = std::move(v);
    ++size_;
  }
  /// Moves the front element out.
  T pop_front() {
    T v = std::move(slots_[head_]);
    slots_[head_] = T();
    head_ = (head_ + 1) & (slots_.size() - 1);
    --size_;
    return v;
  }
  /// Moves every element out, in order, leaving the queue empty.
  std::vector<T> take_all() {
    std::vector<T> out;
    out.reserve(size_);
    while (size_ > 0) out.push_back(pop_front());
    return out;
  }

 private:
  void grow() {
    std::vector<T> bigger(slots_.empty() ? 16 : slots_.size() * 2);
    for (std::size_t i = 0; i < size_; ++i) {
      bigger[i] = std::move(slots_[(head_ + i) & (slots_.size() - 1)]);
    }
    slots_ = std::move(bigger);
    head_ = 0;
  }
  std::vector<T> slots_;
  std::size_t head_ = 0;
  std::size_t size_ = 0;
};

}  // namespace gilmour::redis::detail
