// The Gemma 4 tokenizer against independent references: llama.cpp's test vectors (.inp/.out),
// tokenizer-cases.json, the chat fixtures' expected_ids, hand-computed ids from the spec, and a
// corpus of malformed tokenizer metadata.
#include "text/tokenizer.h"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "base/error.h"
#include "gguf/gguf.h"

namespace hearth::text {
namespace {

const std::string kShared = HEARTH_SHARED_DIR;
const std::string kVocab = kShared + "/fixtures/tokenizer/gemma-4-vocab.gguf";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << path;
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

const Tokenizer& Gemma() {
  static const Tokenizer* tokenizer = new Tokenizer(Tokenizer::Load(kVocab));
  return *tokenizer;
}

std::string Join(const std::vector<TokenId>& ids) {
  std::string out;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i > 0) out.push_back(' ');
    out.append(std::to_string(ids[i]));
  }
  return out;
}

bool IsValidUtf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    int len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    if (len == 0 || i + len > s.size()) return false;
    for (int k = 1; k < len; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    }
    i += len;
  }
  return true;
}

TEST(Tokenizer, LoadsTheRealVocabulary) {
  auto start = std::chrono::steady_clock::now();
  Tokenizer t = Tokenizer::Load(kVocab);
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(t.size(), 262144);
  EXPECT_EQ(t.bos_id(), 2);
  EXPECT_EQ(t.eos_id(), 1);
  EXPECT_EQ(t.TokenText(105), "<|turn>");
  EXPECT_EQ(t.Type(105), TokenType::kControl);
  EXPECT_EQ(t.Type(48), TokenType::kUserDefined);
  EXPECT_EQ(t.Find("<0x0D>"), 251);
  EXPECT_TRUE(t.IsEndOfGeneration(1));
  EXPECT_TRUE(t.IsEndOfGeneration(106));
  EXPECT_TRUE(t.IsEndOfGeneration(50));
  EXPECT_FALSE(t.IsEndOfGeneration(212));  // "</s>" is ordinary text for Gemma 4
  std::printf("vocabulary loaded in %.3f s\n", seconds);
}

// llama.cpp's upstream vectors: inputs split on "\n__ggml_vocab_test__\n", one output line each,
// tokenized with add_bos=false, parse_special=false.
TEST(Tokenizer, UpstreamVectors) {
  std::string inp = ReadFile(kVocab + ".inp");
  std::string out = ReadFile(kVocab + ".out");
  std::vector<std::string> inputs;
  const std::string sep = "\n__ggml_vocab_test__\n";
  for (size_t pos = 0;;) {
    size_t next = inp.find(sep, pos);
    if (next == std::string::npos) {
      inputs.push_back(inp.substr(pos));
      break;
    }
    inputs.push_back(inp.substr(pos, next - pos));
    pos = next + sep.size();
  }
  std::vector<std::string> lines;
  std::istringstream ls(out);
  for (std::string line; std::getline(ls, line);) lines.push_back(line);
  ASSERT_EQ(inputs.size(), 46u);
  ASSERT_GE(lines.size(), inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    EXPECT_EQ(Join(Gemma().Encode(inputs[i], false, false)), lines[i])
        << "vector " << i << ": " << nlohmann::json(inputs[i]).dump(-1, ' ', false,
                                                                    nlohmann::json::error_handler_t::replace);
  }
}

TEST(Tokenizer, FixtureCases) {
  auto doc = nlohmann::json::parse(ReadFile(kShared + "/fixtures/tokenizer/tokenizer-cases.json"));
  ASSERT_EQ(doc["cases"].size(), 75u);
  for (const auto& c : doc["cases"]) {
    std::string name = c["name"];
    std::string text = c["text"];
    auto ids = Gemma().Encode(text, c["add_bos"].get<bool>(), c["parse_special"].get<bool>());
    EXPECT_EQ(ids, c["expected_ids"].get<std::vector<TokenId>>()) << "case " << name;
    // Decoding gives the text back (with special rendering, so control tokens reappear), except
    // that a literal U+2581 in the input is indistinguishable from a space.
    if (name != "literal_u2581_in_input") {
      std::vector<TokenId> body(ids.begin() + (c["add_bos"].get<bool>() ? 1 : 0), ids.end());
      EXPECT_EQ(Gemma().Decode(body, true), text) << "round trip of case " << name;
    }
    // Streaming decode: same bytes, and every piece is whole UTF-8.
    StreamDecoder stream(Gemma(), true);
    std::string streamed;
    for (TokenId id : ids) {
      std::string piece = stream.Push(id);
      EXPECT_TRUE(IsValidUtf8(piece)) << "case " << name << " emitted a broken piece";
      streamed += piece;
    }
    streamed += stream.Finish();
    EXPECT_EQ(streamed, Gemma().Decode(ids, true)) << "stream of case " << name;
  }
}

