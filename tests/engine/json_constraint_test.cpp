// Constrained decoding: the JSON acceptor byte by byte against hand-written valid and invalid
// texts (cross-checked with nlohmann's parser as an independent reference), schema constraints
// on hand cases, Gemma's tool-call notation, the constrained sampler on a made-up vocabulary, and
// a constrained Session on the tiny fixture model.
#include "engine/json_constraint.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/error.h"
#include "engine/sampler.h"
#include "engine/session.h"
#include "model/model.h"
#include "text/tokenizer.h"

namespace hearth::engine {
namespace {

using nlohmann::json;

std::shared_ptr<const JsonConstraint> Any() {
  return std::make_shared<const JsonConstraint>(JsonConstraint::ForSchema(json::object()));
}
std::shared_ptr<const JsonConstraint> Object() {
  return std::make_shared<const JsonConstraint>(JsonConstraint::AnyObject());
}
std::shared_ptr<const JsonConstraint> Schema(const std::string& schema) {
  return std::make_shared<const JsonConstraint>(JsonConstraint::ForSchema(json::parse(schema)));
}

struct Fed {
  size_t accepted = 0;  // bytes accepted before the first rejected one
  bool all = false;     // every byte accepted
  bool complete = false;
  bool can_continue = true;
};

// Feeds `text` one byte at a time; checks on the way that CanAccept agrees with Push.
Fed Feed(const std::shared_ptr<const JsonConstraint>& c, const std::string& text) {
  JsonAcceptor a(c);
  Fed f;
  for (char ch : text) {
    const bool can = a.CanAccept(std::string(1, ch));
    const bool ok = a.Push(static_cast<uint8_t>(ch));
    EXPECT_EQ(can, ok) << "CanAccept and Push disagree in " << text << " at " << f.accepted;
    if (!ok) return f;
    ++f.accepted;
  }
  f.all = true;
  f.complete = a.complete();
  f.can_continue = a.can_continue();
  return f;
}

bool ParsesAsJson(const std::string& s) { return !json::parse(s, nullptr, false).is_discarded(); }

TEST(JsonAcceptor, AcceptsValidJsonByteByByte) {
  const std::vector<std::string> valid = {
      "{}",
      "[]",
      "{\"a\":1}",
      "{ \"a\" : [ 1 , 2.5 , -0 , 1e10 , 1E-2 , 0.5e+3 ] , \"b\" : { } }",
      "[true,false,null,\"\"]",
      "\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00\"",
      "\"h\xC3\xA9llo \xE2\x82\xAC \xF0\x9F\x98\x80\"",
      "{\"nested\":{\"x\":[{},[[]],{\"y\":null}]}}",
      "\n{\"a\":\"b\"}",
      "-12.5e+3",
      "0",
      "true",
  };
  for (const std::string& s : valid) {
    ASSERT_TRUE(ParsesAsJson(s)) << "reference rejects " << s;
    const Fed f = Feed(Any(), s);
    EXPECT_TRUE(f.all) << s << " rejected at byte " << f.accepted;
    EXPECT_TRUE(f.complete) << s;
  }
}

TEST(JsonAcceptor, RejectsInvalidJsonAtTheRightByte) {
  // text, bytes accepted before the rejection (the first byte that cannot continue valid JSON).
  const std::vector<std::pair<std::string, size_t>> invalid = {
      {"{,}", 1},
      {"{\"a\"}", 4},
      {"{\"a\":}", 5},
      {"[1,]", 3},
      {"[1 2]", 3},
      {"01", 1},
      {"1.x", 2},
      {".5", 0},
      {"+1", 0},
      {"nul1", 3},
      {"tx", 1},
      {"\"a\x01\"", 2},
      {"\"\\q\"", 2},
      {"\"\\uD800\"", 7},           // a high surrogate must be followed by a low one
      {"\"\\uDC00\"", 4},           // a lone low surrogate (rejected at its second hex digit)
      {"\"\xC0\x80\"", 1},          // overlong
      {"\"\xED\xA0\x80\"", 2},      // a UTF-16 surrogate encoded in UTF-8
      {"\"\xF4\x90\x80\x80\"", 2},  // above U+10FFFF
      {"{\"a\":1}}", 7},
      {"{} ", 2},  // nothing, not even whitespace, after the value
      {"[}", 1},
      {"{\"a\":1,}", 7},
      {"'a'", 0},
  };
  for (const auto& [s, at] : invalid) {
    EXPECT_FALSE(ParsesAsJson(s) && s != "{} ") << "reference accepts " << s;
    const Fed f = Feed(Any(), s);
    EXPECT_FALSE(f.all) << s;
    EXPECT_EQ(f.accepted, at) << s;
  }
  // Incomplete values are prefixes, not complete.
  for (const std::string s : {"{", "[1,", "\"abc", "tru", "-", "1e", "{\"a\":"}) {
    const Fed f = Feed(Any(), s);
    EXPECT_TRUE(f.all) << s;
    EXPECT_FALSE(f.complete) << s;
  }
}

TEST(JsonAcceptor, StopsRightAfterACompleteValueButNotAfterANumber) {
  Fed f = Feed(Object(), "{\"a\":[1]}");
  EXPECT_TRUE(f.complete);
  EXPECT_FALSE(f.can_continue);
  f = Feed(Any(), "12");
  EXPECT_TRUE(f.complete);
  EXPECT_TRUE(f.can_continue);  // "123" would be valid too
  EXPECT_EQ(Feed(Object(), "[]").accepted, 0u);
  EXPECT_EQ(Feed(Object(), "\"s\"").accepted, 0u);
}

TEST(JsonAcceptor, LimitsWhitespaceAndDepth) {
  const std::string ws(JsonAcceptor::kMaxWhitespaceRun, ' ');
  EXPECT_TRUE(Feed(Any(), ws + "1").all);
  EXPECT_EQ(Feed(Any(), ws + " 1").accepted, ws.size());
  // Whitespace inside strings is text, not counted.
  EXPECT_TRUE(Feed(Any(), "\"" + ws + ws + "\"").all);
  std::string deep(JsonAcceptor::kMaxDepth, '[');
  EXPECT_EQ(Feed(Any(), deep + "[").accepted, deep.size());
  EXPECT_EQ(Feed(Any(), std::string(JsonAcceptor::kMaxNumberLength + 1, '1')).accepted,
            static_cast<size_t>(JsonAcceptor::kMaxNumberLength));
}

// MinBytesToComplete is exact on these prefixes: from each, some byte always lowers it by one,
// and following such bytes completes the value in exactly that many bytes.
void ExpectClosable(const std::shared_ptr<const JsonConstraint>& c, const std::string& prefix) {
  JsonAcceptor a(c);
  ASSERT_TRUE(a.Push(prefix)) << prefix;
  const int distance = a.MinBytesToComplete();
  std::string tail;
  for (int step = 0; step < distance; ++step) {
    const int now = a.MinBytesToComplete();
    bool moved = false;
    for (int b = 0; b < 256 && !moved; ++b) {
      JsonAcceptor next = a;
      if (next.Push(static_cast<uint8_t>(b)) && next.MinBytesToComplete() == now - 1) {
        a = next;
        tail.push_back(static_cast<char>(b));
        moved = true;
      }
    }
    ASSERT_TRUE(moved) << prefix << tail << ": no byte lowers " << now;
  }
  EXPECT_TRUE(a.complete()) << prefix << tail;
  EXPECT_EQ(a.MinBytesToComplete(), 0);
}

const char* kPerson = R"({
  "type": "object",
  "description": "annotations are ignored",
  "properties": {
    "name": {"type": "string"},
    "age": {"type": "integer"},
    "tags": {"type": "array", "items": {"enum": ["a", "b"]}},
    "kind": {"enum": ["x", 3, null]},
    "home": {"type": "object", "properties": {"city": {"type": ["string", "null"]}},
             "required": ["city"]}
  },
  "required": ["name", "age"],
  "additionalProperties": false
})";

