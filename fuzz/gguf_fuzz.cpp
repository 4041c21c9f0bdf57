// Any byte string given to the GGUF reader either parses or raises hearth::Error; nothing else.
#include <cstddef>
#include <cstdint>

#include "base/error.h"
#include "gguf/gguf.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    auto file = hearth::gguf::File::Parse(hearth::MappedFile::FromBytes({data, size}, "fuzz"));
    // Touch what a loader touches: metadata getters and every tensor's bytes.
    for (const auto& [key, value] : file.metadata()) (void)value.Describe();
    (void)file.GetStringArray("tokenizer.ggml.tokens");
    volatile uint8_t sink = 0;
    for (const auto& t : file.tensors()) {
      if (t.n_bytes > 0) sink = sink ^ t.data[0] ^ t.data[t.n_bytes - 1];
    }
  } catch (const hearth::Error&) {
  }
  return 0;
}