TEST(Tokenizer, ChatFixtureIds) {
  int checked = 0;
  for (const auto& entry : std::filesystem::directory_iterator(kShared + "/fixtures/chat")) {
    std::string file = entry.path().filename().string();
    if (file.rfind("conv-", 0) != 0) continue;
    auto doc = nlohmann::json::parse(ReadFile(entry.path().string()));
    auto ids = Gemma().Encode(doc["expected_prompt"].get<std::string>(), false, true);
    EXPECT_EQ(ids, doc["expected_ids"].get<std::vector<TokenId>>()) << file;
    ++checked;
  }
  EXPECT_EQ(checked, 34);
}

// Values worked out by hand from the spec (§1.5, §1.6) and the vocabulary map (§1.2).
TEST(Tokenizer, SpecExamples) {
  const Tokenizer& t = Gemma();
  EXPECT_EQ(t.Encode("Hello world"), (std::vector<TokenId>{9259, 1902}));
  EXPECT_EQ(t.Encode("Hello", true), (std::vector<TokenId>{2, 9259}));
  EXPECT_EQ(t.Encode("", true), (std::vector<TokenId>{2}));
  EXPECT_TRUE(t.Encode("").empty());
  EXPECT_EQ(t.Encode("33"), (std::vector<TokenId>{t.Find("3").value(), t.Find("3").value()}));
  // 40 spaces: the 31-space token (id 167) then the 9-space token (id 145).
  EXPECT_EQ(t.Encode(std::string(40, ' ')), (std::vector<TokenId>{167, 145}));
  // 35 newlines: 31 (id 137) + 4 (id 110).
  EXPECT_EQ(t.Encode(std::string(35, '\n')), (std::vector<TokenId>{137, 110}));
  // Byte fallback: NBSP, CR, NUL, U+20000.
  EXPECT_EQ(t.Encode("\xC2\xA0"), (std::vector<TokenId>{238 + 0xC2, 238 + 0xA0}));
  EXPECT_EQ(t.Encode("\r"), (std::vector<TokenId>{251}));
  EXPECT_EQ(t.Encode(std::string_view("\0", 1)), (std::vector<TokenId>{238}));
  EXPECT_EQ(t.Encode("\xF0\xA0\x80\x80"),
            (std::vector<TokenId>{238 + 0xF0, 238 + 0xA0, 238 + 0x80, 238 + 0x80}));
  // Control tokens only with parse_special; user-defined always.
  EXPECT_EQ(t.Encode("<turn|>", false, true), (std::vector<TokenId>{106}));
  EXPECT_NE(t.Encode("<turn|>", false, false), (std::vector<TokenId>{106}));
  EXPECT_EQ(t.Encode("<|channel>", false, false), (std::vector<TokenId>{100}));
  EXPECT_NE(t.Encode("<|tool_response>", false, false), (std::vector<TokenId>{50}));
  EXPECT_EQ(t.Encode("<|tool_response>", false, true), (std::vector<TokenId>{50}));
  // Decode: control hidden unless asked, user-defined always shown.
  std::vector<TokenId> ids = {105, 100, 9259, 106};
  EXPECT_EQ(t.Decode(ids), "<|channel>Hello");
  EXPECT_EQ(t.Decode(ids, true), "<|turn><|channel>Hello<turn|>");
}

TEST(Tokenizer, InvalidUtf8BecomesReplacementCharacter) {
  const Tokenizer& t = Gemma();
  EXPECT_EQ(t.Encode("a\xFF" "b"), t.Encode("a\xEF\xBF\xBD" "b"));
  EXPECT_EQ(t.Encode("\xE2\x82"), t.Encode("\xEF\xBF\xBD\xEF\xBF\xBD"));
}