TEST(JsonSchemaConstraint, AcceptsWhatValidates) {
  const auto c = Schema(kPerson);
  for (const std::string s :
       {"{\"name\":\"bo\",\"age\":3}",
        "{\"age\":-1,\"name\":\"\",\"tags\":[\"a\",\"b\"],\"kind\":3}",
        "{\"name\":\"x\",\"age\":0,\"kind\":null,\"home\":{\"city\":null}}",
        "{ \"home\" : { \"city\" : \"Paris\" } , \"name\" : \"y\" , \"age\" : 12 }"}) {
    const Fed f = Feed(c, s);
    EXPECT_TRUE(f.all && f.complete) << s << " stopped at " << f.accepted;
    EXPECT_TRUE(ParsesAsJson(s));
  }
}

TEST(JsonSchemaConstraint, RejectsWhatDoesNotValidate) {
  const auto c = Schema(kPerson);
  const std::vector<std::pair<std::string, size_t>> invalid = {
      {"{\"name\":\"bo\"}", 12},         // "age" is required: '}' refused
      {"{\"name\":1", 8},                // wrong type
      {"{\"age\":1.5", 8},               // integer: no fraction
      {"{\"age\":1e3", 8},               // nor exponent
      {"{\"other\":1", 2},               // not a listed key (additionalProperties false)
      {"{\"nam\":", 5},                  // a prefix of a key is not the key
      {"{\"tags\":[\"c\"]", 10},         // not in the enum
      {"{\"name\":\"a\",\"name\"", 13},  // no key twice: no unwritten key starts so
      {"{\"kind\":\"y\"", 9},
      {"{\"kind\":true", 8},
      {"{\"home\":{}", 9},  // nested required key
      {"[]", 0},
  };
  for (const auto& [s, at] : invalid) {
    const Fed f = Feed(c, s);
    EXPECT_FALSE(f.all) << s;
    EXPECT_EQ(f.accepted, at) << s;
  }
  // Once every listed key is written, only '}' can follow.
  const auto one = Schema(R"({"type":"object","properties":{"a":{"type":"boolean"}},
                              "additionalProperties":false})");
  EXPECT_EQ(Feed(one, "{\"a\":true,").accepted, 9u);
  EXPECT_TRUE(Feed(one, "{\"a\":true}").complete);
  EXPECT_TRUE(Feed(one, "{}").complete);
}

