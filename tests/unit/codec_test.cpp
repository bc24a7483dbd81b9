#include "codec.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "gilmour/error_record.hpp"

namespace gilmour::detail {
namespace {

TEST(Codec, EncodesKeysInProtocolOrder) {
  EXPECT_EQ(encode_envelope("hello", 200, "abc"), R"({"data":"hello","code":200,"sender":"abc"})");
  EXPECT_EQ(encode_envelope(nlohmann::json{{"b", 1}, {"a", 2}}, 500, "gilmour.response.x"),
            R"({"data":{"a":2,"b":1},"code":500,"sender":"gilmour.response.x"})");
  EXPECT_EQ(encode_envelope(nullptr, 200, ""), R"({"data":null,"code":200,"sender":""})");
}

TEST(Codec, DeadlineAndTraceFieldsFollowTheProtocolFields) {
  EXPECT_EQ(encode_envelope("x", 200, "e.1", 1500, "e.1"),
            R"({"data":"x","code":200,"sender":"e.1","budget_ms":1500,"trace_id":"e.1"})");
  EXPECT_EQ(encode_envelope("x", 200, "gilmour.response.e.1", -1, "t"),
            R"({"data":"x","code":200,"sender":"gilmour.response.e.1","trace_id":"t"})");
  EXPECT_EQ(encode_envelope("x", 200, "s", 0),
            R"({"data":"x","code":200,"sender":"s","budget_ms":0})");
  // Ids that need escaping still make valid JSON.
  auto odd = encode_envelope(1, 200, "a\"b", -1, "t\\\n\xc3\xa9");
  auto j = nlohmann::json::parse(odd);
  EXPECT_EQ(j["sender"], "a\"b");
  EXPECT_EQ(j["trace_id"], "t\\\n\xc3\xa9");

  EnvelopeExtras ex;
  auto m = decode_envelope(R"({"data":1,"code":200,"sender":"s","budget_ms":250,"trace_id":"t1"})",
                           nullptr, &ex);
  ASSERT_TRUE(m);
  EXPECT_EQ(ex.budget_ms, 250);
  EXPECT_EQ(ex.trace_id, "t1");
}

TEST(Codec, MissingOrOddDeadlineFieldsAreIgnoredNotFatal) {
  auto read = [](const std::string& payload) {
    EnvelopeExtras ex;
    EXPECT_TRUE(decode_envelope(payload, nullptr, &ex)) << payload;
    return ex;
  };
  // As Go and Ruby send: no extension fields at all.
  auto go = read(R"({"data":"x","code":200,"sender":"1643e3fc-6362-4a2d-853b-35e8447a63f2"})");
  EXPECT_EQ(go.budget_ms, -1);
  EXPECT_TRUE(go.trace_id.empty());
  for (const char* odd : {R"({"sender":"s","budget_ms":-5,"trace_id":5})",
                          R"({"sender":"s","budget_ms":1.5,"trace_id":null})",
                          R"({"sender":"s","budget_ms":"100","trace_id":["t"]})"}) {
    auto ex = read(odd);
    EXPECT_EQ(ex.budget_ms, -1) << odd;
    EXPECT_TRUE(ex.trace_id.empty()) << odd;
  }
  auto long_trace =
      read(R"({"sender":"s","trace_id":")" + std::string(kMaxTraceId + 1, 'x') + "\"}");
  EXPECT_TRUE(long_trace.trace_id.empty());
  auto huge = read(R"({"sender":"s","budget_ms":18446744073709551615})");
  EXPECT_EQ(huge.budget_ms, static_cast<std::int64_t>(kMaxBudgetMs));
}

TEST(Codec, NestingDepthIsBounded) {
  auto nested = [](std::size_t n) { return std::string(n, '[') + std::string(n, ']'); };
  EXPECT_TRUE(nesting_within(nested(10), 10));
  EXPECT_FALSE(nesting_within(nested(11), 10));
  EXPECT_TRUE(nesting_within(R"({"a":"[[[[[[[[[[[[\"[[[["})", 1));  // brackets in strings
  EXPECT_FALSE(nesting_within(R"({"a":"\\",[[]]})", 2));            // an escaped backslash ends
  auto env = [](const std::string& d) { return R"({"data":)" + d + R"(,"sender":"s"})"; };
  EXPECT_TRUE(decode_envelope(env(nested(kMaxDepth))));
  DecodeError why;
  EXPECT_FALSE(decode_envelope(env(nested(kMaxDepth + 1)), &why));
  EXPECT_EQ(why.reason, "nested too deep");
  EXPECT_FALSE(decode_envelope(env(std::string(100000, '{')), &why));
  EXPECT_EQ(why.reason, "nested too deep");
}

TEST(Codec, LargePlainStringDataIsSplitFromTheOtherMembers) {
  const std::string big(kPlainDataMin, 'x');
  const std::string wire =
      " {\"code\":200 , \"data\" : \"" + big + "\",\"sender\":\"s\",\"x\":{\"a\":[1,\"}\"]}} ";
  auto plain = split_plain_data(wire);
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->text, big);
  EXPECT_EQ(plain->rest, R"({"code":200,"sender":"s","x":{"a":[1,"}"]}})");
  auto m = decode_envelope(wire);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->data(), big);
  EXPECT_EQ(m->code(), 200);
  EXPECT_EQ(m->sender(), "s");
  // Small payloads, and anything but one plain string, go to the parser.
  EXPECT_FALSE(split_plain_data(R"({"data":"x"})"));
  EXPECT_TRUE(split_plain_data(R"({"data":"x"})", 0));
  for (const char* other :
       {R"({"data":"a\nb"})", "{\"data\":\"\xc3\xa9\"}", R"({"data":"a","data":"b"})",
        R"({"data":1})", R"({"d\u0061ta":"a"})", R"({"data":"a"} x)", R"({"data":"a")",
        R"({"sender":"s"})", "{}", R"(["data","a"])", R"({"data":"a",})"}) {
    EXPECT_FALSE(split_plain_data(other, 0)) << other;
  }
  // A malformed member outside data fails as it would in the parser.
  DecodeError why;
  EXPECT_FALSE(decode_envelope("{\"data\":\"" + big + "\",\"code\":tru}", &why));
  EXPECT_EQ(why.reason, "not JSON");
}

TEST(Codec, InvalidUtf8IsReplacedNotThrown) {
  auto s = encode_envelope(std::string("a\xff") + "b", 200, "s");
  EXPECT_NE(s.find("\"data\":\"a"), std::string::npos);
  EXPECT_TRUE(decode_envelope(s).has_value());
}

TEST(Codec, DecodesGoAndRubyEnvelopes) {
  auto go =
      decode_envelope(R"({"data":"x","code":200,"sender":"1643e3fc-6362-4a2d-853b-35e8447a63f2"})");
  ASSERT_TRUE(go);
  EXPECT_EQ(go->data(), "x");
  EXPECT_EQ(go->code(), 200);
  EXPECT_EQ(go->sender(), "1643e3fc-6362-4a2d-853b-35e8447a63f2");
  auto ruby =
      decode_envelope(R"({"data":{"k":1},"code":0,"sender":"abcdef0123456789abcdef0123456789"})");
  ASSERT_TRUE(ruby);
  EXPECT_EQ(ruby->code(), 200);
  auto null_code = decode_envelope(R"({"data":1,"code":null,"sender":"s","extra":true})");
  ASSERT_TRUE(null_code);
  EXPECT_EQ(null_code->code(), 200);
  auto missing = decode_envelope(R"({"sender":"s"})");
  ASSERT_TRUE(missing);
  EXPECT_TRUE(missing->data().is_null());
  auto timeout = decode_envelope(R"({"data":"t","code":504,"sender":"s"})");
  ASSERT_TRUE(timeout);
  EXPECT_TRUE(timeout->timed_out());
}

TEST(Codec, RejectsWhatIsNotAnEnvelope) {
  DecodeError why;
  EXPECT_FALSE(decode_envelope("not json", &why));
  EXPECT_EQ(why.reason, "not JSON");
  EXPECT_FALSE(decode_envelope("[1]", &why));
  EXPECT_EQ(why.reason, "not a JSON object");
  EXPECT_FALSE(decode_envelope(R"({"code":"200"})", &why));
  EXPECT_FALSE(decode_envelope(R"({"code":2.5})", &why));
  EXPECT_FALSE(decode_envelope(R"({"code":-1})", &why));
  EXPECT_FALSE(decode_envelope(R"({"sender":1})", &why));
  EXPECT_FALSE(decode_envelope("", &why));
  EXPECT_FALSE(decode_envelope(std::string(kMaxPayload + 1, ' '), &why));
  EXPECT_EQ(why.reason, "payload too large");
}

// The one-pass decoder takes the usual envelopes and gives exactly what the
// parser gives (types of numbers included); everything else it leaves to
// the parser, which decides and explains.
TEST(Codec, OnePassDecoderAgreesWithTheParserOrLeavesItTheInput) {
  const std::vector<std::string> taken = {
      R"({"data":{"n":1},"code":200,"sender":"abc.1"})",
      R"( { "data" : [1, -2, -0, true, false, null, "x", [], {}] , "code" : 0 , "sender" : null } )",
      R"({"data":"plain","code":null,"budget_ms":1500,"trace_id":"t-1"})",
      R"({"data":{"a":1,"a":2},"sender":"s"})",
      R"({"code":404})",
      R"({})",
      R"({"data":123456789012345678,"budget_ms":-0,"trace_id":null})",
      R"({"data":{"deep":[[[{"k":[0]}]]]},"budget_ms":99999999999999999})",
  };
  for (const auto& in : taken) {
    EnvelopeExtras fast_extras, parsed_extras;
    auto fast = decode_common_envelope(in, &fast_extras);
    auto parsed = parse_envelope(in, nullptr, &parsed_extras);
    ASSERT_TRUE(fast) << in;
    ASSERT_TRUE(parsed) << in;
    EXPECT_EQ(*fast, *parsed) << in;
    EXPECT_EQ(fast->data().dump(), parsed->data().dump()) << in;
    EXPECT_EQ(fast->data().type(), parsed->data().type()) << in;
    EXPECT_EQ(fast_extras.budget_ms, parsed_extras.budget_ms) << in;
    EXPECT_EQ(fast_extras.trace_id, parsed_extras.trace_id) << in;
  }
  // Non-negative integers are unsigned and -0 signed, as nlohmann reads them.
  auto m = decode_common_envelope(R"({"data":[0,-0,7]})");
  ASSERT_TRUE(m);
  EXPECT_TRUE(m->data()[0].is_number_unsigned());
  EXPECT_FALSE(m->data()[1].is_number_unsigned());
  EXPECT_TRUE(m->data()[1].is_number_integer());
  EXPECT_TRUE(m->data()[2].is_number_unsigned());

  const std::vector<std::string> left = {
      R"({"data":1.5})",                            // a double
      R"({"data":1e3})",                            // an exponent
      R"({"data":1234567890123456789})",            // 19 digits
      R"({"code":20088888888888888888888888888})",  // far more digits than 64 bits hold
      R"({"data":"caf\u00e9"})",                    // an escape
      "{\"data\":\"caf\xc3\xa9\"}",                 // UTF-8 to check
      R"({"data":1,"data":2})",                     // a repeated member
      R"({"data":1,"extra":{"x":1}})",              // an unknown member
      R"({"data":1,"code":"200"})",                 // code of another type
      R"({"data":1,"code":1000})",                  // code out of range
      R"({"data":1,"code":-1})",                    // code out of range
      R"({"data":01})",                             // a leading zero (not JSON)
      R"({"data":1}x)",                             // trailing text
      R"({"data":[1,]})",                           // a trailing comma
      R"({"data":tru})",                            // a cut literal
      R"({"data":{"a" 1}})",                        // no colon
      R"([1])",                                     // not an object
      R"({"data":-})",                              // a sign alone
      R"({"data":{"a":1})",                         // cut short
      "",
  };
  for (const auto& in : left) EXPECT_FALSE(decode_common_envelope(in)) << in;
  // Too deep for the fast path: the parser refuses it with its reason.
  std::string deep =
      R"({"data":)" + std::string(kMaxDepth + 1, '[') + std::string(kMaxDepth + 1, ']') + "}";
  EXPECT_FALSE(decode_common_envelope(deep));
  DecodeError why;
  EXPECT_FALSE(decode_envelope(deep, &why));
  EXPECT_EQ(why.reason, "nested too deep");
  std::string deepest =
      R"({"data":)" + std::string(kMaxDepth, '[') + std::string(kMaxDepth, ']') + "}";
  EXPECT_TRUE(decode_common_envelope(deepest));
}

TEST(Codec, MessageRoundTrip) {
  Message m(nlohmann::json{{"n", 1}}, 404, "s1");
  auto back = decode_envelope(m.to_json());
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, m);
  EXPECT_FALSE(m.ok());
  EXPECT_EQ(Message("boom", 500).error_text(), "boom");
}

TEST(ErrorRecord, WireFormHasProtocolKeysInOrder) {
  ErrorRecord r;
  r.topic = "echo";
  r.request_data = R"({"data":1,"code":200,"sender":"s"})";
  r.sender = "s";
  r.timestamp = "2016-02-23T06:55:12Z";
  r.backtrace = "boom";
  r.code = 500;
  EXPECT_EQ(
      r.dump(),
      R"({"topic":"echo","request_data":"{\"data\":1,\"code\":200,\"sender\":\"s\"}",)"
      R"("user_data":"","sender":"s","multi_process":false,"timestamp":"2016-02-23T06:55:12Z",)"
      R"("backtrace":"boom","code":500})");
  ErrorRecord back;
  ASSERT_TRUE(ErrorRecord::from_json(r.to_json(), back));
  EXPECT_EQ(back.topic, "echo");
  EXPECT_EQ(back.code, 500);
  EXPECT_FALSE(ErrorRecord::from_json(nlohmann::json::array(), back));
  auto ts = ErrorRecord::now_timestamp();
  ASSERT_EQ(ts.size(), 20u);
  EXPECT_EQ(ts[10], 'T');
  EXPECT_EQ(ts.back(), 'Z');
}

}  // namespace
}  // namespace gilmour::detail
