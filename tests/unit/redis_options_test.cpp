// Options::from_url: the URL forms of the Redis backend.
#include <gtest/gtest.h>

#include <gilmour/gilmour.hpp>

namespace gilmour::redis {
namespace {

TEST(RedisUrl, PasswordHostPortDb) {
  auto o = Options::from_url("redis://:s3cret@redis.example:6380/2");
  EXPECT_EQ(o.host, "redis.example");
  EXPECT_EQ(o.port, 6380);
  EXPECT_EQ(o.password, "s3cret");
  EXPECT_TRUE(o.user.empty());
  EXPECT_EQ(o.db, 2);
  EXPECT_EQ(o.address(), "redis.example:6380");
}

TEST(RedisUrl, UserAndPasswordDefaultPort) {
  auto o = Options::from_url("redis://alice:p%40ss@10.0.0.5");
  EXPECT_EQ(o.user, "alice");
  EXPECT_EQ(o.password, "p@ss");
  EXPECT_EQ(o.host, "10.0.0.5");
  EXPECT_EQ(o.port, 6379);
  EXPECT_EQ(o.db, 0);
}

TEST(RedisUrl, PasswordOnlyWithoutColon) {
  auto o = Options::from_url("redis://secret@localhost:7000");
  EXPECT_EQ(o.password, "secret");
  EXPECT_TRUE(o.user.empty());
  EXPECT_EQ(o.port, 7000);
}

TEST(RedisUrl, UnixSocketWithQuery) {
  auto o = Options::from_url("unix:///var/run/redis.sock?db=2&password=pw");
  EXPECT_EQ(o.unix_socket, "/var/run/redis.sock");
  EXPECT_EQ(o.db, 2);
  EXPECT_EQ(o.password, "pw");
  EXPECT_EQ(o.address(), "/var/run/redis.sock");
}

TEST(RedisUrl, PlainHostPortAndIpv6) {
  auto o = Options::from_url("127.0.0.1:6390");
  EXPECT_EQ(o.host, "127.0.0.1");
  EXPECT_EQ(o.port, 6390);
  auto h = Options::from_url("cache-host");
  EXPECT_EQ(h.host, "cache-host");
  EXPECT_EQ(h.port, 6379);
  auto v6 = Options::from_url("redis://[::1]:6391/1");
  EXPECT_EQ(v6.host, "::1");
  EXPECT_EQ(v6.port, 6391);
  EXPECT_EQ(v6.db, 1);
}

TEST(RedisUrl, BadUrlsThrowInvalidArgument) {
  for (const char* bad : {"", "http://host:6379", "redis://", "redis://host:port", "redis://host:0",
                          "redis://host:70000", "redis://host/x", "redis://host/-1",
                          "unix://relative.sock", "unix:///s?db=x", "unix:///s?nope=1",
                          "unix:///s?db", "redis://[::1", "redis://:%zz@h", "host:"}) {
    EXPECT_THROW(Options::from_url(bad), InvalidArgument) << bad;
  }
}

TEST(RedisUrl, MakeBackendFromUrl) {
  EXPECT_EQ(make_backend("redis://:pw@127.0.0.1:6399/1")->describe(), "redis 127.0.0.1:6399");
  EXPECT_THROW(make_backend("redis://host:99999"), InvalidArgument);
}

}  // namespace
}  // namespace gilmour::redis
