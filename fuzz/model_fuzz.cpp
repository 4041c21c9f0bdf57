// Fuzzes what a model file can make the model layer do: GGUF parsing, the gemma4 configuration
// (every key validated), weight binding (every shape and type checked), and — for files that
// pass — a two-token forward pass in a tiny context, which must never read outside the file.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "base/error.h"
#include "base/mapped_file.h"
#include "gguf/gguf.h"
#include "model/model.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    auto file = hearth::gguf::File::Parse(
        hearth::MappedFile::FromBytes(std::span<const uint8_t>(data, size), "fuzz.gguf"));
    auto model = hearth::model::Model::FromFile(std::move(file));
    const auto& c = model->config();
    // Keep each run small: the forward pass costs about n_layer * n_embd^2 per token.
    if (static_cast<int64_t>(c.n_layer) * c.n_embd * c.n_embd > (int64_t{1} << 22) ||
        c.n_vocab > (1 << 16)) {
      return 0;
    }
    hearth::model::ContextOptions opt;
    opt.n_ctx = 4;
    opt.n_threads = 1;
    opt.precise = (size & 1) != 0;
    hearth::model::Context ctx(*model, opt);
    const int32_t tokens[2] = {0, c.n_vocab - 1};
    std::vector<float> logits(2 * static_cast<size_t>(c.n_vocab));
    ctx.Decode(tokens, logits.data(), true);
  } catch (const hearth::Error&) {
    // Rejected cleanly: the expected outcome for almost every input.
  }
  return 0;
}
