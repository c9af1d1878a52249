#include "agent/decoder.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

namespace edgeinfer::agent {
namespace {

Decoder MakeDecoder(InputConfig c) {
  auto d = Decoder::Create(c);
  EXPECT_TRUE(d.ok()) << d.status().ToString();
  return std::move(d).value();
}

InputConfig Json(std::string values = "/values", std::string ts = "", std::string key = "") {
  InputConfig c;
  c.values = {std::move(values)};
  c.timestamp = std::move(ts);
  c.stream_key = std::move(key);
  return c;
}

std::vector<float> Values(const DecodedMessage& m) { return {m.values.begin(), m.values.end()}; }

std::string F32le(const std::vector<float>& v) {
  std::string s(v.size() * 4, '\0');
  std::memcpy(s.data(), v.data(), s.size());
  return s;
}

// Decodes `payload`, expects a refusal with `reason`, and returns its detail.
std::string ExpectRejected(const Decoder& d, std::string_view payload, RejectReason reason) {
  DecodedMessage m;
  DecodeError e;
  EXPECT_FALSE(d.Decode(payload, &m, &e)) << payload;
  EXPECT_EQ(e.reason, reason) << payload << ": " << e.detail;
  return e.detail;
}

TEST(DecoderTest, ArrayOfNumbersWithTimestampAndKey) {
  Decoder d = MakeDecoder(Json("/values", "/ts", "/id"));
  DecodedMessage m;
  DecodeError e;
  ASSERT_TRUE(d.Decode(R"({"ts":1700000000123,"id":"m1","values":[1,-2.5,3e2]})", &m, &e))
      << e.detail;
  EXPECT_EQ(Values(m), (std::vector<float>{1, -2.5f, 300}));
  EXPECT_EQ(m.timestamp.kind, Timestamp::Kind::kNumber);
  EXPECT_EQ(m.timestamp.text, "1700000000123");
  EXPECT_EQ(m.stream_key, "m1");
}

TEST(DecoderTest, SingleNumberNestedPointerAndStringTimestamp) {
  Decoder d = MakeDecoder(Json("/data/0/v", "/meta/time", "/meta/sensor"));
  DecodedMessage m;
  DecodeError e;
  ASSERT_TRUE(d.Decode(
      R"({"meta":{"time":"2024-05-01T12:00:00.5Z","sensor":42},"data":[{"v":0.25}]})", &m, &e))
      << e.detail;
  EXPECT_EQ(Values(m), (std::vector<float>{0.25f}));
  EXPECT_EQ(m.timestamp.kind, Timestamp::Kind::kString);
  EXPECT_EQ(m.timestamp.text, "2024-05-01T12:00:00.5Z");
  EXPECT_EQ(m.stream_key, "42");  // a numeric key, as its decimal text
}

TEST(DecoderTest, WholeDocumentPointerAndMissingOptionalTimestamp) {
  Decoder d = MakeDecoder(Json("", "/ts"));
  DecodedMessage m;
  DecodeError e;
  ASSERT_TRUE(d.Decode("[4, 5, 6]", &m, &e)) << e.detail;
  EXPECT_EQ(Values(m), (std::vector<float>{4, 5, 6}));
  EXPECT_EQ(m.timestamp.kind, Timestamp::Kind::kNone);  // a pointer into an array: absent
  EXPECT_TRUE(m.stream_key.empty());
}

TEST(DecoderTest, FractionalTimestampKeepsItsValue) {
  Decoder d = MakeDecoder(Json("/values", "/ts"));
  DecodedMessage m;
  DecodeError e;
  ASSERT_TRUE(d.Decode(R"({"ts":1700000000.125,"values":[1]})", &m, &e));
  EXPECT_EQ(m.timestamp.text, "1700000000.125");
}

TEST(DecoderTest, RefusesMalformedJsonPrecisely) {
  Decoder d = MakeDecoder(Json("/values", "", "/id"));
  EXPECT_NE(ExpectRejected(d, R"({"values":[1,2)", RejectReason::kMalformed).find("malformed JSON"),
            std::string::npos);
  ExpectRejected(d, R"({"values":[1,2]} trailing)", RejectReason::kMalformed);
  ExpectRejected(d, "", RejectReason::kMalformed);
  ExpectRejected(d, "\xff\xfe", RejectReason::kMalformed);
  EXPECT_EQ(ExpectRejected(d, R"({"vals":[1],"id":"a"})", RejectReason::kMalformed),
            "no value at '/values'");
  EXPECT_EQ(ExpectRejected(d, R"({"values":[1,"2"],"id":"a"})", RejectReason::kMalformed),
            "'/values'[1] is a string, not a number");
  EXPECT_EQ(ExpectRejected(d, R"({"values":{"x":1},"id":"a"})", RejectReason::kMalformed),
            "'/values' is an object, not an array of numbers");
  EXPECT_EQ(ExpectRejected(d, R"({"values":[[1,2],[3,"x"]],"id":"a"})", RejectReason::kMalformed),
            "'/values'[3] is a string, not a number");
  ExpectRejected(d, R"({"values":[null],"id":"a"})", RejectReason::kMalformed);
  EXPECT_EQ(ExpectRejected(d, R"({"values":[1]})", RejectReason::kMalformed),
            "no stream key at '/id'");
  ExpectRejected(d, R"({"values":[1],"id":[1]})", RejectReason::kMalformed);
}

// Sensors that send a list of samples: [[x, y, z], ...] flattens row-major (time-major).
TEST(DecoderTest, NestedArraysFlattenRowMajor) {
  Decoder d = MakeDecoder(Json("/samples"));
  DecodedMessage m;
  DecodeError e;
  ASSERT_TRUE(d.Decode(R"({"samples":[[1,2,3],[4,5,6]]})", &m, &e)) << e.detail;
  EXPECT_EQ(Values(m), (std::vector<float>{1, 2, 3, 4, 5, 6}));
  ASSERT_TRUE(d.Decode(R"({"samples":[[[1],[2]],[]]})", &m, &e)) << e.detail;
  EXPECT_EQ(Values(m), (std::vector<float>{1, 2}));
  std::string deep = R"({"samples":)" + std::string(9, '[') + "1" + std::string(9, ']') + "}";
  EXPECT_NE(ExpectRejected(d, deep, RejectReason::kMalformed).find("nested deeper than 8"),
            std::string::npos);
}

// Sensors that send one field per channel: {"x": .., "y": .., "z": ..}, one sample or many.
TEST(DecoderTest, OnePointerPerChannelInterleavesTimeSteps) {
  InputConfig c = Json();
  c.values = {"/x", "/y", "/z"};
  Decoder d = MakeDecoder(c);
  DecodedMessage m;
  DecodeError e;
  ASSERT_TRUE(d.Decode(R"({"x":0.5,"y":-1,"z":9.8})", &m, &e)) << e.detail;
  EXPECT_EQ(Values(m), (std::vector<float>{0.5f, -1, 9.8f}));
  ASSERT_TRUE(d.Decode(R"({"z":[7,8],"x":[1,2],"y":[4,5]})", &m, &e)) << e.detail;
  EXPECT_EQ(Values(m), (std::vector<float>{1, 4, 7, 2, 5, 8}));
  EXPECT_EQ(ExpectRejected(d, R"({"x":[1,2],"y":[4],"z":[7,8]})", RejectReason::kWrongLength),
            "'/y' has 1 values, '/x' has 2: channels must be equally long");
  EXPECT_EQ(ExpectRejected(d, R"({"x":1,"y":2})", RejectReason::kMalformed), "no value at '/z'");
  EXPECT_EQ(ExpectRejected(d, R"({"x":1,"y":"2","z":3})", RejectReason::kMalformed),
            "'/y' is a string, not a number or an array");
  EXPECT_EQ(ExpectRejected(d, R"({"x":[1],"y":[2],"z":[1e40]})", RejectReason::kNonFinite)
                .find("'/z'[0]"),
            0u);
  c.values = {"/x", "y"};
  EXPECT_FALSE(Decoder::Create(c).ok());
  c.values = {};
  EXPECT_FALSE(Decoder::Create(c).ok());
}

TEST(DecoderTest, RefusesWrongTimestampType) {
  Decoder d = MakeDecoder(Json("/values", "/ts"));
  ExpectRejected(d, R"({"ts":{"s":1},"values":[1]})", RejectReason::kMalformed);
}

TEST(DecoderTest, RefusesValuesOutsideFloatRange) {
  Decoder d = MakeDecoder(Json());
  ExpectRejected(d, R"({"values":[1, 1e39]})", RejectReason::kNonFinite);
  ExpectRejected(d, R"({"values":-1e300})", RejectReason::kNonFinite);
}

TEST(DecoderTest, RefusesOversizedBeforeParsing) {
  InputConfig c = Json();
  c.max_payload_bytes = 16;
  Decoder d = MakeDecoder(c);
  EXPECT_NE(ExpectRejected(d, R"({"values":[1,2,3,4]})", RejectReason::kOversized).find("16"),
            std::string::npos);
  DecodedMessage m;
  DecodeError e;
  EXPECT_TRUE(d.Decode(R"({"values":[1]})", &m, &e));
}

TEST(DecoderTest, F32leDecodesUnalignedPayloads) {
  InputConfig c;
  c.format = "f32le";
  Decoder d = MakeDecoder(c);
  const std::vector<float> want = {1.5f, -2.f, 1e-30f};
  std::string buf = "x" + F32le(want);  // deliberately misaligned by one byte
  DecodedMessage m;
  DecodeError e;
  ASSERT_TRUE(d.Decode(std::string_view(buf).substr(1), &m, &e)) << e.detail;
  EXPECT_EQ(Values(m), want);
  EXPECT_EQ(m.timestamp.kind, Timestamp::Kind::kNone);
}

TEST(DecoderTest, F32leRefusesBadLengthAndNonFinite) {
  InputConfig c;
  c.format = "f32le";
  Decoder d = MakeDecoder(c);
  ExpectRejected(d, "abcdefg", RejectReason::kMalformed);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(ExpectRejected(d, F32le({1, nan}), RejectReason::kNonFinite), "value 1 is NaN");
  EXPECT_EQ(ExpectRejected(d, F32le({-inf}), RejectReason::kNonFinite), "value 0 is Inf");
}

TEST(DecoderTest, CreateRefusesBadConfig) {
  InputConfig c;
  c.format = "csv";
  EXPECT_FALSE(Decoder::Create(c).ok());
  EXPECT_FALSE(Decoder::Create(Json("values")).ok());  // pointers start with '/'
  EXPECT_FALSE(Decoder::Create(Json("/values", "ts")).ok());
}

TEST(DecoderTest, ReusesBuffersAcrossMessages) {
  Decoder d = MakeDecoder(Json());
  DecodedMessage m;
  DecodeError e;
  ASSERT_TRUE(d.Decode(R"({"values":[1,2,3,4,5,6,7,8]})", &m, &e));
  const float* first = m.values.data();
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(d.Decode(R"({"values":[9,8,7]})", &m, &e));
    EXPECT_EQ(m.values.data(), first);  // the same per-thread buffer: no allocation
  }
  EXPECT_EQ(Values(m), (std::vector<float>{9, 8, 7}));
}

TEST(DecoderTest, MutatedPayloadsAreRefusedOrDecodedNeverCrash) {
  Decoder json = MakeDecoder(Json("/values", "/ts", "/id"));
  InputConfig raw;
  raw.format = "f32le";
  Decoder f32 = MakeDecoder(raw);
  const std::string seed = R"({"ts":"2024-01-01","id":7,"values":[1.5,-2,3e-3,4]})";
  std::mt19937 rng(42);
  DecodedMessage m;
  DecodeError e;
  int decoded = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string p = seed;
    for (int k = rng() % 4 + 1; k > 0; --k) {
      const size_t at = rng() % p.size();
      switch (rng() % 3) {
        case 0:
          p[at] = static_cast<char>(rng());
          break;
        case 1:
          p.erase(at, 1);
          break;
        default:
          p.insert(at, 1, static_cast<char>(rng()));
          break;
      }
    }
    decoded += json.Decode(p, &m, &e);
    f32.Decode(p, &m, &e);
  }
  EXPECT_GT(decoded, 0);  // some mutations stay valid (inside numbers or strings)
}

}  // namespace
}  // namespace edgeinfer::agent
