// `hearth quantize` against llama-quantize itself: every quantized fixture model was written by
// llama-quantize from the F32 fixture, so re-quantizing the F32 file must give the same type for
// every tensor and the same bytes.
#include "convert/convert.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "base/error.h"
#include "gguf/gguf.h"
#include "tensor/tensor.h"

namespace hearth::convert {
namespace {

const std::string kModels = std::string(HEARTH_SHARED_DIR) + "/fixtures/models/";

struct Case {
  const char* model;
  const char* preset;
};

class QuantizeMatchesLlamaQuantize : public ::testing::TestWithParam<Case> {};

TEST_P(QuantizeMatchesLlamaQuantize, SameTypesAndBytes) {
  const Case c = GetParam();
  const std::string out = ::testing::TempDir() + "hearth_q_" + std::to_string(::getpid()) + "_" +
                          c.model + "." + c.preset + ".gguf";
  QuantizeOptions options;
  options.input = kModels + c.model + ".F32.gguf";
  options.output = out;
  options.preset = FindPreset(c.preset);
  ASSERT_NE(options.preset, nullptr);
  options.threads = 2;
  QuantizeModel(options);

  gguf::File ours = gguf::File::Open(out);
  gguf::File reference = gguf::File::Open(kModels + c.model + "." + c.preset + ".gguf");
  ASSERT_EQ(ours.tensors().size(), reference.tensors().size());
  for (const gguf::TensorInfo& ref : reference.tensors()) {
    const gguf::TensorInfo* mine = ours.FindTensor(ref.name);
    ASSERT_NE(mine, nullptr) << ref.name;
    EXPECT_EQ(gguf::TensorTypeName(mine->type_id), gguf::TensorTypeName(ref.type_id)) << ref.name;
    ASSERT_EQ(mine->n_bytes, ref.n_bytes) << ref.name;
    EXPECT_EQ(std::memcmp(mine->data, ref.data, ref.n_bytes), 0) << ref.name << " differs";
  }
  EXPECT_EQ(ours.GetInt("general.file_type"), reference.GetInt("general.file_type"));
  EXPECT_EQ(ours.GetString("general.name"), reference.GetString("general.name"));
  std::remove(out.c_str());
}

INSTANTIATE_TEST_SUITE_P(
    Fixtures, QuantizeMatchesLlamaQuantize,
    ::testing::Values(Case{"tiny-e", "Q8_0"}, Case{"tiny-e", "Q4_0"}, Case{"tiny-e", "Q4_K_M"},
                      Case{"tiny-e", "Q6_K"}, Case{"tiny-moe", "F16"}, Case{"tiny-moe", "BF16"},
                      Case{"tiny-moe", "Q8_0"}, Case{"tiny-moe", "Q4_0"},
                      Case{"tiny-moe", "Q4_K_M"}, Case{"tiny-moe", "Q6_K"},
                      Case{"tiny-dense", "F16"}, Case{"tiny-dense", "BF16"},
                      Case{"tiny-dense", "Q8_0"}, Case{"tiny-dense", "Q4_0"},
                      Case{"tiny-dense", "Q4_K_M"}, Case{"tiny-dense", "Q6_K"}),
    [](const auto& param_info) {
      std::string name = std::string(param_info.param.model) + "_" + param_info.param.preset;
      for (char& ch : name) {
        if (ch == '-') ch = '_';
      }
      return name;
    });

TEST(ChooseType, MoreBitsRuleByHand) {
  // 8 layers: layers 0 (< 8/8), 7 (≥ 7), 3 and 6 ((i − 1) % 3 == 2) get more bits.
  const Preset& q4km = *FindPreset("q4_k_m");
  for (int layer = 0; layer < 8; ++layer) {
    TensorRole role{"blk." + std::to_string(layer) + ".ffn_down.weight", {512, 256}, layer, 8};
    bool more = layer == 0 || layer == 3 || layer == 6 || layer == 7;
    EXPECT_EQ(ChooseType(q4km, role), more ? tensor::kQ6_K : tensor::kQ4_K) << layer;
  }
  // 26B-like rows of 704 cannot hold 256-blocks: Q4_K falls back to Q5_0 (layer 4 of 30:
  // 4 ≥ 30/8, 4 < 7·30/8, (4 − 3) % 3 ≠ 2), Q6_K to Q8_0 (layer 1 < 30/8 gets more bits).
  TensorRole experts{"blk.4.ffn_down_exps.weight", {704, 2816, 128}, 4, 30, 0, 0, 128};
  EXPECT_EQ(ChooseType(q4km, experts), tensor::kQ5_0);
  experts.layer = 1;
  EXPECT_EQ(ChooseType(q4km, experts), tensor::kQ8_0);
  TensorRole router{"blk.1.ffn_gate_inp.weight", {2816, 128}, 1, 30};
  EXPECT_FALSE(IsQuantizable(router));
}

TEST(Quantize, RejectsUnknownPresetAndMissingFile) {
  EXPECT_EQ(FindPreset("Q3_XYZ"), nullptr);
  QuantizeOptions options;
  options.input = "/nonexistent.gguf";
  options.output = ::testing::TempDir() + "never.gguf";
  options.preset = FindPreset("Q8_0");
  try {
    QuantizeModel(options);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.error_class(), ErrorClass::kIo);
  }
}

}  // namespace
}  // namespace hearth::convert
