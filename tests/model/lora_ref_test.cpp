// LoRA adapters and control vectors against llama.cpp's references
// (../shared/fixtures/lora/README.md §5), every case of cases.json, each sequence as one batch
// (small ubatches, so the sliding ring wraps) and token by token:
//   Level 1 — precise mode vs the float64 exact math with the adapters: |diff| <= 2e-3, same
//             argmax where the reference margin exceeds 4e-3 (the check that proves the LoRA
//             arithmetic: every bug of README §6 is off by 1.6-17 logits);
//   Level 2 — F32 bases, fast mode vs llama.cpp: max-abs <= 0.35, the same greedy tokens up to
//             the first step with a reference margin below 0.5;
//   Level 3 — Q8_0 bases, fast mode vs llama.cpp: mean KL <= 0.15, top-1 >= 0.86, median
//             per-position max-abs <= 2.4.
// Scale-0 cases must reproduce the base model bit for bit and pass the base references.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "model/adapters.h"
#include "model/model.h"
#include "ref_check.h"

namespace hearth::model {
namespace {

using testing::CompareRow;
using testing::FixturesDir;
using testing::RefFile;
using testing::RefRow;
using testing::RowStats;

std::string LoraDir() { return FixturesDir() + "/lora"; }

const nlohmann::json& Cases() {
  static const nlohmann::json cases = [] {
    std::ifstream in(LoraDir() + "/cases.json");
    if (!in) return nlohmann::json::object();
    return nlohmann::json::parse(in)["cases"];
  }();
  return cases;
}

std::vector<std::string> AllCaseNames() {
  std::vector<std::string> out;
  for (const auto& [name, c] : Cases().items()) out.push_back(name);
  return out;
}

// Every case with HEARTH_LORA_FULL (label slow); otherwise four: Q8_0 adapter tensors on the
// PLE/KV-sharing model, a control vector, MoE experts and router, two adapters on a Q8_0 base.
std::vector<std::string> CaseNames() {
  std::vector<std::string> all = AllCaseNames();
#ifdef HEARTH_LORA_FULL
  return all;
#else
  const std::vector<std::string> subset = {"tiny-e.F32.attn-ffn-q8_0-s1", "tiny-e.F32.cvec-s1",
                                           "tiny-moe.F32.all-s1",
                                           "tiny-dense.Q8_0.attn-s1+mlp-s0.5"};
  std::vector<std::string> out;
  for (const auto& s : subset) {
    if (std::find(all.begin(), all.end(), s) != all.end()) out.push_back(s);
  }
  return out;
#endif
}

// cases.json names files relative to the directory above shared/, or adapters by their stem.
std::string AdapterPath(std::string name) {
  if (name.size() < 5 || name.substr(name.size() - 5) != ".gguf") name += ".gguf";
  return LoraDir() + "/adapters/" + name;
}
std::string SharedPath(const std::string& rel) {
  return FixturesDir() + "/" + rel.substr(rel.find("fixtures/") + 9);
}

class LoraRefTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    const nlohmann::json& c = Cases()[GetParam()];
    zero_ = c["kind"] == "zero";
    const std::string model_file = zero_ ? FixturesDir() + "/models/" +
                                               c["model"].get<std::string>() + "." +
                                               c["weight_type"].get<std::string>() + ".gguf"
                                         : SharedPath(c["model_file"]);
    model_ = Model::Load(model_file);
    ref_ = std::make_unique<RefFile>(zero_ ? SharedPath(c["same_as_base_ref"])
                                           : LoraDir() + "/refs/" + c["ref"].get<std::string>());
    ASSERT_EQ(model_->config().n_vocab, ref_->n_vocab());
    AdapterSet::Loras loras;
    AdapterSet::Cvecs cvecs;
    for (const auto& l : c["loras"]) {
      loras.emplace_back(LoraAdapter::Load(AdapterPath(l["adapter"]), *model_),
                         l["scale"].get<float>());
    }
    if (c.contains("cvecs") && c["cvecs"].is_array()) {
      for (const auto& v : c["cvecs"]) {
        cvecs.emplace_back(ControlVector::Load(AdapterPath(v["cvec"]), *model_),
                           v["strength"].get<float>());
      }
    }
    n_loras_ = loras.size();
    set_ = AdapterSet::Make(*model_, std::move(loras), std::move(cvecs));
  }

