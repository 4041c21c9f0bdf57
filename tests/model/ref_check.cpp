#include "ref_check.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <stdexcept>

namespace hearth::model::testing {

std::string FixturesDir() { return std::string(HEARTH_SHARED_DIR) + "/fixtures"; }

std::vector<std::string> AllFixtureFiles() {
  namespace fs = std::filesystem;
  std::vector<std::string> out;
  const fs::path models = FixturesDir() + "/models";
  if (!fs::exists(models)) return out;
  for (const auto& e : fs::directory_iterator(models)) {
    const std::string name = e.path().filename().string();
    const std::string suffix = ".gguf";
    if (name.size() <= suffix.size() || name.substr(name.size() - suffix.size()) != suffix) continue;
    const std::string stem = name.substr(0, name.size() - suffix.size());
    if (fs::exists(FixturesDir() + "/refs/" + stem + ".ref.gguf")) out.push_back(stem);
  }
  std::sort(out.begin(), out.end());
  return out;
}

RefFile::RefFile(const std::string& path) : file_(gguf::File::Open(path)) {
  n_vocab_ = static_cast<int>(file_.RequireInt("ref.n_vocab"));
}

std::vector<std::string> RefFile::sequences() const {
  std::vector<std::string> out;
  if (const auto* s = file_.GetStringArray("ref.sequences")) {
    for (auto v : *s) out.emplace_back(v);
  }
  return out;
}

std::string RefFile::weight_type() const {
  return std::string(file_.RequireString("ref.model_weight_type"));
}

const gguf::TensorInfo& RefFile::Tensor(const std::string& name, uint32_t type) const {
  const gguf::TensorInfo* t = file_.FindTensor(name);
  if (!t) throw std::runtime_error("reference tensor '" + name + "' is missing");
  if (t->type_id != type) throw std::runtime_error("reference tensor '" + name + "' has a wrong type");
  return *t;
}

std::vector<int32_t> RefFile::Ints(const std::string& name) const {
  const auto& t = Tensor(name, static_cast<uint32_t>(gguf::TensorType::kI32));
  std::vector<int32_t> v(t.n_elements());
  std::memcpy(v.data(), t.data, v.size() * sizeof(int32_t));
  return v;
}

std::vector<float> RefFile::Floats(const std::string& name) const {
  const auto& t = Tensor(name, static_cast<uint32_t>(gguf::TensorType::kF32));
  std::vector<float> v(t.n_elements());
  std::memcpy(v.data(), t.data, v.size() * sizeof(float));
  return v;
}

std::vector<RefRow> RefFile::Rows(const std::string& prefix) const {
  const std::vector<int32_t> ids = Ints(prefix + ".top_ids");
  const std::vector<float> logits = Floats(prefix + ".top_logits");
  const std::vector<float> lse = Floats(prefix + ".lse");
  const size_t k = ids.size() / lse.size();
  std::vector<RefRow> rows(lse.size());
  for (size_t r = 0; r < rows.size(); ++r) {
    rows[r].ids.assign(ids.begin() + r * k, ids.begin() + (r + 1) * k);
    rows[r].logits.assign(logits.begin() + r * k, logits.begin() + (r + 1) * k);
    rows[r].lse = lse[r];
  }
  return rows;
}

double LogSumExp(const float* logits, int n) {
  const float mx = *std::max_element(logits, logits + n);
  double s = 0;
  for (int i = 0; i < n; ++i) s += std::exp(static_cast<double>(logits[i]) - mx);
  return mx + std::log(s);
}

int ArgMax(const float* logits, int n) {
  return static_cast<int>(std::max_element(logits, logits + n) - logits);
}

RowStats CompareRow(const RefRow& ref, const float* logits, int n_vocab) {
  RowStats st;
  const double lse = LogSumExp(logits, n_vocab);
  st.max_abs = std::abs(lse - ref.lse);
  double p_ref_sum = 0, p_eng_sum = 0, kl = 0;
  for (size_t i = 0; i < ref.ids.size(); ++i) {
    const double eng = logits[ref.ids[i]];
    st.max_abs = std::max(st.max_abs, std::abs(eng - ref.logits[i]));
    const double pr = std::exp(ref.logits[i] - static_cast<double>(ref.lse));
    const double pe = std::exp(eng - lse);
    p_ref_sum += pr;
    p_eng_sum += pe;
    if (pr > 0) kl += pr * std::log(pr / std::max(pe, 1e-300));
  }
  const double r = 1 - p_ref_sum, e = 1 - p_eng_sum;
  if (r > 1e-12) kl += r * std::log(r / std::max(e, 1e-12));
  st.kl = std::max(kl, 0.0);
  st.ref_margin = ref.logits.size() > 1 ? ref.logits[0] - ref.logits[1] : 1e9;
  st.argmax_same = ArgMax(logits, n_vocab) == ref.ids[0];
  return st;
}

}  // namespace hearth::model::testing
