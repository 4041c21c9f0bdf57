// Export and import of the KV cache (model::Context::ExportKv/ImportKv), the basis of the
// persisted prefix cache: a context restored at position n from another context's state must
// continue exactly as one that decoded all n tokens itself (the same bits, not "close"), on every
// fixture structure (dense, E-style with KV-shared layers and per-layer embeddings, MoE), in
// every cache type (F32 precise, F16, Q8_0 and Q4_0 blocks, mixed K/V), with prompts well past
// the sliding window so the rings have wrapped.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "model/model.h"

namespace hearth::model {
namespace {

std::string FixtureModel(const std::string& name) {
  return std::string(HEARTH_SHARED_DIR) + "/fixtures/models/" + name + ".gguf";
}

// Deterministic token ids inside the vocabulary (no special meaning needed here).
std::vector<int32_t> Tokens(int n, int n_vocab) {
  std::vector<int32_t> t(n);
  uint32_t x = 12345;
  for (auto& id : t) {
    x = x * 1664525u + 1013904223u;
    id = static_cast<int32_t>(2 + (x >> 8) % static_cast<uint32_t>(n_vocab - 2));
  }
  return t;
}

ContextOptions Options(bool precise, KvType k = KvType::kF16, KvType v = KvType::kF16) {
  ContextOptions o;
  o.n_ctx = 256;
  o.n_ubatch = 16;  // small, so the sliding rings (window 32..48) wrap many times
  o.n_threads = 1;
  o.precise = precise;
  o.cache_type_k = k;
  o.cache_type_v = v;
  return o;
}

struct Case {
  const char* model;
  bool precise;
  KvType k = KvType::kF16;
  KvType v = KvType::kF16;
  ContextOptions options() const { return Options(precise, k, v); }
};

class KvStateTest : public ::testing::TestWithParam<Case> {};

TEST_P(KvStateTest, RestoredContextContinuesBitForBit) {
  const auto model = Model::Load(FixtureModel(GetParam().model));
  const int n_vocab = model->config().n_vocab;
  const std::vector<int32_t> tokens = Tokens(180, n_vocab);
  const int total = 150, checkpoint = 97, tail_end = 180;

  // The source: decodes 0..checkpoint, exports the sliding window there, goes on to `total`
  // and exports the full layers (a longer blob: only its first `checkpoint` positions count).
  Context source(*model, GetParam().options());
  source.Decode({tokens.data(), size_t(checkpoint)}, nullptr, false);
  const std::string sliding = source.ExportKv(Context::KvPart::kSliding);
  source.Decode({tokens.data() + checkpoint, size_t(total - checkpoint)}, nullptr, false);
  const std::string full = source.ExportKv(Context::KvPart::kFull);
  EXPECT_EQ(full.size(), source.FullKvBytesPerPosition() * total);

  // The reference: a fresh context decoding everything itself.
  Context reference(*model, GetParam().options());
  reference.Decode({tokens.data(), size_t(checkpoint)}, nullptr, false);
  std::vector<float> want(size_t(tail_end - checkpoint) * n_vocab);
  reference.Decode({tokens.data() + checkpoint, size_t(tail_end - checkpoint)}, want.data(), true);

  Context restored(*model, GetParam().options());
  ASSERT_TRUE(restored.ImportKv(checkpoint, full, sliding));
  EXPECT_EQ(restored.n_past(), checkpoint);
  std::vector<float> got(want.size());
  restored.Decode({tokens.data() + checkpoint, size_t(tail_end - checkpoint)}, got.data(), true);
  EXPECT_EQ(got, want);

  // The rings hold nothing older than what position `checkpoint` sees: truncating below it
  // must fail (and leave the context usable), at or above it is fine.
  EXPECT_FALSE(restored.Truncate(checkpoint - 1));
  EXPECT_EQ(restored.n_past(), tail_end);
  EXPECT_TRUE(restored.Truncate(tail_end - 3));
  std::vector<float> again(size_t(3) * n_vocab);
  restored.Decode({tokens.data() + tail_end - 3, 3}, again.data(), true);
  EXPECT_TRUE(std::equal(again.begin(), again.end(), want.end() - again.size()));
  restored.Reset();
  EXPECT_TRUE(restored.Truncate(0));
}

INSTANTIATE_TEST_SUITE_P(
    Fixtures, KvStateTest,
    ::testing::Values(Case{"tiny-dense.Q8_0", false}, Case{"tiny-dense.F32", true},
                      Case{"tiny-e.Q4_K_M", false}, Case{"tiny-e.F32", true},
                      Case{"tiny-moe.Q4_0", false}, Case{"tiny-moe.F32", true},
                      Case{"tiny-e.Q4_K_M", false, KvType::kQ8_0, KvType::kQ8_0},
                      Case{"tiny-dense.Q8_0", false, KvType::kQ4_0, KvType::kQ4_0},
                      Case{"tiny-moe.Q4_0", false, KvType::kQ8_0, KvType::kF16}),
    [](const auto& param_info) {
      std::string name = param_info.param.model;
      for (char& ch : name) {
        if (ch == '.' || ch == '-') ch = '_';
      }
      name += param_info.param.precise ? "_precise" : "_fast";
      if (param_info.param.k != KvType::kF16 || param_info.param.v != KvType::kF16) {
        name += std::string("_kv_") + KvTypeName(param_info.param.k) + "_" +
                KvTypeName(param_info.param.v);
      }
      return name;
    });

TEST(KvState, BlobsThatDoNotFitAreRefusedAndChangeNothing) {
  const auto model = Model::Load(FixtureModel("tiny-e.Q8_0"));
  const std::vector<int32_t> tokens = Tokens(80, model->config().n_vocab);
  Context a(*model, Options(false));
  a.Decode({tokens.data(), 60}, nullptr, false);
  const std::string sliding = a.ExportKv(Context::KvPart::kSliding);
  const std::string full = a.ExportKv(Context::KvPart::kFull);

  Context b(*model, Options(false));
  b.Decode({tokens.data(), 10}, nullptr, false);
  EXPECT_FALSE(b.ImportKv(61, full, sliding));  // the full blob has only 60 positions
  EXPECT_FALSE(b.ImportKv(59, full, sliding));  // the window was captured at 60, not 59
  EXPECT_FALSE(b.ImportKv(60, full, sliding.substr(1)));
  EXPECT_FALSE(b.ImportKv(60, full.substr(1), sliding));
  EXPECT_FALSE(b.ImportKv(60, full, sliding + "x"));
  Context precise(*model, Options(true));  // another cache type: F32 cells, twice the bytes
  EXPECT_FALSE(precise.ImportKv(60, full, sliding));
  EXPECT_EQ(b.n_past(), 10);
  EXPECT_EQ(precise.n_past(), 0);
  EXPECT_TRUE(b.ImportKv(60, full, sliding));
}

// Blobs of another cache type never fit: every type has its own bytes per cell (F16 64 for 32
// values, Q8_0 34, Q4_0 18), so an F16 state is refused by a Q8_0 context and the other way
// round (the persisted prefix cache also keys its files by the type: agent/prefix_cache.h).
TEST(KvState, BlobsOfAnotherCacheTypeAreRefused) {
  const auto model = Model::Load(FixtureModel("tiny-e.Q8_0"));
  const std::vector<int32_t> tokens = Tokens(60, model->config().n_vocab);
  const KvType types[] = {KvType::kF16, KvType::kQ8_0, KvType::kQ4_0};
  std::vector<std::pair<std::string, std::string>> blobs;  // (full, sliding) per type
  for (KvType t : types) {
    Context c(*model, Options(false, t, t));
    EXPECT_EQ(c.k_type(), t);
    EXPECT_EQ(c.v_type(), t);
    c.Decode({tokens.data(), 60}, nullptr, false);
    blobs.emplace_back(c.ExportKv(Context::KvPart::kFull), c.ExportKv(Context::KvPart::kSliding));
  }
  for (size_t i = 0; i < 3; ++i) {
    for (size_t j = 0; j < 3; ++j) {
      Context c(*model, Options(false, types[i], types[i]));
      EXPECT_EQ(c.ImportKv(60, blobs[j].first, blobs[j].second), i == j)
          << KvTypeName(types[i]) << " context, " << KvTypeName(types[j]) << " blob";
    }
  }
  // Precise mode keeps its F32 cache whatever the options say.
  Context precise(*model, Options(true, KvType::kQ8_0, KvType::kQ4_0));
  EXPECT_EQ(precise.k_type(), KvType::kF32);
  EXPECT_EQ(precise.v_type(), KvType::kF32);
}

}  // namespace
}  // namespace hearth::model
