// How many copies of a large payload the codec and the Redis command writer
// hold at once, counted by replacing the global operator new of this test
// program (docs/reliability.md, "Payload size"). Built without sanitizers
// only: they bring their own allocator.
#include <gtest/gtest.h>
#include <malloc.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <string>

#include "codec.hpp"
#include "redis/resp.hpp"

namespace {

std::atomic<std::size_t> g_live{0};
std::atomic<std::size_t> g_peak{0};

void note_allocated(void* p) {
  const std::size_t now = g_live.fetch_add(malloc_usable_size(p)) + malloc_usable_size(p);
  std::size_t peak = g_peak.load();
  while (now > peak && !g_peak.compare_exchange_weak(peak, now)) {
  }
}

// Bytes allocated above the live total at the start, at the highest point of
// `run`.
template <typename F>
std::size_t peak_during(F&& run) {
  const std::size_t base = g_live.load();
  g_peak.store(base);
  run();
  return g_peak.load() - base;
}

constexpr std::size_t kBig = std::size_t{4} * 1024 * 1024;
// One copy of kBig, with room for the envelope and the allocator's rounding.
constexpr std::size_t kOneCopy = kBig + kBig / 50;

}  // namespace

void* operator new(std::size_t n) {
  void* p = std::malloc(n == 0 ? 1 : n);
  if (p == nullptr) throw std::bad_alloc();
  note_allocated(p);
  return p;
}
void operator delete(void* p) noexcept {
  if (p == nullptr) return;
  g_live.fetch_sub(malloc_usable_size(p));
  std::free(p);
}
void operator delete(void* p, std::size_t /*size*/) noexcept { operator delete(p); }

namespace gilmour::detail {
namespace {

TEST(PayloadCopies, EncodingALargeStringWritesItOnce) {
  const nlohmann::json data = std::string(kBig, 'x');
  std::string wire;
  const std::size_t peak =
      peak_during([&] { wire = encode_envelope(data, 200, "gilmour.response.e.1"); });
  EXPECT_EQ(wire.size(), kBig + 54);
  EXPECT_LE(peak, kOneCopy) << "bytes allocated at the peak of encoding " << kBig;
}

TEST(PayloadCopies, DecodingALargeStringHoldsOneCopy) {
  const std::string wire = encode_envelope(std::string(kBig, 'x'), 200, "s");
  std::optional<Message> m;
  const std::size_t peak = peak_during([&] { m = decode_envelope(wire); });
  ASSERT_TRUE(m);
  EXPECT_EQ(m->data().get_ref<const std::string&>().size(), kBig);
  EXPECT_LE(peak, kOneCopy) << "bytes allocated at the peak of decoding " << kBig;
}

TEST(PayloadCopies, TheCommandWriterCopiesOnceAndLetsGo) {
  const std::string payload(kBig, 'x');
  redis::detail::CommandWriter writer;
  const std::size_t peak =
      peak_during([&] { writer.begin(3).arg("PUBLISH").arg("channel").arg(payload); });
  EXPECT_LE(peak, kOneCopy) << "bytes allocated at the peak of formatting " << kBig;
  writer.release_if_over(64 * 1024);
  EXPECT_LE(writer.capacity(), std::size_t{64} * 1024);
  // A small command keeps its buffer: the hot path allocates nothing.
  writer.begin(2).arg("PING").arg("x");
  const std::size_t kept = writer.capacity();
  writer.release_if_over(64 * 1024);
  EXPECT_EQ(writer.capacity(), kept);
}

}  // namespace
}  // namespace gilmour::detail
