// The MTP drafter against llama.cpp's references (../shared/fixtures/mtp/README.md §7): Level 1
// (precise mode vs the float64 exact math), Level 2 (F32 drafters vs llama.cpp: isolated,
// free-running step 0 and chains, greedy draft tokens), Level 3 (Q8_0 drafters, statistics),
// each in the mode the README's settings call for, plus the loader's refusals.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "base/error.h"
#include "gguf/gguf.h"
#include "model/drafter.h"
#include "model/model.h"
#include "ref_check.h"

namespace hearth::model {
namespace {

using testing::CompareRow;
using testing::FixturesDir;
using testing::RefFile;
using testing::RefRow;

constexpr int kSteps = 4;  // K of the references

std::string MtpDir() { return FixturesDir() + "/mtp"; }

struct Fixture {
  std::string drafter;  // e.g. "tiny-e-mtp.F32"
  std::string target;   // e.g. "tiny-e.F32"
};

std::string TargetOf(const std::string& drafter) {
  return drafter.substr(0, drafter.find("-mtp")) + ".F32";
}

// Every drafter file in the slow-labelled full run; one of each structure and weight type in
// every ctest run.
const std::vector<std::string>& Drafters() {
#ifdef HEARTH_MTP_FULL
  static const std::vector<std::string> kAll = {"tiny-e-mtp.F32", "tiny-e-mtp.Q8_0",
                                                "tiny-dense-mtp.F32", "tiny-dense-mtp.Q8_0"};
#else
  static const std::vector<std::string> kAll = {"tiny-e-mtp.F32", "tiny-dense-mtp.Q8_0"};
#endif
  return kAll;
}

// Everything the engine computes for one sequence: step-0 logits at every draft position from
// its own target hidden rows, and the 4-step chains at the reference's chain positions (steps
// >= 1 fed llama.cpp's draft token of the previous step and the engine's own h').
struct EngineRun {
  int T = 0;
  std::vector<float> hidden;                 // [T][B]
  std::vector<float> step0;                  // [T][V]
  std::vector<std::vector<float>> chain;     // [C][K*V]
  std::vector<std::vector<int32_t>> greedy;  // [T][K]: free-running greedy drafts
};

class MtpRefTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    ref_ = std::make_unique<RefFile>(MtpDir() + "/refs/" + GetParam() + ".mtpref.gguf");
    target_ = Model::Load(FixturesDir() + "/models/" + TargetOf(GetParam()) + ".gguf");
    drafter_ = Drafter::Load(MtpDir() + "/models/" + GetParam() + ".gguf");
    drafter_->CheckTarget(target_->config(), &target_->file());
  }

  bool f32_drafter() const { return GetParam().find(".F32") != std::string::npos; }

  // Runs the target over the sequence in one batch (as the references do) and the drafter at
  // every position. `greedy` also runs each position's free 4-step greedy chain.
  EngineRun Run(const std::string& seq, bool precise, bool greedy) {
    const std::vector<int32_t> tokens = ref_->Ints(seq + ".tokens");
    const std::vector<int32_t> draft_token = ref_->Ints(seq + ".draft.token");
    const std::vector<int32_t> ref_drafts = ref_->Ints(seq + ".draft.tokens");
    const std::vector<int32_t> chain_pos = ref_->Ints(seq + ".chain.pos");
    const int V = target_->config().n_vocab, B = target_->config().n_embd;
    EngineRun run;
    run.T = static_cast<int>(tokens.size());
    ContextOptions o;
    o.n_ctx = 512;
    o.n_ubatch = 512;
    o.precise = precise;
    ctx_ = std::make_unique<Context>(*target_, o);
    std::vector<float> logits(static_cast<size_t>(run.T) * V);
    run.hidden.resize(static_cast<size_t>(run.T) * B);
    ctx_->Decode(tokens, logits.data(), true, run.hidden.data());
    DrafterContext d(*drafter_, *ctx_);
    run.step0.resize(static_cast<size_t>(run.T) * V);
    std::vector<float> h(B), scratch(V);
    for (int r = 0; r < run.T; ++r) {
      d.Step(draft_token[r], r + 1, &run.hidden[static_cast<size_t>(r) * B], &run.step0[r * V],
             h.data());
      if (!greedy) continue;
      std::vector<int32_t> drafts = {testing::ArgMax(&run.step0[r * V], V)};
      std::vector<float> hh = h;
      for (int s = 1; s < kSteps; ++s) {
        std::vector<float> next(B);
        d.Step(drafts.back(), r + 1, hh.data(), scratch.data(), next.data());
        drafts.push_back(testing::ArgMax(scratch.data(), V));
        hh = next;
      }
      run.greedy.push_back(drafts);
    }
    for (int32_t p : chain_pos) {
      std::vector<float> out(static_cast<size_t>(kSteps) * V);
      std::vector<float> hh(&run.hidden[static_cast<size_t>(p - 1) * B],
                            &run.hidden[static_cast<size_t>(p) * B]);
      for (int s = 0; s < kSteps; ++s) {
        const int32_t tok = s == 0 ? draft_token[p - 1] : ref_drafts[(p - 1) * kSteps + s - 1];
        std::vector<float> next(B);
        d.Step(tok, p, hh.data(), &out[static_cast<size_t>(s) * V], next.data());
        hh = next;
      }
      run.chain.push_back(std::move(out));
    }
    return run;
  }

