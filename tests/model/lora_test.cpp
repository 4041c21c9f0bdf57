// LoRA adapter and control-vector files that must be refused (README §2a of
// ../shared/fixtures/lora: what llama.cpp refuses, plus what makes it crash), the FILE[:SCALE]
// syntax, and the adapter set's keying of the KV cache.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/mapped_file.h"
#include "gguf/gguf.h"
#include "model/adapters.h"
#include "model/adapters_internal.h"
#include "model/model.h"
#include "ref_check.h"

namespace hearth::model {
namespace {

using testing::FixturesDir;

std::string Adapter(const std::string& name) { return FixturesDir() + "/lora/adapters/" + name; }
std::string ModelFile(const std::string& stem) {
  return FixturesDir() + "/models/" + stem + ".gguf";
}

// One tensor of a file being rewritten.
struct T {
  std::string name;
  std::vector<int64_t> shape;
  uint32_t type;
  std::vector<uint8_t> data;
};

// Rewrites the fixture adapter `src`: `meta` may change the metadata (it gets the Writer after
// general.architecture / general.type / adapter.type / adapter.lora.alpha were copied unless
// `copy_meta` is false), `edit` the tensor list. Returns the parsed result.
gguf::File Rewrite(const std::string& src, const std::function<void(std::vector<T>&)>& edit,
                   const std::function<void(gguf::Writer&)>& meta = {}, bool copy_meta = true) {
  const gguf::File in = gguf::File::Open(Adapter(src));
  gguf::Writer w;
  if (copy_meta) {
    for (const auto& [key, value] : in.metadata()) w.CopyValue(in, key);
  }
  if (meta) meta(w);
  std::vector<T> tensors;
  for (const auto& t : in.tensors()) {
    tensors.push_back(
        {t.name, t.shape, t.type_id, std::vector<uint8_t>(t.data, t.data + t.n_bytes)});
  }
  if (edit) edit(tensors);
  for (const auto& t : tensors) w.AddTensor(t.name, t.shape, t.type, t.data);
  return gguf::File::Parse(MappedFile::FromBytes(w.Serialize(), "broken.gguf"));
}

// The error LoraAdapter::FromFile throws, or "" when it loads.
std::string LoraError(gguf::File file, const Model& model) {
  try {
    LoraAdapter::FromFile(std::move(file), model);
  } catch (const Error& e) {
    EXPECT_EQ(e.error_class(), ErrorClass::kInvalidInput) << e.what();
    return e.what();
  }
  return "";
}

class LoraFileTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dense_ = Model::Load(ModelFile("tiny-dense.F32")).release();
    e_ = Model::Load(ModelFile("tiny-e.F32")).release();
    moe_ = Model::Load(ModelFile("tiny-moe.F32")).release();
  }
  static void TearDownTestSuite() {
    delete dense_;
    delete e_;
    delete moe_;
  }
  static Model* dense_;
  static Model* e_;
  static Model* moe_;
};
Model* LoraFileTest::dense_ = nullptr;
Model* LoraFileTest::e_ = nullptr;
Model* LoraFileTest::moe_ = nullptr;

TEST_F(LoraFileTest, FixtureAdaptersLoadWithTheirRanksAndAlpha) {
  auto a = LoraAdapter::Load(Adapter("tiny-dense.lora-attn.F32.gguf"), *dense_);
  EXPECT_EQ(a->alpha(), 16.0f);
  ASSERT_FALSE(a->pairs().empty());
  for (const auto& p : a->pairs()) {
    EXPECT_EQ(p.rank, 8) << p.base;
    EXPECT_TRUE(p.applied) << p.base;
  }
  EXPECT_FLOAT_EQ(a->AlphaOverRank(8), 2.0f);
  // per_layer_model_proj is loaded and not applied (llama.cpp ignores it); inp_gate/proj are.
  auto ple = LoraAdapter::Load(Adapter("tiny-e.lora-ple.F32.gguf"), *e_);
  int ignored = 0, applied = 0;
  for (const auto& p : ple->pairs()) (p.applied ? applied : ignored)++;
  EXPECT_EQ(ignored, 1);
  EXPECT_EQ(applied, 2 * e_->config().n_layer);  // inp_gate + proj of every layer
  // The KV-shared layers' K/V pairs (layers 4..7 of tiny-e) are loaded, never applied.
  auto attn = LoraAdapter::Load(Adapter("tiny-e.lora-attn-ffn.F32.gguf"), *e_);
  int dead = 0;
  for (const auto& p : attn->pairs()) dead += p.applied ? 0 : 1;
  EXPECT_EQ(dead, 8);
}