  std::vector<float> RunLogits(const std::vector<int32_t>& tokens, bool precise, bool incremental,
                               int n_ubatch, std::shared_ptr<const AdapterSet> set) {
    ContextOptions opt;
    opt.n_ctx = 512;
    opt.n_ubatch = n_ubatch;
    opt.n_threads = 2;
    opt.precise = precise;
    opt.adapters = std::move(set);
    return testing::ContextLogits(*model_, opt, tokens, incremental);
  }

  void Level1(bool incremental) {
    const int V = model_->config().n_vocab;
    double worst_all = 0;
    for (const std::string& seq : ref_->sequences()) {
      SCOPED_TRACE(GetParam() + " " + seq + (incremental ? " incremental" : " batch"));
      std::vector<int32_t> tokens = ref_->Ints(seq + ".tokens");
      const std::vector<int32_t> gen = ref_->Ints(seq + ".gen.tokens");
      tokens.insert(tokens.end(), gen.begin(), gen.end() - 1);
      const std::vector<RefRow> rows = ref_->Rows(seq + ".exact");
      ASSERT_EQ(rows.size(), tokens.size());
      const std::vector<float> logits =
          RunLogits(tokens, true, incremental, incremental ? 1 : 64, set_);
      int bad = 0;
      for (size_t r = 0; r < rows.size(); ++r) {
        const RowStats st = CompareRow(rows[r], &logits[r * V], V);
        worst_all = std::max(worst_all, st.max_abs);
        if (st.max_abs > 2e-3 || (st.ref_margin > 4e-3 && !st.argmax_same)) {
          if (++bad <= 3) ADD_FAILURE() << "position " << r << ": max |diff| " << st.max_abs;
        }
      }
      EXPECT_EQ(bad, 0) << "rows outside the Level 1 tolerance";
    }
    std::printf("[lora level1] %s %s: max |diff| %.3g\n", GetParam().c_str(),
                incremental ? "incr" : "batch", worst_all);
  }

  void FastVsLlama(bool incremental) {
    const int V = model_->config().n_vocab;
    const bool level2 = ref_->weight_type() == "F32";
    ASSERT_TRUE(level2 || ref_->weight_type() == "Q8_0") << ref_->weight_type();
    int all_confident = 0, all_agree = 0;
    double worst_all = 0, worst_median = 0, worst_kl = 0;
    for (const std::string& seq : ref_->sequences()) {
      SCOPED_TRACE(GetParam() + " " + seq + (incremental ? " incremental" : " batch") + " fast");
      const std::vector<int32_t> tokens = ref_->Ints(seq + ".tokens");
      const std::vector<int32_t> gen = ref_->Ints(seq + ".gen.tokens");
      const std::vector<RefRow> rows = ref_->Rows(seq + (incremental ? ".incr" : ".batch"));
      ASSERT_EQ(rows.size(), tokens.size());
      ContextOptions opt;
      opt.n_ctx = 512;
      opt.n_threads = 2;
      opt.adapters = set_;
      Context ctx(*model_, opt);
      std::vector<float> logits(tokens.size() * V);
      if (incremental) {
        for (size_t i = 0; i < tokens.size(); ++i) {
          ctx.Decode(std::span<const int32_t>(&tokens[i], 1), &logits[i * V], true);
        }
      } else {
        ctx.Decode(tokens, logits.data(), true);
      }
      std::vector<double> per_pos(rows.size());
      double kl_sum = 0, worst = 0;
      int confident = 0, agree = 0;
      for (size_t r = 0; r < rows.size(); ++r) {
        const RowStats st = CompareRow(rows[r], &logits[r * V], V);
        per_pos[r] = st.max_abs;
        kl_sum += st.kl;
        if (st.ref_margin > 0.25) {
          ++confident;
          agree += st.argmax_same ? 1 : 0;
        }
      }
      if (!incremental) {
        const std::vector<int32_t> full_pos = ref_->Ints(seq + ".full_pos");
        const std::vector<float> full = ref_->Floats(seq + ".full_logits");
        for (size_t p = 0; p < full_pos.size(); ++p) {
          const size_t r = full_pos[p];
          ASSERT_LT(r, rows.size());
          for (int i = 0; i < V; ++i) {
            per_pos[r] =
                std::max(per_pos[r], std::abs(double(logits[r * V + i]) - full[p * V + i]));
          }
        }
      }
      for (double d : per_pos) worst = std::max(worst, d);
      // Greedy continuation, teacher-forced on llama.cpp's tokens.
      const std::vector<RefRow> gen_rows = ref_->Rows(seq + ".gen");
      int first_mismatch = static_cast<int>(gen.size());
      bool low_margin_seen = false;
      std::vector<float> row(logits.end() - V, logits.end());
      for (size_t k = 0; k < gen.size(); ++k) {
        if (k > 0) ctx.Decode(std::span<const int32_t>(&gen[k - 1], 1), row.data(), true);
        const RowStats st = CompareRow(gen_rows[k], row.data(), V);
        if (level2) worst = std::max(worst, st.max_abs);
        if (st.ref_margin < 0.5) low_margin_seen = true;
        if (!low_margin_seen && testing::ArgMax(row.data(), V) != gen[k] &&
            first_mismatch == static_cast<int>(gen.size())) {
          first_mismatch = static_cast<int>(k);
        }
      }
      std::sort(per_pos.begin(), per_pos.end());
      const double median = per_pos[per_pos.size() / 2];
      const double mean_kl = kl_sum / rows.size();
      worst_all = std::max(worst_all, worst);
      worst_median = std::max(worst_median, median);
      worst_kl = std::max(worst_kl, mean_kl);
      if (level2) {
        EXPECT_LE(worst, 0.35) << "max-abs vs llama.cpp";
        EXPECT_EQ(first_mismatch, static_cast<int>(gen.size()))
            << "greedy token differs before the first low-margin step";
      } else {
        EXPECT_LE(mean_kl, 0.15) << "mean KL vs llama.cpp";
        EXPECT_LE(median, 2.4) << "median per-position max-abs vs llama.cpp";
        all_confident += confident;
        all_agree += agree;
      }
    }
    const double top1 = all_confident ? double(all_agree) / all_confident : 1.0;
    if (!level2) {
      EXPECT_GE(top1, 0.86) << "top-1 agreement vs llama.cpp";
    }
    std::printf(
        "[lora %s] %s %s: max-abs %.3g, worst median %.3g, worst mean KL %.3g, top-1 %.3f\n",
        level2 ? "level2" : "level3", GetParam().c_str(), incremental ? "incr" : "batch", worst_all,
        worst_median, worst_kl, top1);
  }

