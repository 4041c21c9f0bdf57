// Configuration, weight binding, context limits and the `hearth logits` command.
// Independent references: the generator configs (fixtures/models/NAME.json), the README of
// fixtures/refs, and hand-built broken GGUF files (one edit away from a real fixture).
#include "model/model.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "base/error.h"
#include "gguf/gguf.h"
#include "model/weights.h"
#include "ref_check.h"

namespace hearth::model {
namespace {

using testing::FixturesDir;

std::string ModelPath(const std::string& stem) {
  return FixturesDir() + "/models/" + stem + ".gguf";
}

nlohmann::json GeneratorConfig(const std::string& name) {
  std::ifstream in(FixturesDir() + "/models/" + name + ".json");
  return nlohmann::json::parse(in);
}

// A per-layer value of the generator config: scalar or array.
int PerLayer(const nlohmann::json& j, int layer) {
  return j.is_array() ? j[layer].get<int>() : j.get<int>();
}

class ConfigTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ConfigTest, MatchesGeneratorConfig) {
  const nlohmann::json g = GeneratorConfig(GetParam());
  auto model = Model::Load(ModelPath(GetParam() + ".F32"));
  const ModelConfig& c = model->config();
  EXPECT_EQ(c.n_layer, g["n_layer"].get<int>());
  EXPECT_EQ(c.n_embd, g["n_embd"].get<int>());
  EXPECT_EQ(c.n_vocab, g["n_vocab"].get<int>());
  EXPECT_EQ(c.n_ctx_train, g["context_length"].get<int>());
  EXPECT_EQ(c.n_head, g["n_head"].get<int>());
  EXPECT_EQ(c.head_dim_swa, g["head_dim_swa"].get<int>());
  EXPECT_EQ(c.head_dim_full, g["head_dim_full"].get<int>());
  EXPECT_EQ(c.sliding_window, g["sliding_window"].get<int>());
  EXPECT_EQ(c.n_kv_shared, g["shared_kv_layers"].get<int>());
  EXPECT_EQ(c.n_embd_per_layer, g["n_embd_per_layer"].get<int>());
  EXPECT_EQ(c.n_expert, g["n_expert"].get<int>());
  EXPECT_EQ(c.n_expert_used, g["n_expert_used"].get<int>());
  EXPECT_EQ(c.n_ff_exp, c.n_expert ? g["n_ff_exp"].get<int>() : 0);
  EXPECT_FLOAT_EQ(c.final_logit_softcap, g["final_logit_softcapping"].get<float>());
  EXPECT_FLOAT_EQ(c.rope_base_full, g["rope_theta"].get<float>());
  EXPECT_FLOAT_EQ(c.rope_base_swa, g["rope_theta_swa"].get<float>());
  EXPECT_FLOAT_EQ(c.rms_eps, g["rms_eps"].get<float>());
  EXPECT_EQ(c.rope_dim_swa, c.head_dim_swa);
  EXPECT_EQ(c.rope_dim_full, c.head_dim_full);
  for (int l = 0; l < c.n_layer; ++l) {
    SCOPED_TRACE("layer " + std::to_string(l));
    const LayerConfig& lc = c.layers[l];
    EXPECT_EQ(lc.sliding, g["swa_pattern"][l].get<bool>());
    EXPECT_EQ(lc.n_head_kv, PerLayer(g["n_head_kv"], l));
    EXPECT_EQ(lc.n_ff, PerLayer(g["n_ff"], l));
    EXPECT_EQ(lc.head_dim, lc.sliding ? c.head_dim_swa : c.head_dim_full);
    EXPECT_EQ(lc.owns_kv, l < c.n_layer - c.n_kv_shared);
  }
  // k=v full layers have no attn_v; every layer has its output scale (README §1).
  const Weights& w = model->weights();
  for (int l = 0; l < c.n_layer; ++l) {
    if (!c.layers[l].sliding && c.layers[l].owns_kv) {
      EXPECT_EQ(w.layers[l].attn_v.present(), !g["k_eq_v_full"].get<bool>()) << "layer " << l;
    }
    EXPECT_NE(w.layers[l].output_scale, 1.0f) << "layer " << l;
    if (c.is_moe()) {
      EXPECT_TRUE(w.layers[l].gate_up_exps.present());
      EXPECT_NE(w.layers[l].down_exps.scale, nullptr);
    }
  }
  EXPECT_EQ(w.output.data, w.token_embd.data) << "tied LM head";
}

INSTANTIATE_TEST_SUITE_P(Models, ConfigTest, ::testing::Values("tiny-e", "tiny-moe", "tiny-dense"),
                         [](const auto& param_info) {
                           std::string s = param_info.param;
                           for (char& ch : s) ch = ch == '-' ? '_' : ch;
                           return s;
                         });

TEST(Config, KvSharingSources) {
  // README §1: "sliding ones read layer 2, global ones layer 3".
  auto model = Model::Load(ModelPath("tiny-e.Q8_0"));
  const ModelConfig& c = model->config();
  EXPECT_EQ(c.LayerPattern(), "SSSGsssg");
  const int expected[] = {0, 1, 2, 3, 2, 2, 2, 3};
  for (int l = 0; l < 8; ++l) EXPECT_EQ(c.layers[l].kv_source, expected[l]) << "layer " << l;
}

TEST(Config, VariantNames) {
  EXPECT_EQ(Model::Load(ModelPath("tiny-e.Q4_0"))->config().VariantName(),
            "PLE + KV sharing (E2B/E4B-like)");
  EXPECT_EQ(Model::Load(ModelPath("tiny-moe.Q4_0"))->config().VariantName(), "MoE (26B-A4B-like)");
  EXPECT_EQ(Model::Load(ModelPath("tiny-dense.Q4_0"))->config().VariantName(), "dense (31B-like)");
}

// ---------------------------------------------------------------------------------------------
// Broken files: a copy of a fixture with one edit.

struct Edit {
  std::set<std::string> drop_keys;
  std::set<std::string> drop_tensors;
  std::function<void(gguf::Writer&)> add;
  std::string reshape_tensor;  // replace this tensor's shape with `new_shape`
  std::vector<int64_t> new_shape;
};

std::string WriteEdited(const std::string& stem, const Edit& e, const std::string& out_name) {
  const gguf::File src = gguf::File::Open(ModelPath(stem));
  gguf::Writer w;
  for (const auto& [key, value] : src.metadata()) {
    if (!e.drop_keys.count(key)) w.CopyValue(src, key);
  }
  if (e.add) e.add(w);
  for (const auto& t : src.tensors()) {
    if (e.drop_tensors.count(t.name)) continue;
    w.AddTensor(t.name, t.name == e.reshape_tensor ? e.new_shape : t.shape, t.type_id,
                std::span<const uint8_t>(t.data, t.n_bytes));
  }
  // ctest runs tests in parallel processes: one file per test and process.
  const std::string path =
      ::testing::TempDir() + "hearth-model-" + std::to_string(::getpid()) + "-" + out_name;
  w.WriteFile(path);
  return path;
}

// Loads `path`, deletes it, and returns the error message (empty when loading succeeded).
std::string LoadError(const std::string& path, ErrorClass* cls = nullptr) {
  std::string msg;
  try {
    Model::Load(path);
  } catch (const Error& e) {
    if (cls) *cls = e.error_class();
    msg = e.what();
  }
  std::remove(path.c_str());
  return msg;
}

TEST(Malformed, UnchangedCopyLoads) {
  EXPECT_EQ(LoadError(WriteEdited("tiny-dense.Q4_0", {}, "copy.gguf")), "");
}

class MissingKeyTest : public ::testing::TestWithParam<std::string> {};

TEST_P(MissingKeyTest, NamesFileAndKey) {
  const std::string key = "gemma4." + GetParam();
  Edit e;
  e.drop_keys = {key};
  const std::string path = WriteEdited("tiny-e.Q4_0", e, "missing-" + GetParam() + ".gguf");
  ErrorClass cls{};
  const std::string msg = LoadError(path, &cls);
  EXPECT_NE(msg.find("'" + key + "'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("missing"), std::string::npos) << msg;
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  EXPECT_EQ(cls, ErrorClass::kInvalidInput);
}

INSTANTIATE_TEST_SUITE_P(
    Keys, MissingKeyTest,
    ::testing::Values("block_count", "embedding_length", "context_length", "feed_forward_length",
                      "attention.head_count", "attention.key_length", "attention.key_length_swa",
                      "attention.value_length", "attention.value_length_swa",
                      "attention.layer_norm_rms_epsilon", "attention.sliding_window",
                      "attention.sliding_window_pattern", "embedding_length_per_layer_input"),
    [](const auto& param_info) {
      std::string s = param_info.param;
      for (char& ch : s) ch = ch == '.' ? '_' : ch;
      return s;
    });

TEST(Malformed, MissingExpertKeysInMoe) {
  Edit e;
  e.drop_keys = {"gemma4.expert_used_count"};
  const std::string msg = LoadError(WriteEdited("tiny-moe.Q4_0", e, "moe-missing.gguf"));
  EXPECT_NE(msg.find("'gemma4.expert_used_count'"), std::string::npos) << msg;
}

TEST(Malformed, OtherArchitecture) {
  Edit e;
  e.drop_keys = {"general.architecture"};
  e.add = [](gguf::Writer& w) { w.SetString("general.architecture", "llama"); };
  ErrorClass cls{};
  const std::string msg = LoadError(WriteEdited("tiny-dense.Q4_0", e, "llama.gguf"), &cls);
  EXPECT_NE(msg.find("unsupported architecture llama"), std::string::npos) << msg;
  EXPECT_EQ(cls, ErrorClass::kInvalidInput);
}

TEST(Malformed, WrongTensorShape) {
  Edit e;  // same byte count, transposed: [128, 256] instead of [256, 128]
  e.reshape_tensor = "blk.0.attn_q.weight";
  e.new_shape = {128, 256};
  const std::string msg = LoadError(WriteEdited("tiny-dense.F32", e, "shape.gguf"));
  EXPECT_NE(msg.find("'blk.0.attn_q.weight'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[128, 256]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("expected [256, 128]"), std::string::npos) << msg;
}

TEST(Malformed, MissingTensor) {
  Edit e;
  e.drop_tensors = {"blk.1.ffn_down.weight"};
  const std::string msg = LoadError(WriteEdited("tiny-dense.Q4_0", e, "no-tensor.gguf"));
  EXPECT_NE(msg.find("'blk.1.ffn_down.weight'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("missing"), std::string::npos) << msg;
}

TEST(Malformed, MissingExpertTensor) {
  Edit e;
  e.drop_tensors = {"blk.2.ffn_gate_up_exps.weight"};
  const std::string msg = LoadError(WriteEdited("tiny-moe.Q4_0", e, "no-experts.gguf"));
  EXPECT_NE(msg.find("blk.2.ffn_gate_up_exps.weight"), std::string::npos) << msg;
}

TEST(Malformed, PatternOfWrongLength) {
  Edit e;
  e.drop_keys = {"gemma4.attention.sliding_window_pattern"};
  e.add = [](gguf::Writer& w) {
    const bool pattern[] = {true, true, false};
    w.SetBoolArray("gemma4.attention.sliding_window_pattern", pattern);
  };
  const std::string msg = LoadError(WriteEdited("tiny-dense.Q4_0", e, "pattern.gguf"));
  EXPECT_NE(msg.find("sliding_window_pattern' has 3 entries, expected 6"), std::string::npos)
      << msg;
}

TEST(Malformed, HeadCountNotMultipleOfKvHeads) {
  Edit e;
  e.drop_keys = {"gemma4.attention.head_count_kv"};
  e.add = [](gguf::Writer& w) { w.SetUint32("gemma4.attention.head_count_kv", 3); };
  const std::string msg = LoadError(WriteEdited("tiny-dense.Q4_0", e, "kvheads.gguf"));
  EXPECT_NE(msg.find("not a multiple of head_count_kv 3"), std::string::npos) << msg;
}

TEST(Malformed, AbsurdValue) {
  Edit e;
  e.drop_keys = {"gemma4.block_count"};
  e.add = [](gguf::Writer& w) { w.SetUint32("gemma4.block_count", 0); };
  const std::string msg = LoadError(WriteEdited("tiny-dense.Q4_0", e, "zero-layers.gguf"));
  EXPECT_NE(msg.find("'gemma4.block_count' = 0 is out of range"), std::string::npos) << msg;
}

// ---------------------------------------------------------------------------------------------
// Context limits and consistency.

TEST(Context, RejectsContextBeyondModelMaximum) {
  auto model = Model::Load(ModelPath("tiny-dense.Q4_0"));
  for (int n_ctx : {0, model->config().n_ctx_train + 1}) {
    ContextOptions opt;
    opt.n_ctx = n_ctx;
    try {
      Context ctx(*model, opt);
      ADD_FAILURE() << "n_ctx " << n_ctx << " accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.error_class(), ErrorClass::kUsage) << e.what();
    }
  }
  ContextOptions opt;
  opt.n_ctx = model->config().n_ctx_train;  // the maximum itself is fine
  Context ctx(*model, opt);
  EXPECT_GT(ctx.kv_bytes(), 0u);
}

TEST(Context, OverflowIsRefusedBeforeAnyWork) {
  auto model = Model::Load(ModelPath("tiny-dense.Q4_0"));
  ContextOptions opt;
  opt.n_ctx = 8;
  Context ctx(*model, opt);
  const std::vector<int32_t> five = {2, 10, 11, 12, 13};
  ctx.Decode(five, nullptr, false);
  EXPECT_EQ(ctx.n_past(), 5);
  try {
    ctx.Decode(five, nullptr, false);
    ADD_FAILURE() << "overflow accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.error_class(), ErrorClass::kResource);
    EXPECT_NE(std::string(e.what()).find("do not fit"), std::string::npos) << e.what();
  }
  EXPECT_EQ(ctx.n_past(), 5) << "state changed by a refused request";
  const std::vector<int32_t> bad = {5, 4096};
  EXPECT_THROW(ctx.Decode(bad, nullptr, false), Error);
  EXPECT_EQ(ctx.n_past(), 5);
}

// Q4_0 layer matrices are repacked at load where the active SIMD level has a faster kernel for
// the interleaved layout (the reference tests then run through it); matrices read row by row and
// the KV-shared layers' unused projections stay in the file's layout.
TEST(Weights, Q4_0LayerMatricesAreRepackedWhereFaster) {
  auto model = Model::Load(ModelPath("tiny-e.Q4_0"));
  const Weights& w = model->weights();
  const ModelConfig& c = model->config();
  const tensor::Layout expected = tensor::PreferredLayout(
      tensor::Matrix{tensor::kQ4_0, 16, 32, w.token_embd.data});  // any fitting Q4_0 matrix
  int shared = 0;
  for (int l = 0; l < c.n_layer; ++l) {
    const LayerWeights& lw = w.layers[l];
    ASSERT_EQ(lw.ffn_up.w.type, tensor::kQ4_0);
    EXPECT_EQ(lw.ffn_up.w.layout, expected) << "layer " << l;
    EXPECT_EQ(lw.ffn_down.w.layout, expected) << "layer " << l;
    EXPECT_EQ(lw.attn_q.w.layout, expected) << "layer " << l;
    if (!c.layers[l].owns_kv && lw.attn_k.present()) {
      ++shared;
      EXPECT_EQ(lw.attn_k.w.layout, tensor::Layout::kRows) << "layer " << l;
    }
  }
  EXPECT_GT(shared, 0) << "the fixture was expected to keep K weights on KV-shared layers";
  EXPECT_EQ(w.token_embd.layout, tensor::Layout::kRows);
  EXPECT_EQ(w.per_layer_token_embd.layout, tensor::Layout::kRows);
}

TEST(Context, BatchSplitsAndResetAgree) {
  // Same logits whether a long sequence (past the sliding window) goes in one step, in small
  // steps (ring buffer wrapping mid-batch), or again after Reset().
  auto model = Model::Load(ModelPath("tiny-e.Q4_K_M"));
  const int V = model->config().n_vocab;
  std::vector<int32_t> tokens(100);
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<int32_t>(5 + (i * 37) % 4000);
  auto run = [&](int n_ubatch, bool twice) {
    ContextOptions opt;
    opt.n_ctx = 128;
    opt.n_ubatch = n_ubatch;
    opt.precise = true;
    Context ctx(*model, opt);
    std::vector<float> logits(tokens.size() * V);
    ctx.Decode(tokens, logits.data(), true);
    if (twice) {
      ctx.Reset();
      ctx.Decode(tokens, logits.data(), true);
    }
    std::vector<float> last(V);
    ctx.Reset();
    ctx.Decode(tokens, last.data(), false);
    // Last-row-only decoding skips the KV-shared layers for the other rows; same values.
    for (int i = 0; i < V; ++i) EXPECT_NEAR(last[i], logits[(tokens.size() - 1) * V + i], 1e-4);
    return logits;
  };
  const std::vector<float> a = run(128, false);
  const std::vector<float> b = run(7, true);
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, double(std::abs(a[i] - b[i])));
  EXPECT_LT(worst, 1e-4);
}

TEST(Context, SlicedDecodeAttentionMatchesBatch) {
  // Decode at depth splits a full layer's positions into slices on different threads and merges
  // their softmax partials (flash-decoding); a batch step scores every position in one piece.
  // Both must give the last token the same logits, in precise and fast mode, with 1 and 2
  // threads (1200 positions: 4 slices of 300).
  auto model = Model::Load(ModelPath("tiny-dense.Q8_0"));
  const int V = model->config().n_vocab;
  std::vector<int32_t> tokens(1200);
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<int32_t>(5 + (i * 53) % 4000);
  for (bool precise : {true, false}) {
    for (int threads : {1, 2}) {
      ContextOptions opt;
      opt.n_ctx = 1280;
      opt.n_ubatch = 1200;
      opt.n_threads = threads;
      opt.precise = precise;
      Context ctx(*model, opt);
      std::vector<float> batch(V), step(V);
      ctx.Decode(tokens, batch.data(), false);
      ctx.Reset();
      ctx.Decode(std::span<const int32_t>(tokens).first(tokens.size() - 1), nullptr, false);
      ctx.Decode(std::span<const int32_t>(tokens).last(1), step.data(), false);
      double worst = 0, scale = 0;
      for (int i = 0; i < V; ++i) {
        worst = std::max(worst, double(std::abs(batch[i] - step[i])));
        scale = std::max(scale, double(std::abs(batch[i])));
      }
      EXPECT_GT(scale, 0.1) << "degenerate logits";
      EXPECT_LT(worst, precise ? 1e-4 : 2e-2) << "precise " << precise << " threads " << threads;
    }
  }
}

TEST(Context, TruncateKeepsThePrefix) {
  auto model = Model::Load(ModelPath("tiny-e.Q6_K"));
  const int V = model->config().n_vocab;  // sliding window 32
  std::vector<int32_t> tokens(100);
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<int32_t>(7 + (i * 41) % 4000);
  ContextOptions opt;
  opt.n_ctx = 128;
  opt.n_ubatch = 1;  // the tightest ring: W cells
  opt.precise = true;
  Context ctx(*model, opt);
  std::vector<float> all(tokens.size() * V);
  ctx.Decode(tokens, all.data(), true);
  // Position 90 sees 59..90; position 59's cell (ring of 32) was overwritten by 91.
  EXPECT_FALSE(ctx.Truncate(90));
  EXPECT_EQ(ctx.n_past(), 100);
  // Position 99 sees 68..99, all still there.
  ASSERT_TRUE(ctx.Truncate(99));
  std::vector<float> again(V);
  ctx.Decode(std::span<const int32_t>(&tokens[99], 1), again.data(), true);
  for (int i = 0; i < V; ++i) ASSERT_NEAR(again[i], all[99 * static_cast<size_t>(V) + i], 1e-4);
  // Full rewind is always possible.
  ASSERT_TRUE(ctx.Truncate(0));
  ctx.Decode(std::span<const int32_t>(tokens.data(), 1), again.data(), true);
  for (int i = 0; i < V; ++i) ASSERT_NEAR(again[i], all[i], 1e-4);
}

// ---------------------------------------------------------------------------------------------
// The `hearth logits` command, as other tools call it.

int RunHearth(const std::string& args) {
  const std::string cmd = std::string(HEARTH_BINARY) + " " + args + " > /dev/null 2>&1";
  const int status = std::system(cmd.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::vector<float> ReadFloats(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<float> out(bytes.size() / sizeof(float));
  std::memcpy(out.data(), bytes.data(), out.size() * sizeof(float));
  EXPECT_EQ(bytes.size() % sizeof(float), 0u);
  return out;
}

TEST(LogitsCommand, MatchesReferences) {
  const testing::RefFile ref(FixturesDir() + "/refs/tiny-dense.F32.ref.gguf");
  const std::vector<int32_t> tokens = ref.Ints("short.tokens");
  std::string list;
  for (int32_t t : tokens) {
    if (!list.empty()) list += ',';
    list += std::to_string(t);
  }
  const int V = ref.n_vocab();
  const std::string out = ::testing::TempDir() + "hearth-logits-" + std::to_string(::getpid());
  const std::string model = ModelPath("tiny-dense.F32");

  // Fast batch path vs llama.cpp's full logits (Level 2 tolerance).
  ASSERT_EQ(RunHearth("logits -m " + model + " --tokens " + list + " --out " + out + " -t 2"), 0);
  const std::vector<float> fast = ReadFloats(out);
  ASSERT_EQ(fast.size(), tokens.size() * V) << "file must hold exactly [n_tokens][n_vocab]";
  const std::vector<float> full = ref.Floats("short.full_logits");
  const std::vector<int32_t> full_pos = ref.Ints("short.full_pos");
  for (size_t p = 0; p < full_pos.size(); ++p) {
    for (int i = 0; i < V; ++i) {
      ASSERT_NEAR(fast[full_pos[p] * V + i], full[p * V + i], 0.35) << "pos " << full_pos[p];
    }
  }

  // Precise incremental path vs the exact-math reference (Level 1 tolerance).
  ASSERT_EQ(RunHearth("logits -m " + model + " --tokens " + list + " --out " + out +
                      " --incremental --precise"),
            0);
  const std::vector<float> precise = ReadFloats(out);
  ASSERT_EQ(precise.size(), tokens.size() * V);
  const std::vector<testing::RefRow> exact = ref.Rows("short.exact");
  for (size_t r = 0; r < tokens.size(); ++r) {
    EXPECT_LE(testing::CompareRow(exact[r], &precise[r * V], V).max_abs, 2e-3) << "pos " << r;
  }
  std::remove(out.c_str());
}

TEST(LogitsCommand, ErrorsAndExitCodes) {
  const std::string model = ModelPath("tiny-dense.Q4_0");
  const std::string out = ::testing::TempDir() + "hearth-logits-err-" + std::to_string(::getpid());
  EXPECT_EQ(RunHearth("logits -m " + model + " --tokens 2,x --out " + out), 2);
  EXPECT_EQ(RunHearth("logits -m " + model + " --tokens 2,,3 --out " + out), 2);
  EXPECT_EQ(RunHearth("logits -m " + model + " --tokens 2,4096 --out " + out), 3);
  EXPECT_EQ(RunHearth("logits -m /nonexistent/model.gguf --tokens 2 --out " + out), 4);
  EXPECT_EQ(RunHearth("logits -m " + model + " --tokens 2 --out /nonexistent/dir/x.bin"), 4);
  EXPECT_EQ(RunHearth("logits -m " + FixturesDir() +
                      "/refs/tiny-dense.F32.ref.gguf --tokens 2 --out " + out),
            3);
}

}  // namespace
}  // namespace hearth::model
