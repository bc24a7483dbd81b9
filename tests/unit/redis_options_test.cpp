// Options::from_url: the URL forms of the Redis backend.
#include <gtest/gtest.h>

#include <gilmour/gilmour.hpp>
#include <string>
#include <utility>
#include <vector>

namespace gilmour::redis {
namespace {

/// `nodes` (sentinels or cluster seeds) are `expected` (host, port), in order.
void expect_endpoints(const std::vector<Endpoint>& nodes,
                      const std::vector<std::pair<std::string, int>>& expected) {
  ASSERT_EQ(nodes.size(), expected.size());
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    EXPECT_EQ(nodes[i].host, expected[i].first) << "node " << i;
    EXPECT_EQ(nodes[i].port, expected[i].second) << "node " << i;
  }
}

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

/// The text from_url() throws for `url`, or "" when it parses.
std::string from_url_error(const std::string& url) {
  try {
    (void)Options::from_url(url);
  } catch (const InvalidArgument& e) {
    return e.what();
  }
  return "";
}

TEST(RedisUrlSecrets, MalformedUrlsNeverQuoteThePassword) {
  const std::string pw = "Sup3rSecretPw";
  for (const std::string& url : {
           "redis://:" + pw + "@127.0.0.1:notaport",       // bad port
           "redis://alice:" + pw + "@127.0.0.1:70000",     // port out of range
           "redis://alice:" + pw + "@127.0.0.1:6379/x",    // bad db
           "redis://alice:" + pw + "@127.0.0.1/-1",        // negative db
           "redis://" + pw + "@",                          // password only, no host
           "redis://:" + pw + "@[::1",                     // unterminated IPv6
           "redis://:" + pw + "@[::1]x",                   // junk after IPv6
           "http://alice:" + pw + "@host:6379",            // bad scheme
           "redis://:" + pw + "%zz@host",                  // bad escape in the password
           "redis://:" + pw + "@host?nope=1",              // unknown parameter
           "redis://:" + pw + "@host?db",                  // parameter without '='
           "redis://:pa/" + pw + "@host:6379",             // raw '/' in the password
           "redis://:pa?" + pw + "@host:6379",             // raw '?' in the password
           "redis://:pa@" + pw + "@host:x",                // raw '@' in the password
           "redis://host:x?password=" + pw,                // password in the query
           "redis://host:6379?password=" + pw + "&db=x",   // ... followed by a bad db
           "redis://host:6379?password=a&" + pw,           // raw '&' in the password
           "redis://host:6379?password=a&" + pw + "=1",    // ... that looks like a key
           "unix://relative.sock?password=" + pw,          // relative socket
           "unix:///s?password=" + pw + "&db=x",           // unix, bad db
           "unix:///s?db=x&password=" + pw,                // password after the error
           "unix://alice:" + pw + "@/var/run/redis.sock",  // userinfo on unix://
           "host:x?password=p@" + pw,                      // no scheme
           pw + "@host:x",                                 // no scheme, userinfo
       }) {
    auto what = from_url_error(url);
    EXPECT_NE(what, "") << "accepted " << url;
    EXPECT_EQ(what.find(pw), std::string::npos) << what;
    EXPECT_EQ(what.find("Secret"), std::string::npos) << what;  // not even a piece
    EXPECT_NE(what.find("bad URL"), std::string::npos) << what;
  }
}

TEST(RedisUrlSecrets, ErrorsQuoteTheRedactedUrl) {
  EXPECT_EQ(from_url_error("redis://alice:s3cret@db.example:port/2"),
            "gilmour::redis: bad URL 'redis://alice:***@db.example:port/2': port is not a number");
  EXPECT_EQ(from_url_error("redis://s3cret@db.example:0"),
            "gilmour::redis: bad URL 'redis://***@db.example:0': port out of range");
  EXPECT_EQ(from_url_error("unix:///s?password=s3cret&db=x"),
            "gilmour::redis: bad URL 'unix:///s?password=***&db=x': db is not a number");
}

TEST(RedisUrlSecrets, RedactUrl) {
  EXPECT_EQ(redact_url("redis://alice:s3cret@host:6379/2"), "redis://alice:***@host:6379/2");
  EXPECT_EQ(redact_url("redis://:s3cret@host"), "redis://:***@host");
  EXPECT_EQ(redact_url("redis://s3cret@host"), "redis://***@host");
  EXPECT_EQ(redact_url("redis://host:6379/0"), "redis://host:6379/0");
  EXPECT_EQ(redact_url("127.0.0.1:6379"), "127.0.0.1:6379");
  EXPECT_EQ(redact_url("redis://:a/b?c@host:1"), "redis://:***@host:1");
  EXPECT_EQ(redact_url("unix:///var/run/r@dis.sock?db=2&password=p@ss&user=u"),
            "unix:///var/run/r@dis.sock?db=2&password=***&user=u");
  EXPECT_EQ(redact_url("redis://host?password=a&b&db=1"), "redis://host?password=***&db=1");
  EXPECT_EQ(redact_url("redis://u:p@host?password=q&password=r"),
            "redis://u:***@host?password=***&password=***");
  EXPECT_EQ(redact_url(""), "");
}

TEST(RedisUrlSecrets, DescribeHasNoPassword) {
  auto o = Options::from_url("redis://alice:s3cret@db.example:6380/2");
  EXPECT_EQ(o.describe(), "redis://alice:***@db.example:6380/2");
  EXPECT_EQ(Options::from_url("redis://:s3cret@127.0.0.1").describe(),
            "redis://:***@127.0.0.1:6379");
  EXPECT_EQ(Options::from_url("redis://[::1]:6391").describe(), "redis://[::1]:6391");
  EXPECT_EQ(Options::from_url("unix:///tmp/r.sock?db=1&password=s3cret").describe(),
            "unix:///tmp/r.sock?db=1&password=***");
  EXPECT_EQ(Options{}.describe(), "redis://127.0.0.1:6379");
  // The backend's own description (used in logs) has none either.
  auto b = make_backend("redis://alice:s3cret@127.0.0.1:6399/1");
  EXPECT_EQ(b->describe().find("s3cret"), std::string::npos) << b->describe();
}

TEST(RedisSentinelUrl, SentinelsMasterCredentialsAndDb) {
  auto o = Options::from_url(
      "redis-sentinel://alice:p%40ss@10.0.0.1:26380,sentinel-b,[::1]:26390/my%20master"
      "?db=3&sentinel_user=watch&sentinel_password=s3nt");
  ASSERT_TRUE(o.sentinel_mode());
  // sentinel-b: the Sentinel default port.
  expect_endpoints(o.sentinels, {{"10.0.0.1", 26380}, {"sentinel-b", 26379}, {"::1", 26390}});
  EXPECT_EQ(o.master_name, "my master");
  EXPECT_EQ(o.user, "alice");  // data-node credentials
  EXPECT_EQ(o.password, "p@ss");
  EXPECT_EQ(o.sentinel_user, "watch");  // sentinel credentials, separate
  EXPECT_EQ(o.sentinel_password, "s3nt");
  EXPECT_EQ(o.db, 3);
  EXPECT_EQ(o.address(), "my master via 10.0.0.1:26380,sentinel-b:26379,[::1]:26390");

  auto plain = Options::from_url("redis-sentinel://127.0.0.1:5000/mymaster");
  EXPECT_EQ(plain.sentinels.size(), 1u);
  EXPECT_EQ(plain.master_name, "mymaster");
  EXPECT_TRUE(plain.password.empty());
  EXPECT_TRUE(plain.sentinel_password.empty());
  EXPECT_EQ(plain.db, 0);
  EXPECT_FALSE(Options::from_url("redis://127.0.0.1").sentinel_mode());
}

TEST(RedisSentinelUrl, BadFormsThrowInvalidArgument) {
  for (const char* bad : {
           "redis-sentinel://",                    // nothing
           "redis-sentinel://127.0.0.1:26379",     // no master name
           "redis-sentinel://127.0.0.1:26379/",    // empty master name
           "redis-sentinel:///mymaster",           // no sentinel
           "redis-sentinel://h1,,h2/mymaster",     // empty sentinel
           "redis-sentinel://h1:x/mymaster",       // bad port
           "redis-sentinel://h1:0/mymaster",       // port out of range
           "redis-sentinel://h1/mymaster/2",       // junk after the name
           "redis-sentinel://h1/mymaster?db=x",    // bad db
           "redis-sentinel://h1/mymaster?db=-1",   // negative db
           "redis-sentinel://h1/mymaster?nope=1",  // unknown parameter
           "redis://h1/0?sentinel_password=x",     // sentinel parameter off Sentinel
       }) {
    EXPECT_THROW(Options::from_url(bad), InvalidArgument) << bad;
  }
  Options o = Options::from_url("redis-sentinel://h1/m");
  o.master_name.clear();
  EXPECT_THROW(make_backend(o), InvalidArgument);
  o = Options::from_url("redis-sentinel://h1/m");
  o.sentinel_user = "watch";  // without a sentinel password
  EXPECT_THROW(make_backend(o), InvalidArgument);
  o = Options{};
  o.master_name = "m";  // without sentinels
  EXPECT_THROW(make_backend(o), InvalidArgument);
}

TEST(RedisSentinelUrl, PasswordsAreRedacted) {
  const std::string url =
      "redis-sentinel://alice:Sup3rSecretPw@h1:26379,h2:26380/mymaster?db=2&sentinel_user=w"
      "&sentinel_password=S3ntSecretPw";
  EXPECT_EQ(redact_url(url),
            "redis-sentinel://alice:***@h1:26379,h2:26380/mymaster?db=2&sentinel_user=w"
            "&sentinel_password=***");
  EXPECT_EQ(redact_url("redis-sentinel://h1/m?sentinel_password=a&b&password=c"),
            "redis-sentinel://h1/m?sentinel_password=***&password=***");
  auto o = Options::from_url(url);
  EXPECT_EQ(o.describe(),
            "redis-sentinel://alice:***@h1:26379,h2:26380/mymaster?db=2&sentinel_user=w"
            "&sentinel_password=***");
  auto b = make_backend(url);
  EXPECT_EQ(b->describe().find("Secret"), std::string::npos) << b->describe();
  EXPECT_NE(b->describe().find("mymaster"), std::string::npos) << b->describe();
  for (const char* bad : {
           "redis-sentinel://:Sup3rSecretPw@h1:x/m",                     // bad port
           "redis-sentinel://h1/m?sentinel_password=S3ntSecretPw&db=x",  // bad db after it
           "redis-sentinel://:Sup3rSecretPw@h1",                         // no master name
       }) {
    auto what = from_url_error(bad);
    EXPECT_NE(what.find("bad URL"), std::string::npos) << bad;
    EXPECT_EQ(what.find("Secret"), std::string::npos) << what;
  }
}

TEST(RedisClusterUrl, SeedsAndCredentials) {
  auto o = Options::from_url("redis-cluster://alice:p%40ss@10.0.0.1:7000,node-b,[::1]:7002");
  ASSERT_TRUE(o.cluster_mode());
  EXPECT_FALSE(o.sentinel_mode());
  // node-b: the Redis default port.
  expect_endpoints(o.cluster_nodes, {{"10.0.0.1", 7000}, {"node-b", 6379}, {"::1", 7002}});
  EXPECT_EQ(o.user, "alice");
  EXPECT_EQ(o.password, "p@ss");
  EXPECT_EQ(o.db, 0);
  EXPECT_EQ(o.address(), "cluster via 10.0.0.1:7000,node-b:6379,[::1]:7002");

  auto plain = Options::from_url("redis-cluster://127.0.0.1:7000/");
  ASSERT_EQ(plain.cluster_nodes.size(), 1u);
  EXPECT_TRUE(plain.password.empty());
  auto pw = Options::from_url("redis-cluster://:a/b@c@h1:7000?user=bob");  // raw '/' and '@'
  EXPECT_EQ(pw.password, "a/b@c");
  EXPECT_EQ(pw.user, "bob");
  EXPECT_FALSE(Options::from_url("redis://127.0.0.1").cluster_mode());
}

TEST(RedisClusterUrl, BadFormsThrowInvalidArgument) {
  for (const char* bad : {
           "redis-cluster://",                    // nothing
           "redis-cluster://h1,,h2",              // empty node
           "redis-cluster://h1:x",                // bad port
           "redis-cluster://h1:70000",            // port out of range
           "redis-cluster://h1:7000/2",           // a database
           "redis-cluster://h1:7000?db=1",        // a database
           "redis-cluster://h1?nope=1",           // unknown parameter
           "redis-cluster://h1?sentinel_user=x",  // a sentinel parameter
       }) {
    EXPECT_THROW(Options::from_url(bad), InvalidArgument) << bad;
  }
  Options o = Options::from_url("redis-cluster://h1:7000");
  o.sentinels.push_back(Endpoint{"s1", 26379});
  o.master_name = "m";
  EXPECT_THROW(make_backend(o), InvalidArgument);
  o = Options::from_url("redis-cluster://h1:7000");
  o.db = 1;
  EXPECT_THROW(make_backend(o), InvalidArgument);
  o = Options::from_url("redis-cluster://h1:7000");
  o.cluster_nodes.push_back(Endpoint{"h2", 0});
  EXPECT_THROW(make_backend(o), InvalidArgument);
}

TEST(RedisClusterUrl, PasswordsAreRedacted) {
  const std::string url = "redis-cluster://alice:Sup3rSecretPw@h1:7000,h2:7001";
  EXPECT_EQ(redact_url(url), "redis-cluster://alice:***@h1:7000,h2:7001");
  EXPECT_EQ(redact_url("redis-cluster://h1:7000?password=Sup3rSecretPw"),
            "redis-cluster://h1:7000?password=***");
  auto o = Options::from_url(url);
  EXPECT_EQ(o.describe(), "redis-cluster://alice:***@h1:7000,h2:7001");
  auto b = make_backend(url);
  EXPECT_EQ(b->describe().find("Secret"), std::string::npos) << b->describe();
  EXPECT_NE(b->describe().find("h1:7000"), std::string::npos) << b->describe();
  for (const char* bad : {
           "redis-cluster://:Sup3rSecretPw@h1:x",             // bad port
           "redis-cluster://:Sup3rSecretPw@h1:7000/3",        // a database
           "redis-cluster://h1?password=Sup3rSecretPw&db=x",  // bad db after it
       }) {
    auto what = from_url_error(bad);
    EXPECT_NE(what.find("bad URL"), std::string::npos) << bad;
    EXPECT_EQ(what.find("Secret"), std::string::npos) << what;
  }
}

TEST(RedisUrlSecrets, InvalidOptionsNeverQuoteThePassword) {
  Options o;
  o.password = "s3cretpw";
  o.port = 0;
  try {
    (void)make_backend(o);
    ADD_FAILURE() << "no exception";
  } catch (const InvalidArgument& e) {
    EXPECT_EQ(std::string(e.what()).find("s3cretpw"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace gilmour::redis
