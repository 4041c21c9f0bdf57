// Reading the llama.cpp / exact-math reference files (../shared/fixtures/refs/README.md §4) and
// the statistics of §7 used to compare an engine's logits with them.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <span>
#include <string>
#include <vector>

#include "gguf/gguf.h"
#include "model/model.h"

namespace hearth::model::testing {

std::string FixturesDir();
// Every "NAME.TYPE" with both a model and a reference file, sorted.
std::vector<std::string> AllFixtureFiles();

// One position's stored reference: the 20 largest logits (descending) and the log-sum-exp.
struct RefRow {
  std::vector<int32_t> ids;
  std::vector<float> logits;
  float lse = 0;
};

class RefFile {
 public:
  explicit RefFile(const std::string& path);
  std::vector<std::string> sequences() const;
  std::string weight_type() const;
  int n_vocab() const { return n_vocab_; }

  std::vector<int32_t> Ints(const std::string& name) const;
  std::vector<float> Floats(const std::string& name) const;
  // Rows `<prefix>.top_ids/top_logits/lse` (prefix e.g. "short.batch").
  std::vector<RefRow> Rows(const std::string& prefix) const;

 private:
  const gguf::TensorInfo& Tensor(const std::string& name, uint32_t type) const;
  gguf::File file_;
  int n_vocab_ = 0;
};

// Statistics of one engine row against one reference row (README §7).
struct RowStats {
  double max_abs = 0;  // over the stored ids and the lse
  double kl = 0;       // lower bound of KL(ref || engine) from the top-20 + rest mass
  bool argmax_same = true;
  double ref_margin = 0;  // top1 - top2 of the reference
};
RowStats CompareRow(const RefRow& ref, const float* logits, int n_vocab);

// A raw float32 file in host order (what `hearth embed-media --out` writes), whole.
inline std::vector<float> ReadFloatFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  const std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  std::vector<float> v(bytes.size() / sizeof(float));
  std::memcpy(v.data(), bytes.data(), v.size() * sizeof(float));
  return v;
}

// Tensor `name` of a reference file as T; empty, and a test failure, when it is missing.
template <typename T>
std::vector<T> RefTensor(const gguf::File& ref, const std::string& name) {
  const gguf::TensorInfo* t = ref.FindTensor(name);
  EXPECT_NE(t, nullptr) << name;
  if (!t) return {};
  std::vector<T> v(static_cast<size_t>(t->n_elements()));
  std::memcpy(v.data(), t->data, v.size() * sizeof(T));
  return v;
}

// How far `got` is from `want`: the largest absolute error and the relative RMS error
// (||got - want|| / ||want||). A size mismatch is a test failure; the common prefix is compared.
struct Diff {
  double max_abs = 0, rel_rms = 0;
};
inline Diff Compare(const std::vector<float>& got, const std::vector<float>& want) {
  EXPECT_EQ(got.size(), want.size());
  Diff d;
  double se = 0, sr = 0;
  for (size_t i = 0; i < std::min(got.size(), want.size()); ++i) {
    const double e = double{got[i]} - want[i];
    d.max_abs = std::max(d.max_abs, std::abs(e));
    se += e * e;
    sr += double{want[i]} * want[i];
  }
  d.rel_rms = std::sqrt(se / std::max(sr, 1e-30));
  return d;
}

// Logits [tokens][n_vocab] of one fresh context with `options`, the tokens fed all at once or
// one per Decode call (`incremental`, the decode path). Inline: some users of this file (the
// CLI and media tests) do not link the model library.
inline std::vector<float> ContextLogits(const Model& model, const ContextOptions& options,
                                        const std::vector<int32_t>& tokens, bool incremental) {
  Context ctx(model, options);
  const size_t V = static_cast<size_t>(model.config().n_vocab);
  std::vector<float> logits(tokens.size() * V);
  if (incremental) {
    for (size_t i = 0; i < tokens.size(); ++i) {
      ctx.Decode(std::span<const int32_t>(&tokens[i], 1), &logits[i * V], true);
    }
  } else {
    ctx.Decode(tokens, logits.data(), true);
  }
  return logits;
}

double LogSumExp(const float* logits, int n);
int ArgMax(const float* logits, int n);  // lowest id wins ties

}  // namespace hearth::model::testing