  std::unique_ptr<Model> model_;
  std::unique_ptr<RefFile> ref_;
  std::shared_ptr<const AdapterSet> set_;
  size_t n_loras_ = 0;
  bool zero_ = false;
};

TEST_P(LoraRefTest, Level1PreciseBatch) { Level1(false); }
TEST_P(LoraRefTest, Level1PreciseIncremental) { Level1(true); }
TEST_P(LoraRefTest, FastVsLlamaBatch) { FastVsLlama(false); }
TEST_P(LoraRefTest, FastVsLlamaIncremental) { FastVsLlama(true); }

// Scale 0: the adapters are loaded and dropped, so the logits are the base model's bit for bit
// (llama.cpp's rule); other cases must actually move the logits.
TEST_P(LoraRefTest, ZeroScaleIsTheBaseModelOtherScalesAreNot) {
  const std::vector<int32_t> tokens = ref_->Ints(ref_->sequences().front() + ".tokens");
  const std::vector<float> base = RunLogits(tokens, false, false, 64, nullptr);
  if (zero_) {
    EXPECT_GE(n_loras_, 1u);
    EXPECT_EQ(set_, nullptr) << "a zero-scale adapter must be dropped";
    return;
  }
  ASSERT_NE(set_, nullptr);
  const std::vector<float> with = RunLogits(tokens, false, false, 64, set_);
  double diff = 0;
  for (size_t i = 0; i < base.size(); ++i)
    diff = std::max(diff, double(std::abs(base[i] - with[i])));
  EXPECT_GT(diff, 1.0) << "the adapters do not change the logits";
}

std::string ParamName(const ::testing::TestParamInfo<std::string>& info) {
  std::string s = info.param;
  for (char& ch : s) {
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  }
  return s;
}

#ifdef HEARTH_LORA_FULL
INSTANTIATE_TEST_SUITE_P(Full, LoraRefTest, ::testing::ValuesIn(CaseNames()), ParamName);
#else
INSTANTIATE_TEST_SUITE_P(Subset, LoraRefTest, ::testing::ValuesIn(CaseNames()), ParamName);

TEST(LoraFixtures, Present) {
  EXPECT_EQ(AllCaseNames().size(), 21u) << "cases.json not found under " << LoraDir();
  EXPECT_EQ(CaseNames().size(), 4u);
}
#endif

}  // namespace
}  // namespace hearth::model