TEST(JsonSchemaConstraint, ShortestWayToCompletionIsExact) {
  for (const std::string p : {"", "{", "{\"a\":[1,", "{\"a\":\"x\\", "{\"a\":\"x\\u00", "[tr",
                              "{\"a\":{\"b\":-", "{\"k\"", "{\"a\":1,", "\"\xE2"}) {
    ExpectClosable(Any(), p);
    if (!p.empty() && p[0] == '{') ExpectClosable(Object(), p);
  }
  const auto person = Schema(kPerson);
  for (const std::string p :
       {"", "{", "{\"na", "{\"name\"", "{\"name\":\"bo\",", "{\"age\":1,\"home\":{",
        "{\"tags\":[\"", "{\"kind\":", "{\"name\":\"a\",\"age\":2"}) {
    ExpectClosable(person, p);
  }
  const auto tools = std::make_shared<const JsonConstraint>(JsonConstraint::ForToolCall(
      {{"weather", json::parse(R"({"type":"object","properties":{"city":{"type":"string"}},
                                   "required":["city"]})")},
       {"time", nullptr}}));
  for (const std::string p : {"", "w", "weather{", "weather{ci", "weather{city:<|\"|>Par",
                              "weather{city:<|", "time{x:1,", "time{x:1", "time{ab"}) {
    ExpectClosable(tools, p);
  }
}

