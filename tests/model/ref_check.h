// Reading the llama.cpp / exact-math reference files (../shared/fixtures/refs/README.md §4) and
// the statistics of §7 used to compare an engine's logits with them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "gguf/gguf.h"

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
  double max_abs = 0;   // over the stored ids and the lse
  double kl = 0;        // lower bound of KL(ref || engine) from the top-20 + rest mass
  bool argmax_same = true;
  double ref_margin = 0;  // top1 - top2 of the reference
};
RowStats CompareRow(const RefRow& ref, const float* logits, int n_vocab);

double LogSumExp(const float* logits, int n);
int ArgMax(const float* logits, int n);  // lowest id wins ties

}  // namespace hearth::model::testing
