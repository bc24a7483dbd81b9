// Redis Cluster key slots (backends/redis/cluster_slot.hpp): CRC16-XMODEM and
// the hash-tag rule, against the known vectors of the Redis Cluster
// specification and values CLUSTER KEYSLOT gives.
#include "redis/cluster_slot.hpp"

#include <gtest/gtest.h>

namespace gilmour::redis::detail {
namespace {

TEST(ClusterSlot, Crc16XmodemCheckValue) {
  EXPECT_EQ(crc16("123456789"), 0x31C3);
  EXPECT_EQ(crc16(""), 0);
}

TEST(ClusterSlot, KnownKeySlots) {
  // CLUSTER KEYSLOT answers (Redis 7).
  EXPECT_EQ(slot_of("foo"), 12182);
  EXPECT_EQ(slot_of("somekey"), 11058);
  EXPECT_EQ(slot_of("123456789"), 0x31C3 % kClusterSlots);
}

TEST(ClusterSlot, HashTagsShareASlot) {
  EXPECT_EQ(slot_of("{user1000}.following"), slot_of("{user1000}.followers"));
  EXPECT_EQ(slot_of("{user1000}.following"), slot_of("user1000"));
  EXPECT_EQ(hash_tag("{user1000}.following"), "user1000");
}

TEST(ClusterSlot, EmptyTagHashesTheWholeKey) {
  EXPECT_EQ(hash_tag("foo{}{bar}"), "foo{}{bar}");
  EXPECT_EQ(slot_of("foo{}{bar}"), crc16("foo{}{bar}") % kClusterSlots);
  EXPECT_NE(slot_of("foo{}{bar}"), slot_of("bar"));
}

TEST(ClusterSlot, FirstOpenBraceAndNextCloseBrace) {
  EXPECT_EQ(hash_tag("foo{{bar}}zap"), "{bar");
  EXPECT_EQ(slot_of("foo{{bar}}zap"), slot_of("{bar"));
  EXPECT_EQ(hash_tag("foo{bar}{zap}"), "bar");
  EXPECT_EQ(hash_tag("foo{bar"), "foo{bar");  // no closing brace
  EXPECT_EQ(hash_tag("foo}bar{"), "foo}bar{");
}

TEST(ClusterSlot, EverySlotInRange) {
  for (int i = 0; i < 2000; ++i) {
    int s = slot_of("gilmour.request.topic" + std::to_string(i));
    EXPECT_GE(s, 0);
    EXPECT_LT(s, kClusterSlots);
  }
}

}  // namespace
}  // namespace gilmour::redis::detail