  std::unique_ptr<RefFile> ref_;
  std::unique_ptr<Model> target_;
  std::unique_ptr<Drafter> drafter_;
  std::unique_ptr<Context> ctx_;
};

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// Chain rows [C*K] of a reference prefix ("S.chain" or "S.chain.exact").
std::vector<RefRow> ChainRows(const RefFile& ref, const std::string& prefix) {
  return ref.Rows(prefix);
}

// Level 1: precise mode against the float64 exact math, every row and every chain step.
TEST_P(MtpRefTest, Level1PreciseMatchesExactMath) {
  const int V = target_->config().n_vocab;
  for (const std::string& seq : ref_->sequences()) {
    SCOPED_TRACE(seq);
    const EngineRun run = Run(seq, /*precise=*/true, /*greedy=*/false);
    const std::vector<RefRow> exact = ref_->Rows(seq + ".exact");
    ASSERT_EQ(static_cast<int>(exact.size()), run.T);
    double worst = 0;
    for (int r = 0; r < run.T; ++r) {
      worst = std::max(worst, CompareRow(exact[r], &run.step0[r * V], V).max_abs);
    }
    EXPECT_LE(worst, 5e-3) << "step 0";
    const std::vector<RefRow> chain = ChainRows(*ref_, seq + ".chain.exact");
    ASSERT_EQ(chain.size(), run.chain.size() * kSteps);
    double worst_chain = 0;
    for (size_t c = 0; c < run.chain.size(); ++c) {
      for (int s = 0; s < kSteps; ++s) {
        worst_chain = std::max(worst_chain, CompareRow(chain[c * kSteps + s],
                                                       &run.chain[c][static_cast<size_t>(s) * V], V)
                                                .max_abs);
      }
    }
    EXPECT_LE(worst_chain, 5e-3) << "chains";
  }
}

