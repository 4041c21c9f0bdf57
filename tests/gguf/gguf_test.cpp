// The GGUF reader against real fixture files and a corpus of deliberately broken ones.
#include "gguf/gguf.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "base/error.h"

namespace hearth::gguf {
namespace {

const std::string kShared = HEARTH_SHARED_DIR;

File ParseBytes(const std::vector<uint8_t>& bytes) {
  return File::Parse(MappedFile::FromBytes(bytes, "test.gguf"));
}

// Expects parsing to fail with an invalid-input error whose message contains `needle`.
void ExpectRejected(const std::vector<uint8_t>& bytes, const std::string& needle) {
  try {
    ParseBytes(bytes);
    FAIL() << "accepted a broken file; expected an error mentioning '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_EQ(e.error_class(), ErrorClass::kInvalidInput);
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("test.gguf"), std::string::npos) << e.what();
  }
}

Writer SmallModel() {
  Writer w;
  w.SetString("general.architecture", "gemma4");
  w.SetUint32("gemma4.block_count", 2);
  w.SetFloat32("gemma4.attention.layer_norm_rms_epsilon", 1e-6f);
  const std::array<bool, 2> pattern = {true, false};
  w.SetBoolArray("gemma4.attention.sliding_window_pattern", pattern);
  std::vector<std::string> tokens = {"<pad>", "<eos>", "a"};
  w.SetStringArray("tokenizer.ggml.tokens", tokens);
  std::vector<float> weights(64);
  for (size_t i = 0; i < weights.size(); ++i) weights[i] = static_cast<float>(i) * 0.5f;
  w.AddTensor("a.weight", {8, 8}, static_cast<uint32_t>(TensorType::kF32),
              {reinterpret_cast<const uint8_t*>(weights.data()), weights.size() * 4});
  std::vector<uint8_t> q8(34 * 2, 1);  // two Q8_0 blocks: one row of 64
  w.AddTensor("b.weight", {64}, static_cast<uint32_t>(TensorType::kQ8_0), q8);
  return w;
}

TEST(GgufWriterReader, RoundTripsMetadataAndTensors) {
  File f = ParseBytes(SmallModel().Serialize());
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.RequireString("general.architecture"), "gemma4");
  EXPECT_EQ(f.RequireInt("gemma4.block_count"), 2);
  EXPECT_FLOAT_EQ(static_cast<float>(f.RequireFloat("gemma4.attention.layer_norm_rms_epsilon")),
                  1e-6f);
  auto pattern = f.GetIntArray("gemma4.attention.sliding_window_pattern");
  ASSERT_TRUE(pattern.has_value());
  EXPECT_EQ(*pattern, (std::vector<int64_t>{1, 0}));
  const auto* tokens = f.GetStringArray("tokenizer.ggml.tokens");
  ASSERT_NE(tokens, nullptr);
  ASSERT_EQ(tokens->size(), 3u);
  EXPECT_EQ((*tokens)[1], "<eos>");

  ASSERT_EQ(f.tensors().size(), 2u);
  const TensorInfo* a = f.FindTensor("a.weight");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->n_bytes, 256u);
  float v;
  std::memcpy(&v, a->data + 4 * 3, 4);
  EXPECT_FLOAT_EQ(v, 1.5f);
  const TensorInfo* b = f.FindTensor("b.weight");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->n_bytes, 68u);
  EXPECT_EQ(b->offset % 32, 0u);
  EXPECT_EQ(f.FindTensor("missing"), nullptr);
}

TEST(GgufReader, TypedGettersAreLenientButNotWrong) {
  Writer w;
  w.SetInt32("as_int32", 7);
  w.SetString("name", "x");
  File f = ParseBytes(w.Serialize());
  EXPECT_EQ(f.GetInt("as_int32"), 7);
  EXPECT_EQ(f.GetFloat("as_int32"), 7.0);
  EXPECT_FALSE(f.GetInt("absent").has_value());
  EXPECT_THROW(f.GetInt("name"), Error);
  EXPECT_THROW(f.RequireInt("absent"), Error);
}

TEST(GgufReader, ReadsTheRealVocabularyFile) {
  File f = File::Open(kShared + "/fixtures/tokenizer/gemma-4-vocab.gguf");
  EXPECT_EQ(f.RequireString("tokenizer.ggml.model"), "gemma4");
  const auto* tokens = f.GetStringArray("tokenizer.ggml.tokens");
  ASSERT_NE(tokens, nullptr);
  EXPECT_EQ(tokens->size(), 262144u);
  EXPECT_EQ((*tokens)[2], "<bos>");
}

TEST(GgufReader, ReadsEveryFixtureModel) {
  int n = 0;
  for (const auto& entry :
       std::filesystem::directory_iterator(kShared + "/fixtures/models")) {
    if (entry.path().extension() != ".gguf") continue;
    File f = File::Open(entry.path().string());
    EXPECT_EQ(f.RequireString("general.architecture"), "gemma4") << entry.path();
    EXPECT_NE(f.FindTensor("token_embd.weight"), nullptr) << entry.path();
    ++n;
  }
  EXPECT_GE(n, 19);
}

// ---- The broken-file corpus: every defect is named, nothing crashes. ----

std::vector<uint8_t> Valid() { return SmallModel().Serialize(); }

template <typename T>
void Poke(std::vector<uint8_t>& b, size_t at, T value) {
  std::memcpy(b.data() + at, &value, sizeof(T));
}

TEST(GgufMalformed, WrongMagic) {
  auto b = Valid();
  b[0] = 'X';
  ExpectRejected(b, "not a GGUF file");
}