TEST(Tokenizer, DecodeRejectsIdsOutsideTheVocabulary) {
  std::vector<TokenId> ids = {262144};
  EXPECT_THROW(Gemma().Decode(ids), Error);
  ids = {-1};
  EXPECT_THROW(Gemma().Decode(ids), Error);
}

TEST(Tokenizer, StreamDecoderHoldsBackSplitCodePoints) {
  const Tokenizer& t = Gemma();
  StreamDecoder d(t);
  // U+20000 comes out as four byte tokens; nothing is emitted until the fourth.
  EXPECT_EQ(d.Push(238 + 0xF0), "");
  EXPECT_EQ(d.Push(238 + 0xA0), "");
  EXPECT_EQ(d.Push(238 + 0x80), "");
  EXPECT_EQ(d.Push(238 + 0x80), "\xF0\xA0\x80\x80");
  EXPECT_EQ(d.Push(9259), "Hello");
  EXPECT_EQ(d.Push(238 + 0xC2), "");
  EXPECT_EQ(d.Finish(), "\xC2");
}

// A newline-free line of 2 MB (minified code, base64) must not be quadratic.
TEST(Tokenizer, LongLineIsFast) {
  std::string line;
  while (line.size() < (2u << 20)) line += "var x1=function(a,b){return a+b;};aGVsbG8gd29ybGQ=";
  auto start = std::chrono::steady_clock::now();
  auto ids = Gemma().Encode(line);
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_GT(ids.size(), 100000u);
  EXPECT_EQ(Gemma().Decode(ids), line);
  EXPECT_LT(seconds, 30.0);
}

// ---- malformed metadata -------------------------------------------------------------------

struct TinyVocab {
  std::vector<std::string> tokens;
  std::vector<int32_t> types;
  std::vector<std::string> merges;
};

TinyVocab MakeTiny() {
  TinyVocab v;
  v.tokens = {"<pad>", "<eos>", "<bos>", "<|turn>", "<|\"|>"};
  v.types = {3, 3, 3, 3, 4};
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    v.tokens.push_back(name);
    v.types.push_back(6);
  }
  for (const char* s : {"a", "b", "ab", "\xE2\x96\x81", "\xE2\x96\x81" "ab", "c"}) {
    v.tokens.push_back(s);
    v.types.push_back(1);
  }
  v.merges = {"a b", "\xE2\x96\x81 ab"};
  return v;
}

gguf::File Build(const TinyVocab& v, const std::function<void(gguf::Writer&)>& tweak = {}) {
  gguf::Writer w;
  w.SetString("general.architecture", "gemma4");
  w.SetString("tokenizer.ggml.model", "gemma4");
  w.SetStringArray("tokenizer.ggml.tokens", v.tokens);
  w.SetInt32Array("tokenizer.ggml.token_type", v.types);
  w.SetStringArray("tokenizer.ggml.merges", v.merges);
  w.SetUint32("tokenizer.ggml.bos_token_id", 2);
  w.SetUint32("tokenizer.ggml.eos_token_id", 1);
  if (tweak) tweak(w);
  auto bytes = w.Serialize();
  return gguf::File::Parse(MappedFile::FromBytes(bytes, "tiny.gguf"));
}

void ExpectMalformed(const gguf::File& file, const std::string& needle) {
  try {
    Tokenizer::FromGguf(file);
    ADD_FAILURE() << "expected an error mentioning " << needle;
  } catch (const Error& e) {
    EXPECT_EQ(e.error_class(), ErrorClass::kInvalidInput);
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    EXPECT_FALSE(e.hint().empty());
  }
}

TEST(TokenizerMetadata, TinyVocabularyWorks) {
  Tokenizer t = Tokenizer::FromGguf(Build(MakeTiny()));
  TokenId ab = t.Find("ab").value();
  TokenId sp_ab = t.Find("\xE2\x96\x81" "ab").value();
  EXPECT_EQ(t.Encode("ab ab"), (std::vector<TokenId>{ab, sp_ab}));
  // 'd' is not a token: byte fallback.
  EXPECT_EQ(t.Encode("d"), (std::vector<TokenId>{5 + 'd'}));
  EXPECT_EQ(t.Decode(t.Encode("ab abd c")), "ab abd c");
}