// Level 2 isolated: fed llama.cpp's own h (step 0) and h' (steps 1-3), only the K/V are the
// engine's. F32 drafters (the files that store h).
TEST_P(MtpRefTest, Level2IsolatedMatchesLlamaCpp) {
  if (!f32_drafter()) GTEST_SKIP() << "h and h' are stored for F32 drafters only";
  const int V = target_->config().n_vocab, B = target_->config().n_embd;
  for (bool precise : {false, true}) {
    for (const std::string& seq : ref_->sequences()) {
      SCOPED_TRACE(seq + (precise ? " precise" : " fast"));
      const EngineRun run = Run(seq, precise, false);  // fills the target cache
      DrafterContext d(*drafter_, *ctx_);
      const std::vector<int32_t> hpos = ref_->Ints(seq + ".hidden.pos");
      const std::vector<float> hidden = ref_->Floats(seq + ".hidden");
      const std::vector<int32_t> token = ref_->Ints(seq + ".draft.token");
      const std::vector<RefRow> rows = ref_->Rows(seq + ".draft");
      std::vector<float> logits(V);
      double worst = 0;
      for (size_t i = 0; i < hpos.size(); ++i) {
        const int r = hpos[i];  // h_r feeds the draft at position r + 1
        d.Step(token[r], r + 1, &hidden[i * B], logits.data(), nullptr);
        worst = std::max(worst, CompareRow(rows[r], logits.data(), V).max_abs);
      }
      EXPECT_LE(worst, 0.2) << "step 0 with llama.cpp's h";
      const std::vector<int32_t> cpos = ref_->Ints(seq + ".chain.pos");
      const std::vector<float> h_next = ref_->Floats(seq + ".chain.h_next");
      const std::vector<int32_t> drafts = ref_->Ints(seq + ".draft.tokens");
      const std::vector<RefRow> chain = ref_->Rows(seq + ".chain");
      double worst_chain = 0;
      for (size_t c = 0; c < cpos.size(); ++c) {
        const int p = cpos[c];
        for (int s = 1; s < kSteps; ++s) {
          const float* h = &h_next[(c * (kSteps - 1) + s - 1) * B];
          d.Step(drafts[(p - 1) * kSteps + s - 1], p, h, logits.data(), nullptr);
          worst_chain =
              std::max(worst_chain, CompareRow(chain[c * kSteps + s], logits.data(), V).max_abs);
        }
      }
      EXPECT_LE(worst_chain, 0.2) << "steps 1-3 with llama.cpp's h'";
    }
  }
}

