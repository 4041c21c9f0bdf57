// Any byte string given to the GGUF reader either parses or raises hearth::Error; nothing else.
// Files that parse are also given to the adapter readers (LoRA adapter, control vector, the
// `hearth info` description) against a small base model, and an adapter that loads is applied in
// a two-token forward pass, which must never read outside the adapter file.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "base/error.h"
#include "gguf/gguf.h"
#include "model/adapters.h"
#include "model/model.h"

namespace {

// The base the adapters are validated against: the model fuzzer's dense seed (two layers), which
// the adapter seeds in fuzz/seeds/gguf_fuzz were made for.
const hearth::model::Model* Base() {
  static const std::unique_ptr<hearth::model::Model> base = [] {
    try {
      return hearth::model::Model::Load(HEARTH_FUZZ_BASE_MODEL);
    } catch (const hearth::Error&) {
      return std::unique_ptr<hearth::model::Model>();
    }
  }();
  return base.get();
}

hearth::gguf::File Parse(const uint8_t* data, size_t size) {
  return hearth::gguf::File::Parse(
      hearth::MappedFile::FromBytes(std::span<const uint8_t>(data, size), "fuzz.gguf"));
}

void Decode(const hearth::model::Model& model,
            std::shared_ptr<const hearth::model::AdapterSet> set) {
  hearth::model::ContextOptions opt;
  opt.n_ctx = 4;
  opt.n_threads = 1;
  opt.adapters = std::move(set);
  hearth::model::Context ctx(model, opt);
  const int n_vocab = model.config().n_vocab;
  const int32_t tokens[2] = {0, n_vocab - 1};
  std::vector<float> logits(2 * static_cast<size_t>(n_vocab));
  ctx.Decode(tokens, logits.data(), true);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    auto file = Parse(data, size);
    // Touch what a loader touches: metadata getters and every tensor's bytes.
    for (const auto& [key, value] : file.metadata()) (void)value.Describe();
    (void)file.GetStringArray("tokenizer.ggml.tokens");
    volatile uint8_t sink = 0;
    for (const auto& t : file.tensors()) {
      if (t.n_bytes > 0) sink = sink ^ t.data[0] ^ t.data[t.n_bytes - 1];
    }
    (void)hearth::model::DescribeAdapterFile(file);
  } catch (const hearth::Error&) {
    return 0;
  }
  const hearth::model::Model* base = Base();
  if (base == nullptr) return 0;
  try {
    auto lora = hearth::model::LoraAdapter::FromFile(Parse(data, size), *base);
    Decode(*base, hearth::model::AdapterSet::Make(*base, {{lora, 0.5f}}, {}));
  } catch (const hearth::Error&) {
  }
  try {
    auto cvec = hearth::model::ControlVector::FromFile(Parse(data, size), *base);
    Decode(*base, hearth::model::AdapterSet::Make(*base, {}, {{cvec, 1.0f}}));
  } catch (const hearth::Error&) {
  }
  return 0;
}