TEST(GgufMalformed, EmptyFile) { ExpectRejected({}, "not a GGUF file"); }

TEST(GgufMalformed, UnsupportedVersion) {
  auto b = Valid();
  Poke<uint32_t>(b, 4, 9);
  ExpectRejected(b, "unsupported GGUF version 9");
  Poke<uint32_t>(b, 4, 1);
  ExpectRejected(b, "version 1");
  Poke<uint32_t>(b, 4, 0x03000000);
  ExpectRejected(b, "big-endian");
}

TEST(GgufMalformed, AbsurdCounts) {
  auto b = Valid();
  Poke<int64_t>(b, 8, int64_t{1} << 60);
  ExpectRejected(b, "absurd tensor count");
  b = Valid();
  Poke<int64_t>(b, 16, -1);
  ExpectRejected(b, "absurd metadata count");
}

TEST(GgufMalformed, TruncatedAtEveryLength) {
  auto full = Valid();
  // The file ends in alignment padding after the last tensor; cutting that is harmless.
  File parsed = ParseBytes(full);
  uint64_t data_end = 0;
  for (const auto& t : parsed.tensors()) {
    data_end = std::max(data_end, parsed.data_offset() + t.offset + t.n_bytes);
  }
  ASSERT_LT(data_end, full.size());
  // Every shorter prefix must be rejected cleanly (ASan checks no byte past the end is read).
  for (size_t n = 0; n < data_end; n += (n < 400 ? 1 : 7)) {
    std::vector<uint8_t> prefix(full.begin(), full.begin() + static_cast<long>(n));
    EXPECT_THROW(ParseBytes(prefix), Error) << "prefix of " << n << " bytes";
  }
}

TEST(GgufMalformed, AbsurdStringLength) {
  auto b = Valid();
  Poke<uint64_t>(b, 24, uint64_t{1} << 62);  // length of the first key
  ExpectRejected(b, "absurd length");
}

TEST(GgufMalformed, UnknownTensorTypeAndBadShape) {
  auto make = [](uint32_t type, std::vector<int64_t> shape, size_t bytes) {
    Writer w;
    std::vector<uint8_t> data(bytes, 0);
    w.AddTensor("t.weight", std::move(shape), type, data);
    return w.Serialize();
  };
  ExpectRejected(make(77, {32}, 32), "unknown or unsupported type id 77");
  ExpectRejected(make(static_cast<uint32_t>(TensorType::kQ4_0), {33}, 18),
                 "not a multiple of the Q4_0 block size 32");
  ExpectRejected(make(0, {0}, 0), "non-positive dimension");
  ExpectRejected(make(0, {1, 1, 1, 1, 1}, 4), "5 dimensions");
  // Declared 8x8 F32 (256 bytes) but only 64 bytes of data at the end of the file.
  ExpectRejected(make(0, {8, 8}, 64), "truncated: tensor 't.weight'");
}

TEST(GgufMalformed, MisalignedAndOverlappingTensors) {
  Writer w;
  std::vector<uint8_t> data(64, 0);
  w.AddTensor("first", {16}, 0, data);
  w.AddTensor("second", {16}, 0, data);
  auto b = w.Serialize();
  // Find the second tensor's offset field: it is the last 8 bytes of the tensor-info table.
  ASSERT_NO_THROW(ParseBytes(b));
  size_t info_end = 24;
  // header(24) + infos: each = 8+len(name) + 4 + 8*dims + 4 + 8
  info_end += 8 + 5 + 4 + 8 + 4 + 8;
  info_end += 8 + 6 + 4 + 8 + 4 + 8;
  size_t second_offset_at = info_end - 8;
  auto misaligned = b;
  Poke<uint64_t>(misaligned, second_offset_at, 70);
  ExpectRejected(misaligned, "misaligned");
  auto overlapping = b;
  Poke<uint64_t>(overlapping, second_offset_at, 32);
  ExpectRejected(overlapping, "overlap");
}

TEST(GgufMalformed, DuplicateKeysAndBadValues) {
  Writer w;
  w.SetUint32("a", 1);
  auto b = w.Serialize();
  // Append a second "a" entry by hand: bump n_kv and splice the same entry after the first.
  std::vector<uint8_t> entry(b.begin() + 24, b.begin() + 24 + 8 + 1 + 4 + 4);
  b.insert(b.begin() + 24 + static_cast<long>(entry.size()), entry.begin(), entry.end());
  Poke<int64_t>(b, 16, 2);
  ExpectRejected(b, "duplicate metadata key 'a'");

  Writer bad_bool;
  bad_bool.SetBool("flag", true);
  auto bb = bad_bool.Serialize();
  bb[24 + 8 + 4 + 4] = 7;  // the bool's byte
  ExpectRejected(bb, "bool with value 7");

  Writer bad_align;
  bad_align.SetUint32("general.alignment", 24);
  ExpectRejected(bad_align.Serialize(), "power of two");
}

TEST(GgufMalformed, SplitFilesAreRejectedWithAWayOut) {
  Writer w;
  w.SetUint32("split.count", 3);
  try {
    ParseBytes(w.Serialize());
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("split"), std::string::npos);
    EXPECT_NE(e.hint().find("llama-gguf-split --merge"), std::string::npos);
  }
}

TEST(GgufMalformed, MissingFileIsAnIoError) {
  try {
    File::Open("/nonexistent/model.gguf");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.error_class(), ErrorClass::kIo);
    EXPECT_NE(std::string(e.what()).find("/nonexistent/model.gguf"), std::string::npos);
  }
}

}  // namespace
}  // namespace hearth::gguf