TEST_F(LoraFileTest, AdapterForAnotherModelNamesTheFirstMismatch) {
  try {
    LoraAdapter::Load(Adapter("tiny-dense.lora-attn.F32.gguf"), *e_);
    FAIL() << "loaded";
  } catch (const Error& e) {
    EXPECT_EQ(e.exit_code(), 3);
    EXPECT_NE(std::string(e.what()).find("blk.0.attn_k.weight"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("incorrect shape"), std::string::npos) << e.what();
  }
  // A control vector as an adapter and the other way round.
  EXPECT_NE(LoraError(gguf::File::Open(Adapter("tiny-e.cvec.gguf")), *e_).find("not an adapter"),
            std::string::npos);
  EXPECT_THROW(ControlVector::Load(Adapter("tiny-e.lora-ple.F32.gguf"), *e_), Error);
}

TEST_F(LoraFileTest, BrokenMetadataIsRefused) {
  const std::string src = "tiny-dense.lora-mlp.F32.gguf";
  EXPECT_NE(LoraError(Rewrite(
                          src, {},
                          [](gguf::Writer& w) {
                            w.SetString("general.architecture", "llama");
                            w.SetString("general.type", "adapter");
                            w.SetString("adapter.type", "lora");
                          },
                          false),
                      *dense_)
                .find("architecture 'llama'"),
            std::string::npos);
  EXPECT_NE(LoraError(Rewrite(
                          src, {},
                          [](gguf::Writer& w) {
                            w.SetString("general.architecture", "gemma4");
                            w.SetString("general.type", "model");
                          },
                          false),
                      *dense_)
                .find("not an adapter file"),
            std::string::npos);
  EXPECT_NE(LoraError(Rewrite(
                          src, {},
                          [](gguf::Writer& w) {
                            w.SetString("general.architecture", "gemma4");
                            w.SetString("general.type", "adapter");
                            w.SetString("adapter.type", "ia3");
                          },
                          false),
                      *dense_)
                .find("adapter.type is 'ia3'"),
            std::string::npos);
  EXPECT_NE(LoraError(Rewrite(
                          src, {},
                          [](gguf::Writer& w) {
                            w.SetString("general.architecture", "gemma4");
                            w.SetString("general.type", "adapter");
                            w.SetString("adapter.type", "lora");
                            w.SetUint32("adapter.lora.alpha", 2);
                          },
                          false),
                      *dense_)
                .find("adapter.lora.alpha"),
            std::string::npos);
  // Alpha absent: loads, and the effective scale is the user's (alpha / rank not applied).
  auto no_alpha = LoraAdapter::FromFile(Rewrite(
                                            src, {},
                                            [](gguf::Writer& w) {
                                              w.SetString("general.architecture", "gemma4");
                                              w.SetString("general.type", "adapter");
                                              w.SetString("adapter.type", "lora");
                                            },
                                            false),
                                        *dense_);
  EXPECT_EQ(no_alpha->alpha(), 0.0f);
  EXPECT_EQ(no_alpha->AlphaOverRank(4), 1.0f);
}

TEST_F(LoraFileTest, BrokenTensorsAreRefused) {
  const std::string src = "tiny-dense.lora-mlp.F32.gguf";
  auto drop = [](const std::string& name) {
    return [name](std::vector<T>& ts) {
      std::erase_if(ts, [&](const T& t) { return t.name == name; });
    };
  };
  EXPECT_NE(LoraError(Rewrite(src, drop("blk.1.ffn_up.weight.lora_b")), *dense_)
                .find("'blk.1.ffn_up.weight' is missing one component"),
            std::string::npos);
  auto rename = [](const std::string& from, const std::string& to) {
    return [from, to](std::vector<T>& ts) {
      for (auto& t : ts) {
        if (t.name == from) t.name = to;
      }
    };
  };
  EXPECT_NE(LoraError(Rewrite(src, rename("blk.0.ffn_up.weight.lora_a", "blk.0.ffn_up.weight.x")),
                      *dense_)
                .find("unexpected suffix"),
            std::string::npos);
  {
    std::function<void(std::vector<T>&)> both = [&](std::vector<T>& ts) {
      rename("blk.0.ffn_up.weight.lora_a", "blk.99.ffn_up.weight.lora_a")(ts);
      rename("blk.0.ffn_up.weight.lora_b", "blk.99.ffn_up.weight.lora_b")(ts);
    };
    EXPECT_NE(LoraError(Rewrite(src, both), *dense_).find("does not exist in the base model"),
              std::string::npos);
  }
  // lora_a with a rank that lora_b does not have ("not transposed"): A of rank 2.
  EXPECT_NE(LoraError(Rewrite(src,
                              [](std::vector<T>& ts) {
                                for (auto& t : ts) {
                                  if (t.name == "blk.0.ffn_gate.weight.lora_a") {
                                    t.shape[1] = 2;
                                    t.data.resize(t.data.size() / 2);
                                  }
                                }
                              }),
                      *dense_)
                .find("not transposed"),
            std::string::npos);
  // A mergekit-style norm tensor is skipped silently.
  auto with_norm = LoraAdapter::FromFile(
      Rewrite(src,
              [](std::vector<T>& ts) {
                ts.push_back({"blk.0.attn_norm.weight", {4}, 0, std::vector<uint8_t>(16, 0)});
              }),
      *dense_);
  EXPECT_EQ(with_norm->pairs().size(), LoraAdapter::Load(Adapter(src), *dense_)->pairs().size());
}

TEST_F(LoraFileTest, ExpertPairsNeedOnePerExpert) {
  // One A shared by every expert: llama.cpp loads it and crashes in the first decode.
  const std::string err = LoraError(Rewrite("tiny-moe.lora-all.F32.gguf",
                                            [](std::vector<T>& ts) {
                                              for (auto& t : ts) {
                                                if (t.name == "blk.0.ffn_down_exps.weight.lora_a") {
                                                  t.data.resize(t.data.size() / t.shape[2]);
                                                  t.shape[2] = 1;
                                                }
                                              }
                                            }),
                                    *moe_);
  EXPECT_NE(err.find("one A/B pair per expert"), std::string::npos) << err;
}

TEST_F(LoraFileTest, ControlVectorsAreValidated) {
  auto cv = ControlVector::Load(Adapter("tiny-e.cvec.gguf"), *e_);
  EXPECT_EQ(cv->n_directions(), 7);
  // Layer 0 takes none, so its row is zero; layer 1's is not.
  const int H = e_->config().n_embd;
  double l0 = 0, l1 = 0;
  for (int i = 0; i < H; ++i) {
    l0 += std::abs(cv->directions()[i]);
    l1 += std::abs(cv->directions()[H + i]);
  }
  EXPECT_EQ(l0, 0.0);
  EXPECT_GT(l1, 0.0);
  // Built for tiny-e (n_embd differs from tiny-dense's).
  EXPECT_THROW(ControlVector::Load(Adapter("tiny-e.cvec.gguf"), *dense_), Error);
  auto cvec_error = [&](const std::function<void(std::vector<T>&)>& edit) {
    try {
      ControlVector::FromFile(Rewrite("tiny-e.cvec.gguf", edit), *e_);
    } catch (const Error& e) {
      EXPECT_EQ(e.exit_code(), 3);
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(cvec_error([](std::vector<T>& ts) { ts[0].name = "direction.0"; }).find("layer 0"),
            std::string::npos);
  EXPECT_NE(
      cvec_error([](std::vector<T>& ts) { ts[0].name = "direction.x"; }).find("not a direction"),
      std::string::npos);
  EXPECT_NE(cvec_error([](std::vector<T>& ts) { ts[0].name = "direction.99"; }).find("layer 99"),
            std::string::npos);
}

// ApplyLora's update y += s * B (A x) against a float64 product of the dequantized halves, for
// one to five tokens (up to four take the decode path with B transposed, five the batched
// MatMul path), with B stored as F32, F16 and Q8_0 (the fixture adapters hold the same values
// in each type; Q8_0 files keep rank-4 lora_b in F16, so lora_a is the quantized half there).
TEST_F(LoraFileTest, UpdateMatchesADoubleProductForAFewAndManyTokens) {
  tensor::ThreadPool pool(2);
  for (const char* file : {"tiny-e.lora-attn-ffn.F32.gguf", "tiny-e.lora-attn-ffn.F16.gguf",
                           "tiny-e.lora-attn-ffn.Q8_0.gguf"}) {
    const auto lora = LoraAdapter::Load(Adapter(file), *e_);
    int checked = 0;
    for (const LoraPair& pair : lora->pairs()) {
      if (!pair.applied) continue;
      ++checked;
      const int64_t n_in = pair.a.cols, n_out = pair.b.rows, rank = pair.rank;
      std::vector<float> a(static_cast<size_t>(rank * n_in)), b(static_cast<size_t>(n_out * rank));
      for (int64_t k = 0; k < rank; ++k) tensor::DequantizeMatrixRow(pair.a, k, &a[k * n_in]);
      for (int64_t i = 0; i < n_out; ++i) tensor::DequantizeMatrixRow(pair.b, i, &b[i * rank]);
      for (int rows = 1; rows <= 5; ++rows) {
        SCOPED_TRACE(std::string(file) + " " + pair.base + " rows " + std::to_string(rows));
        std::mt19937 rng(static_cast<unsigned>(rows * 7919 + checked));
        std::uniform_real_distribution<float> u(-1.0f, 1.0f);
        std::vector<float> x(static_cast<size_t>(rows * n_in)),
            y(static_cast<size_t>(rows * n_out));
        for (float& v : x) v = u(rng);
        for (float& v : y) v = u(rng);
        const std::vector<float> y0 = y;
        // Fast mode quantizes x for a Q8_0 lora_a as llama.cpp does (Q8_0 blocks): the reference
        // takes the same rounded x, so that what remains is float32 arithmetic.
        std::vector<float> xr = x;
        if (pair.a.type == tensor::kQ8_0) {
          std::vector<uint8_t> q(tensor::RowBytes(tensor::kQ8_0, n_in));
          for (int t = 0; t < rows; ++t) {
            tensor::QuantizeRow(tensor::kQ8_0, &x[t * n_in], q.data(), n_in);
            tensor::DequantizeMatrixRow({tensor::kQ8_0, 1, n_in, q.data()}, 0, &xr[t * n_in]);
          }
        }
        const float scale = 0.75f;
        LoraScratch scratch;
        ApplyLora({{&pair, scale}}, -1, x.data(), rows, y.data(), tensor::Precision::kFast, &pool,
                  scratch);
        double worst = 0, largest = 0;
        for (int t = 0; t < rows; ++t) {
          std::vector<double> ax(static_cast<size_t>(rank), 0.0);
          for (int64_t k = 0; k < rank; ++k) {
            for (int64_t c = 0; c < n_in; ++c) ax[k] += double(a[k * n_in + c]) * xr[t * n_in + c];
          }
          for (int64_t i = 0; i < n_out; ++i) {
            double bax = 0;
            for (int64_t k = 0; k < rank; ++k) bax += double(b[i * rank + k]) * ax[k];
            const double want = y0[t * n_out + i] + scale * bax;
            worst = std::max(worst, std::abs(want - y[t * n_out + i]));
            largest = std::max(largest, std::abs(scale * bax));
          }
        }
        ASSERT_GT(largest, 1e-3);  // the update is not empty
        // F16 halves round x (and, on the batched path, A x) to F16 as llama.cpp does.
        EXPECT_LE(worst, 1e-2 * largest);
      }
    }
    EXPECT_GT(checked, 0) << file;
  }
}

TEST(AdapterSpec, FileColonScale) {
  EXPECT_EQ(ParseAdapterSpec("a.gguf", "--lora").path, "a.gguf");
  EXPECT_EQ(ParseAdapterSpec("a.gguf", "--lora").scale, 1.0f);
  EXPECT_EQ(ParseAdapterSpec("dir/a.gguf:0.5", "--lora").path, "dir/a.gguf");
  EXPECT_EQ(ParseAdapterSpec("dir/a.gguf:0.5", "--lora").scale, 0.5f);
  EXPECT_EQ(ParseAdapterSpec("a.gguf:-2", "--lora").scale, -2.0f);
  // A colon without a number after it belongs to the path.
  EXPECT_EQ(ParseAdapterSpec("odd:name.gguf", "--lora").path, "odd:name.gguf");
  EXPECT_THROW(ParseAdapterSpec(":0.5", "--lora"), Error);
  EXPECT_THROW(ParseAdapterSpec("a.gguf:inf", "--lora"), Error);
  EXPECT_THROW(ParseAdapterSpec("a.gguf:nan", "--lora"), Error);
}

TEST_F(LoraFileTest, SetKeyFollowsScalesAndContextForgetsStaleCache) {
  auto a = LoraAdapter::Load(Adapter("tiny-dense.lora-attn.F32.gguf"), *dense_);
  auto s1 = AdapterSet::Make(*dense_, {{a, 1.0f}}, {});
  auto s05 = AdapterSet::Make(*dense_, {{a, 0.5f}}, {});
  auto s1b = AdapterSet::Make(*dense_, {{a, 1.0f}}, {});
  ASSERT_TRUE(s1 && s05 && s1b);
  EXPECT_NE(s1->key(), s05->key());
  EXPECT_EQ(s1->key(), s1b->key());
  EXPECT_EQ(AdapterSet::Make(*dense_, {{a, 0.0f}}, {}), nullptr);

  ContextOptions opt;
  opt.n_ctx = 64;
  opt.adapters = s1;
  Context ctx(*dense_, opt);
  const std::vector<int32_t> tokens = {2, 10, 20, 30};
  ctx.Decode(tokens, nullptr, false);
  EXPECT_EQ(ctx.n_past(), 4);
  ctx.SetAdapters(s1b);  // same key: the cache stays valid
  EXPECT_EQ(ctx.n_past(), 4);
  ctx.SetAdapters(s05);  // other scale: stale
  EXPECT_EQ(ctx.n_past(), 0);
  ctx.Decode(tokens, nullptr, false);
  ctx.SetAdapters(nullptr);
  EXPECT_EQ(ctx.n_past(), 0);
  // A set made for another model is refused.
  auto other = AdapterSet::Make(
      *e_, {{LoraAdapter::Load(Adapter("tiny-e.lora-ple.F32.gguf"), *e_), 1.0f}}, {});
  EXPECT_THROW(ctx.SetAdapters(other), Error);
}

// `hearth logits --lora/--control-vector` (the form other tools compare through) and
// `hearth info` on adapter files, as a user meets them.

int RunHearth(const std::string& args, std::string* output = nullptr) {
  const std::string out = ::testing::TempDir() + "hearth-lora-out-" + std::to_string(::getpid());
  const std::string cmd = std::string(HEARTH_BINARY) + " " + args + " > " + out + " 2>&1";
  const int status = std::system(cmd.c_str());
  if (output) {
    std::ifstream in(out);
    output->assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  std::remove(out.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::vector<float> ReadFloats(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<float> out(bytes.size() / sizeof(float));
  std::memcpy(out.data(), bytes.data(), out.size() * sizeof(float));
  return out;
}

TEST(LoraCommand, LogitsWithTwoAdaptersMatchLlamaCpp) {
  const testing::RefFile ref(FixturesDir() + "/lora/refs/tiny-dense.F32.attn-s1+mlp-s0.5.ref.gguf");
  const std::vector<int32_t> tokens = ref.Ints("short.tokens");
  std::string list;
  for (int32_t t : tokens) list += (list.empty() ? "" : ",") + std::to_string(t);
  const int V = ref.n_vocab();
  const std::string out = ::testing::TempDir() + "hearth-lora-logits-" + std::to_string(::getpid());
  const std::string base = "logits -m " + ModelFile("tiny-dense.F32") + " --tokens " + list +
                           " --out " + out + " -t 2 --lora " +
                           Adapter("tiny-dense.lora-attn.F32.gguf") + " --lora " +
                           Adapter("tiny-dense.lora-mlp.F32.gguf") + ":0.5";
  ASSERT_EQ(RunHearth(base), 0);
  const std::vector<float> fast = ReadFloats(out);
  ASSERT_EQ(fast.size(), tokens.size() * V);
  const std::vector<float> full = ref.Floats("short.full_logits");
  const std::vector<int32_t> full_pos = ref.Ints("short.full_pos");
  for (size_t p = 0; p < full_pos.size(); ++p) {
    for (int i = 0; i < V; ++i) {
      ASSERT_NEAR(fast[full_pos[p] * V + i], full[p * V + i], 0.35) << "pos " << full_pos[p];
    }
  }
  ASSERT_EQ(RunHearth(base + " --precise --incremental"), 0);
  const std::vector<float> precise = ReadFloats(out);
  ASSERT_EQ(precise.size(), tokens.size() * V);
  const std::vector<testing::RefRow> exact = ref.Rows("short.exact");
  for (size_t r = 0; r < tokens.size(); ++r) {
    EXPECT_LE(testing::CompareRow(exact[r], &precise[r * V], V).max_abs, 2e-3) << "pos " << r;
  }
  std::remove(out.c_str());
}

TEST(LoraCommand, ErrorsAndExitCodes) {
  const std::string out = ::testing::TempDir() + "hearth-lora-err-" + std::to_string(::getpid());
  const std::string e = "logits -m " + ModelFile("tiny-e.F32") + " --tokens 2,3 --out " + out;
  std::string text;
  EXPECT_EQ(RunHearth(e + " --lora " + Adapter("tiny-dense.lora-attn.F32.gguf"), &text), 3);
  EXPECT_NE(text.find("incorrect shape"), std::string::npos) << text;
  EXPECT_EQ(text.find('\n'), text.size() - 1) << "one line: " << text;
  EXPECT_EQ(RunHearth(e + " --control-vector " + Adapter("tiny-e.lora-ple.F32.gguf"), &text), 3);
  EXPECT_EQ(RunHearth(e + " --lora :0.5"), 2);
  EXPECT_EQ(RunHearth(e + " --lora " + Adapter("tiny-e.lora-ple.F32.gguf") + ":inf"), 2);
  EXPECT_EQ(RunHearth(e + " --lora /nonexistent/adapter.gguf"), 4);
  EXPECT_EQ(RunHearth(e + " --lora " + Adapter("tiny-e.cvec.gguf")), 3);
  EXPECT_EQ(RunHearth(e + " --lora " + FixturesDir() + "/models/tiny-e.F32.gguf"), 3);
  EXPECT_EQ(RunHearth(e + " --lora " + Adapter("tiny-e.lora-ple.F32.gguf") + ":0.5" +
                      " --control-vector " + Adapter("tiny-e.cvec.gguf") + ":-1"),
            0);
  std::remove(out.c_str());
}

TEST(LoraCommand, InfoSaysWhatAnAdapterAdapts) {
  std::string text;
  ASSERT_EQ(RunHearth("info -m " + Adapter("tiny-dense.lora-attn.F32.gguf"), &text), 0);
  EXPECT_NE(text.find("LoRA adapter"), std::string::npos) << text;
  EXPECT_NE(text.find("alpha 16"), std::string::npos) << text;
  EXPECT_NE(text.find("attn_q: rank 8"), std::string::npos) << text;
  ASSERT_EQ(RunHearth("info -m " + Adapter("tiny-e.cvec.gguf"), &text), 0);
  EXPECT_NE(text.find("control vector: 7 directions (layers 1..7)"), std::string::npos) << text;
}

// `hearth make-model --lora-for BASE` writes a llama.cpp-format adapter whose pairs fit the base's
// weights (checked here against the base file's own shapes), which loads and moves the logits;
// `hearth bench --vs-base` measures it against the base in the same run.
TEST(LoraCommand, MakeModelWritesARandomAdapterForABase) {
  const std::string dir = ::testing::TempDir() + "hearth-lora-make-" + std::to_string(::getpid());
  const std::string adapter = dir + ".gguf", out = dir + ".bin";
  const std::string base = ModelFile("tiny-e.F32");
  ASSERT_EQ(RunHearth("make-model --lora-for " + base + " --rank 3 --lora-type F32 -o " + adapter),
            0);
  const gguf::File file = gguf::File::Open(adapter);
  EXPECT_EQ(file.GetString("general.type"), "adapter");
  EXPECT_EQ(file.GetString("adapter.type"), "lora");
  const gguf::File model = gguf::File::Open(base);
  int pairs = 0;
  for (const auto& t : model.tensors()) {
    const bool target = t.name.find(".attn_q.weight") != std::string::npos ||
                        t.name.find(".ffn_down.weight") != std::string::npos;
    if (!target) continue;
    const gguf::TensorInfo* a = file.FindTensor(t.name + ".lora_a");
    const gguf::TensorInfo* b = file.FindTensor(t.name + ".lora_b");
    ASSERT_NE(a, nullptr) << t.name;
    ASSERT_NE(b, nullptr) << t.name;
    EXPECT_EQ(a->shape, (std::vector<int64_t>{t.shape[0], 3})) << t.name;
    EXPECT_EQ(b->shape, (std::vector<int64_t>{3, t.shape[1]})) << t.name;
    ++pairs;
  }
  EXPECT_GT(pairs, 0);
  std::string text;
  ASSERT_EQ(RunHearth("info -m " + adapter, &text), 0);
  EXPECT_NE(text.find("attn_q: rank 3"), std::string::npos) << text;

  const std::string logits = "logits -m " + base + " --tokens 2,17,33 --out " + out;
  ASSERT_EQ(RunHearth(logits), 0);
  const std::vector<float> plain = ReadFloats(out);
  ASSERT_EQ(RunHearth(logits + " --lora " + adapter), 0);
  const std::vector<float> adapted = ReadFloats(out);
  ASSERT_EQ(RunHearth(logits + " --lora " + adapter + ":0"), 0);
  EXPECT_EQ(ReadFloats(out), plain);  // scale 0 is the base exactly
  ASSERT_EQ(adapted.size(), plain.size());
  double moved = 0;
  for (size_t i = 0; i < plain.size(); ++i) {
    moved = std::max(moved, static_cast<double>(std::fabs(adapted[i] - plain[i])));
  }
  EXPECT_GT(moved, 1e-3);

  ASSERT_EQ(
      RunHearth("bench -m " + base + " --lora " + adapter + " --vs-base -p 4 -n 2 -r 2 -t 1 --json",
                &text),
      0);
  const auto j = nlohmann::json::parse(text.substr(0, text.find('\n')));
  EXPECT_TRUE(j.contains("tg_overhead_pct")) << text;
  EXPECT_GT(j["base_tg_tokens_per_s"].get<double>(), 0) << text;
  EXPECT_GT(j["base_pp_tokens_per_s"].get<double>(), 0) << text;

  // Usage errors exit 2, a base without weights to adapt 3.
  EXPECT_EQ(RunHearth("bench -m " + base + " --vs-base -n 1 -p 0 -r 1"), 2);
  EXPECT_EQ(RunHearth("make-model --lora-for " + base), 2);
  EXPECT_EQ(RunHearth("make-model --lora-for " + base + " --like e2b -o " + adapter), 2);
  EXPECT_EQ(RunHearth("make-model --lora-for " + base + " --lora-type Q4_0 -o " + adapter), 2);
  EXPECT_EQ(RunHearth("make-model --lora-for " + Adapter("tiny-e.cvec.gguf") + " -o " + adapter),
            3);
  EXPECT_EQ(RunHearth("make-model --lora-for " + adapter + " -o " + dir + "-2.gguf"), 3);
  std::remove(adapter.c_str());
  std::remove(out.c_str());
}

}  // namespace
}  // namespace hearth::model