TEST(JsonSchemaConstraint, AdditionalPropertiesSchemaAndDefaults) {
  const auto c = Schema(R"({"type":"object","additionalProperties":{"type":"number"}})");
  EXPECT_TRUE(Feed(c, "{\"x\":1,\"y\":2.5}").complete);
  EXPECT_EQ(Feed(c, "{\"x\":\"s\"").accepted, 5u);
  // No type: any value; properties without type: an object.
  EXPECT_TRUE(Feed(Schema("{}"), "[1,\"a\"]").complete);
  EXPECT_EQ(Feed(Schema(R"({"properties":{"a":{}}})"), "[").accepted, 0u);
  EXPECT_TRUE(Feed(Schema(R"({"const":"on"})"), "\"on\"").complete);
  EXPECT_EQ(Feed(Schema(R"({"type":"array","items":{"type":"integer"}})"), "[1,2.").accepted, 4u);
}

TEST(JsonSchemaConstraint, UnsupportedKeywordsAreNamed) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"type":"string","pattern":"^a"})", "'pattern'"},
      {R"({"oneOf":[{"type":"string"}]})", "'oneOf'"},
      {R"({"type":"object","properties":{"a":{"minimum":1}}})", "schema.properties.a"},
      {R"({"$ref":"#/defs/x"})", "'$ref'"},
      {R"({"type":"date"})", "type 'date'"},
      {R"({"enum":[{"a":1}]})", "'enum'"},
  };
  for (const auto& [schema, needle] : cases) {
    try {
      JsonConstraint::ForSchema(json::parse(schema));
      ADD_FAILURE() << "accepted " << schema;
    } catch (const Error& e) {
      EXPECT_EQ(e.error_class(), ErrorClass::kInvalidInput);
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  }
}

TEST(JsonToolCallConstraint, GemmaNotationWithNamesAndSchemas) {
  const auto c = std::make_shared<const JsonConstraint>(JsonConstraint::ForToolCall(
      {{"get_weather", json::parse(R"({"type":"object","properties":{
          "location":{"type":"string"},"days":{"type":"integer"}},"required":["location"]})")},
       {"get", nullptr},
       {"odd", json::parse(R"({"type":"object","properties":{"q":{"pattern":"x"}}})")}}));
  for (const std::string s :
       {"get_weather{location:<|\"|>Paris<|\"|>}", "get_weather{days:3,location:<|\"|>a b<|\"|>}",
        "get{}", "get{x:1,y:[true,<|\"|>s<|\"|>],z:{w:null}}", "odd{anything:-1.5}"}) {
    const Fed f = Feed(c, s);
    EXPECT_TRUE(f.all && f.complete && !f.can_continue) << s << " stopped at " << f.accepted;
  }
  const std::vector<std::pair<std::string, size_t>> invalid = {
      {"get_weather{}", 12},           // location is required
      {"get_weather {", 11},           // the arguments follow the name directly
      {"get_weathe{", 10},             // not a tool name
      {"get{\"a\":1}", 4},             // keys are unquoted
      {"get{a: 1}", 6},                // no spaces
      {"get{a:<|\"|>x<y<|\"|>}", 13},  // '<' ends a string: only the closing marker may follow
      {"get_weather{location:1}", 21},
      {"get{a:\"s\"}", 6},  // strings are <|"|>...<|"|>
  };
  for (const auto& [s, at] : invalid) {
    const Fed f = Feed(c, s);
    EXPECT_FALSE(f.all) << s;
    EXPECT_EQ(f.accepted, at) << s;
  }
}

// A made-up vocabulary: token i has text kVocab[i]; the last one is end-of-generation.
const std::vector<std::string> kVocab = {"x", "{", "}", "\"a\"", ":", "1", "[", " ", "<eog>"};
constexpr int kEog = 8;

class VocabFilter final : public TokenFilter {
 public:
  explicit VocabFilter(const JsonAcceptor& a) : a_(a) {}
  bool Allowed(int id) override {
    ++checks;
    if (id == kEog) return a_.complete();
    return a_.CanAccept(kVocab[static_cast<size_t>(id)]);
  }
  int checks = 0;

 private:
  const JsonAcceptor& a_;
};