TEST(TokenizerMetadata, MissingTokens) {
  gguf::Writer w;
  w.SetString("tokenizer.ggml.model", "gemma4");
  auto bytes = w.Serialize();
  ExpectMalformed(gguf::File::Parse(MappedFile::FromBytes(bytes, "x.gguf")),
                  "tokenizer.ggml.tokens");
}

TEST(TokenizerMetadata, MissingModel) {
  gguf::Writer w;
  auto bytes = w.Serialize();
  ExpectMalformed(gguf::File::Parse(MappedFile::FromBytes(bytes, "x.gguf")),
                  "tokenizer.ggml.model");
}

TEST(TokenizerMetadata, OtherTokenizerModel) {
  ExpectMalformed(Build(MakeTiny(), [](gguf::Writer& w) {
                    w.SetString("tokenizer.ggml.model", "llama");
                  }),
                  "llama");
}

TEST(TokenizerMetadata, TypeArrayLengthMismatch) {
  TinyVocab v = MakeTiny();
  v.types.pop_back();
  ExpectMalformed(Build(v), "tokenizer.ggml.token_type");
}

TEST(TokenizerMetadata, MissingTypeArray) {
  TinyVocab v = MakeTiny();
  gguf::Writer w;
  w.SetString("tokenizer.ggml.model", "gemma4");
  w.SetStringArray("tokenizer.ggml.tokens", v.tokens);
  w.SetStringArray("tokenizer.ggml.merges", v.merges);
  auto bytes = w.Serialize();
  ExpectMalformed(gguf::File::Parse(MappedFile::FromBytes(bytes, "x.gguf")),
                  "tokenizer.ggml.token_type");
}

TEST(TokenizerMetadata, ScoresLengthMismatch) {
  ExpectMalformed(Build(MakeTiny(), [](gguf::Writer& w) {
                    std::vector<float> scores(3, -1000.0f);
                    w.SetFloat32Array("tokenizer.ggml.scores", scores);
                  }),
                  "tokenizer.ggml.scores");
}

TEST(TokenizerMetadata, TypeOutOfRange) {
  TinyVocab v = MakeTiny();
  v.types[7] = 42;
  ExpectMalformed(Build(v), "type 42");
}

TEST(TokenizerMetadata, BosOutOfRange) {
  ExpectMalformed(Build(MakeTiny(), [](gguf::Writer& w) {
                    w.SetUint32("tokenizer.ggml.bos_token_id", 999999);
                  }),
                  "tokenizer.ggml.bos_token_id");
}

TEST(TokenizerMetadata, MissingMerges) {
  TinyVocab v = MakeTiny();
  gguf::Writer w;
  w.SetString("tokenizer.ggml.model", "gemma4");
  w.SetStringArray("tokenizer.ggml.tokens", v.tokens);
  w.SetInt32Array("tokenizer.ggml.token_type", v.types);
  auto bytes = w.Serialize();
  ExpectMalformed(gguf::File::Parse(MappedFile::FromBytes(bytes, "x.gguf")),
                  "tokenizer.ggml.merges");
}

TEST(TokenizerMetadata, MergeWithoutSpace) {
  TinyVocab v = MakeTiny();
  v.merges.push_back("ab");
  ExpectMalformed(Build(v), "merge 2");
}

TEST(TokenizerMetadata, MergeOfUnknownToken) {
  TinyVocab v = MakeTiny();
  v.merges.push_back("x y");
  ExpectMalformed(Build(v), "not in the vocabulary");
}

TEST(TokenizerMetadata, MissingByteToken) {
  TinyVocab v = MakeTiny();
  v.tokens[5 + 0x41] = "A-not-a-byte";
  ExpectMalformed(Build(v), "<0x41>");
}

TEST(TokenizerMetadata, TokensOfWrongType) {
  ExpectMalformed(Build(MakeTiny(), [](gguf::Writer& w) {
                    w.SetUint32("tokenizer.ggml.tokens", 7);
                  }),
                  "tokenizer.ggml.tokens");
}

}  // namespace
}  // namespace hearth::text