// Level 2 free-running (F32 drafters) in both modes; Level 3 statistics (Q8_0 drafters).
TEST_P(MtpRefTest, FreeRunningMatchesLlamaCpp) {
  const int V = target_->config().n_vocab;
  for (bool precise : {false, true}) {
    for (const std::string& seq : ref_->sequences()) {
      SCOPED_TRACE(seq + (precise ? " precise" : " fast"));
      const EngineRun run = Run(seq, precise, /*greedy=*/true);
      const std::vector<RefRow> rows = ref_->Rows(seq + ".draft");
      const std::vector<int32_t> ref_drafts = ref_->Ints(seq + ".draft.tokens");
      std::vector<double> max_abs;
      double kl = 0;
      int agree = 0, decisive = 0;
      for (int r = 0; r < run.T; ++r) {
        const testing::RowStats st = CompareRow(rows[r], &run.step0[r * V], V);
        max_abs.push_back(st.max_abs);
        kl += st.kl;
        if (st.ref_margin > 0.25) {
          ++decisive;
          agree += st.argmax_same ? 1 : 0;
        }
      }
      const double worst = *std::max_element(max_abs.begin(), max_abs.end());
      if (f32_drafter()) {
        EXPECT_LE(worst, 1.5);
        EXPECT_LE(Median(max_abs), 0.15);
        // Greedy drafts equal llama.cpp's wherever its step-0 margin is decisive (> 0.5); the
        // later steps are compared where the chain's own margins are stored (below).
        for (int r = 0; r < run.T; ++r) {
          if (rows[r].logits[0] - rows[r].logits[1] > 0.5) {
            EXPECT_EQ(run.greedy[r][0], ref_drafts[r * kSteps]) << "row " << r;
          }
        }
        const std::vector<int32_t> cpos = ref_->Ints(seq + ".chain.pos");
        const std::vector<RefRow> chain = ref_->Rows(seq + ".chain");
        std::vector<double> chain_abs;
        for (size_t c = 0; c < cpos.size(); ++c) {
          const int p = cpos[c];
          bool same_so_far = true;
          for (int s = 0; s < kSteps; ++s) {
            const RefRow& ref = chain[c * kSteps + s];
            chain_abs.push_back(
                CompareRow(ref, &run.chain[c][static_cast<size_t>(s) * V], V).max_abs);
            // A free-running chain follows llama.cpp's while every earlier step agreed.
            if (same_so_far && ref.logits[0] - ref.logits[1] > 0.5) {
              EXPECT_EQ(run.greedy[p - 1][s], ref_drafts[(p - 1) * kSteps + s])
                  << "position " << p << " step " << s;
            }
            same_so_far = same_so_far && run.greedy[p - 1][s] == ref_drafts[(p - 1) * kSteps + s];
          }
        }
        EXPECT_LE(*std::max_element(chain_abs.begin(), chain_abs.end()), 2.5);
        EXPECT_LE(Median(chain_abs), 0.2);
      } else {
        EXPECT_LE(kl / run.T, 0.06);
        EXPECT_GE(decisive ? static_cast<double>(agree) / decisive : 1.0, 0.93);
        EXPECT_LE(Median(max_abs), 0.8);
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, MtpRefTest, ::testing::ValuesIn(Drafters()), [](const auto& p) {
  std::string s = p.param;
  std::replace(s.begin(), s.end(), '-', '_');
  std::replace(s.begin(), s.end(), '.', '_');
  return s;
});

// `hearth logits --draft` writes the README's rows: row r is the draft at position r + 1 (the
// last one after the target's greedy token), compared with llama.cpp's step-0 references at the
// README's free-running tolerances, in both modes.
TEST(MtpCli, LogitsWithDraftFollowsTheRowConvention) {
  const RefFile ref(MtpDir() + "/refs/tiny-e-mtp.F32.mtpref.gguf");
  const std::vector<int32_t> tokens = ref.Ints("medium.tokens");
  std::string ids;
  for (int32_t t : tokens) ids += (ids.empty() ? "" : ",") + std::to_string(t);
  const std::string out = ::testing::TempDir() + "/mtp_logits.bin";
  for (const char* mode : {"", " --precise"}) {
    SCOPED_TRACE(mode);
    const std::string cmd = std::string(HEARTH_BINARY) + " logits -m " + FixturesDir() +
                            "/models/tiny-e.F32.gguf --draft " + MtpDir() +
                            "/models/tiny-e-mtp.F32.gguf -t 1 --tokens " + ids + " --out " + out +
                            mode;
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
    std::FILE* f = std::fopen(out.c_str(), "rb");
    ASSERT_NE(f, nullptr);
    const int V = ref.n_vocab();
    std::vector<float> logits(tokens.size() * V);
    ASSERT_EQ(std::fread(logits.data(), sizeof(float), logits.size(), f), logits.size());
    EXPECT_EQ(std::fgetc(f), EOF) << "exactly [T][n_vocab] floats";
    std::fclose(f);
    const std::vector<RefRow> rows = ref.Rows("medium.draft");
    std::vector<double> max_abs;
    for (size_t r = 0; r < rows.size(); ++r) {
      max_abs.push_back(CompareRow(rows[r], &logits[r * V], V).max_abs);
    }
    EXPECT_LE(*std::max_element(max_abs.begin(), max_abs.end()), 1.5);
    EXPECT_LE(Median(max_abs), 0.15);
  }
  std::remove(out.c_str());
  // A drafter of another model is refused with the usage exit code.
  const std::string bad = std::string(HEARTH_BINARY) + " logits -m " + FixturesDir() +
                          "/models/tiny-dense.F32.gguf --draft " + MtpDir() +
                          "/models/tiny-e-mtp.F32.gguf --tokens 2,3 --out " + out + " 2>/dev/null";
  const int rc = std::system(bad.c_str());
  EXPECT_TRUE(WIFEXITED(rc) && WEXITSTATUS(rc) == 2) << rc;
}

// A drafter for another target is refused before anything runs.
TEST(MtpLoad, RefusesADrafterOfAnotherModel) {
  auto target = Model::Load(FixturesDir() + "/models/tiny-dense.F32.gguf");
  auto drafter = Drafter::Load(MtpDir() + "/models/tiny-e-mtp.F32.gguf");
  try {
    drafter->CheckTarget(target->config(), &target->file());
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.error_class(), ErrorClass::kUsage);
    EXPECT_NE(std::string(e.what()).find("does not fit"), std::string::npos) << e.what();
  }
}

TEST(MtpLoad, RefusesATargetAsDrafterAndADrafterAsTarget) {
  EXPECT_THROW(Drafter::Load(FixturesDir() + "/models/tiny-e.F32.gguf"), Error);
  EXPECT_THROW(Model::Load(MtpDir() + "/models/tiny-e-mtp.F32.gguf"), Error);
  EXPECT_TRUE(Drafter::IsDrafterFile(gguf::File::Open(MtpDir() + "/models/tiny-e-mtp.F32.gguf")));
}

}  // namespace
}  // namespace hearth::model