TEST(ConstrainedSampler, GreedySkipsTheInvalidBestToken) {
  SamplingParams p;
  p.temperature = 0;
  Sampler s(p);
  JsonAcceptor a(Object());
  VocabFilter f(a);
  // "x" has the highest logit but cannot start an object; "[" is second but not an object.
  const std::vector<float> logits = {9, 1, 0, 0, 0, 0, 5, 0, 8};
  EXPECT_EQ(s.Sample(logits, &f), 1);
  EXPECT_EQ(f.checks, 5);  // x (the argmax), then x, <eog>, [, { in logit order
  // Generating with logits that always prefer "x", then "}", then ...: the output is "{}" and
  // generation is forced to stop there.
  std::string out;
  for (int step = 0; step < 10 && a.can_continue(); ++step) {
    const int t = s.Sample(std::vector<float>{9, 1, 7, 6, 0, 0, 5, 0, 8}, &f);
    ASSERT_GE(t, 0);
    ASSERT_NE(t, kEog);
    ASSERT_TRUE(a.Push(kVocab[static_cast<size_t>(t)]));
    out += kVocab[static_cast<size_t>(t)];
  }
  EXPECT_EQ(out, "{}");
  EXPECT_TRUE(a.complete());
}

TEST(ConstrainedSampler, SamplingRenormalisesOverAllowedTokens) {
  SamplingParams p;
  p.temperature = 1;
  p.top_k = 0;
  p.top_p = 1;
  p.min_p = 0;
  Sampler s(p);
  JsonAcceptor a(Any());  // a value: "{", "\"a\"", "1", "[" and " " may start it
  VocabFilter f(a);
  // x (invalid) dominates; the valid ones have logits 0, 0, ln 2, -inf...
  const std::vector<float> logits = {20, 0,         -INFINITY, std::log(2.0f), -INFINITY,
                                     0,  -INFINITY, -INFINITY, -INFINITY};
  std::map<int, int> counts;
  const int n = 4000;
  for (int i = 0; i < n; ++i) ++counts[s.Sample(logits, &f)];
  EXPECT_EQ(counts.count(0), 0u);
  EXPECT_EQ(counts.count(kEog), 0u);
  // Renormalised over {"{":1, "\"a\"":2, "1":1} → 1/4, 1/2, 1/4.
  EXPECT_NEAR(counts[1] / double(n), 0.25, 0.03);
  EXPECT_NEAR(counts[3] / double(n), 0.50, 0.03);
  EXPECT_NEAR(counts[5] / double(n), 0.25, 0.03);
}

TEST(ConstrainedSampler, FallsBackWhenTopKHoldsNoAllowedToken) {
  SamplingParams p;
  p.temperature = 0.7f;
  p.top_k = 1;
  Sampler s(p);
  JsonAcceptor a(Object());
  VocabFilter f(a);
  EXPECT_EQ(s.Sample(std::vector<float>{9, 1, 0, 0, 0, 0, 5, 0, 8}, &f), 1);
  // Nothing allowed at all (a complete value, no end token in reach): -1.
  JsonAcceptor done(Object());
  ASSERT_TRUE(done.Push("{}"));
  VocabFilter g(done);
  EXPECT_EQ(s.Sample(std::vector<float>{9, 1, 0, 0, 0, 0, 5, 0, -INFINITY}, &g), -1);
}

// The tiny fixture model (random weights, Gemma's 262k vocabulary): constrained output parses.
struct Loaded {
  Loaded() : model(model::Model::Load(kPath)), tokenizer(text::Tokenizer::Load(kPath)) {}
  static inline const std::string kPath =
      std::string(HEARTH_SHARED_DIR) + "/fixtures/models/tiny-e.Q8_0.gguf";
  std::unique_ptr<model::Model> model;
  text::Tokenizer tokenizer;
};

