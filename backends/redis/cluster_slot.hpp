// Redis Cluster key slots: CRC16 (XMODEM: polynomial 0x1021, initial value
// 0, no reflection) of the key, or of its hash tag, modulo 16384. The hash
// tag is what lies between the first '{' and the first '}' after it, when
// that is not empty: "{user1000}.following" and "{user1000}.followers" share
// a slot; "foo{}{bar}" hashes the whole key; "foo{{bar}}zap" hashes "{bar".
// Internal to backends/redis; header-only so that unit tests can use it
// whatever the library's linkage.
//
// Thread safety: pure functions.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace gilmour::redis::detail {

/// The number of hash slots of a Redis Cluster.
constexpr int kClusterSlots = 16384;

/// CRC16-XMODEM of `data` (crc16("123456789") == 0x31C3).
inline std::uint16_t crc16(std::string_view data) noexcept {
  std::uint16_t crc = 0;
  for (unsigned char c : data) {
    crc = static_cast<std::uint16_t>(crc ^ (static_cast<std::uint16_t>(c) << 8));
    for (int bit = 0; bit < 8; ++bit) {
      crc = (crc & 0x8000U) != 0 ? static_cast<std::uint16_t>((crc << 1) ^ 0x1021U)
                                 : static_cast<std::uint16_t>(crc << 1);
    }
  }
  return crc;
}

/// The part of `key` that is hashed: its hash tag, or the whole key.
inline std::string_view hash_tag(std::string_view key) noexcept {
  auto open = key.find('{');
  if (open == std::string_view::npos) return key;
  auto close = key.find('}', open + 1);
  if (close == std::string_view::npos || close == open + 1) return key;
  return key.substr(open + 1, close - open - 1);
}

/// The cluster slot of `key` (0..16383).
inline int slot_of(std::string_view key) noexcept { return crc16(hash_tag(key)) % kClusterSlots; }

}  // namespace gilmour::redis::detail