// Generates with `constraint` from several seeds; every output must parse and end on its own,
// even the ones cut short by max_tokens (the session steers to a close near the limit).
void ExpectJson(const std::shared_ptr<const JsonConstraint>& constraint, int max_tokens,
                const std::function<void(const json&)>& check) {
  static Loaded m;
  model::ContextOptions o;
  o.n_ctx = 512;
  o.n_threads = 1;
  Session session(*m.model, m.tokenizer, o);
  const auto prompt = m.tokenizer.Encode("Answer in JSON:", true);
  double seconds = 0;
  int64_t checks = 0;
  int tokens = 0;
  for (uint64_t seed : {1u, 2u, 3u, 4u, 5u}) {
    GenerateOptions g;
    g.max_tokens = max_tokens;
    g.sampling.seed = seed;
    g.sampling.temperature = seed == 1 ? 0.0f : 1.0f;
    g.constraint = constraint;
    const auto t0 = std::chrono::steady_clock::now();
    const GenerateResult r = session.Generate(prompt, g);
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    checks += r.stats.constraint_checks;
    tokens += r.stats.generated_tokens;
    EXPECT_EQ(r.stats.stop_reason, StopReason::kEndOfGeneration) << r.text;
    EXPECT_EQ(r.stats.eog_token, -1);
    const json j = json::parse(r.text, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << r.text;
    check(j);
    for (int32_t t : r.tokens) {
      const auto type = m.tokenizer.Type(t);
      EXPECT_TRUE(type == text::TokenType::kNormal || type == text::TokenType::kByte) << t;
    }
  }
  std::printf("constrained: %d tokens, %.1f checks/token, %.2f ms/token (model included)\n", tokens,
              static_cast<double>(checks) / tokens, 1000 * seconds / tokens);
}

TEST(ConstrainedSession, TinyModelWritesAnObjectThatParses) {
  ExpectJson(Object(), 40, [](const json& j) { EXPECT_TRUE(j.is_object()) << j; });
  ExpectJson(Object(), 400, [](const json& j) { EXPECT_TRUE(j.is_object()) << j; });
}

TEST(ConstrainedSession, TinyModelFollowsASchema) {
  ExpectJson(Schema(kPerson), 60, [](const json& j) {
    ASSERT_TRUE(j.is_object()) << j;
    ASSERT_TRUE(j.contains("name") && j["name"].is_string()) << j;
    ASSERT_TRUE(j.contains("age") && j["age"].is_number_integer()) << j;
    for (const auto& [k, v] : j.items()) {
      EXPECT_TRUE(k == "name" || k == "age" || k == "tags" || k == "kind" || k == "home") << k;
    }
    if (j.contains("tags")) {
      for (const auto& t : j["tags"]) EXPECT_TRUE(t == "a" || t == "b") << t;
    }
    if (j.contains("kind")) {
      EXPECT_TRUE(j["kind"] == "x" || j["kind"] == 3 || j["kind"].is_null()) << j;
    }
    if (j.contains("home")) {
      EXPECT_TRUE(j["home"].contains("city")) << j;
    }
  });
}

// The cost of testing every token of the 262k vocabulary against the acceptor: what a
// constraint would cost per token without the lazy, logit-ordered checks.
TEST(ConstrainedSession, FullVocabularyScanCost) {
  static Loaded m;
  JsonAcceptor a(Object());
  ASSERT_TRUE(a.Push("{\"key\": \"some te"));
  std::vector<std::string> pieces;
  for (int32_t id = 0; id < m.tokenizer.size(); ++id) {
    pieces.emplace_back(m.tokenizer.Type(id) == text::TokenType::kNormal ? m.tokenizer.Piece(id)
                                                                         : std::string_view());
  }
  const auto t0 = std::chrono::steady_clock::now();
  int allowed = 0;
  for (const auto& p : pieces) allowed += !p.empty() && a.CanAccept(p);
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  std::printf("full scan of %zu tokens inside a string: %.1f ms, %d allowed\n", pieces.size(), ms,
              allowed);
  EXPECT_GT(allowed, 1000);
}

}  // namespace
}  // namespace hearth::engine
