// Encode/decode with the real Gemma 4 vocabulary on arbitrary bytes. Byte 0 picks the flags,
// the rest is the text. Checks: every id is in range; valid UTF-8 without U+2581 round-trips
// exactly; the streaming decoder's pieces concatenate to Decode; arbitrary id lists decode
// or raise hearth::Error, nothing else.
// The vocabulary comes from $HEARTH_FUZZ_VOCAB, else ../shared/fixtures/tokenizer/
// gemma-4-vocab.gguf relative to the working directory (scripts/fuzz.sh runs from the repo root).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "base/error.h"
#include "text/tokenizer.h"

namespace {

const hearth::text::Tokenizer& Vocab() {
  static const hearth::text::Tokenizer* tokenizer = [] {
    const char* env = std::getenv("HEARTH_FUZZ_VOCAB");
    std::string path = env ? env : "../shared/fixtures/tokenizer/gemma-4-vocab.gguf";
    try {
      return new hearth::text::Tokenizer(hearth::text::Tokenizer::Load(path));
    } catch (const hearth::Error& e) {
      std::fprintf(stderr, "tokenizer_fuzz: cannot load %s: %s\n", path.c_str(), e.what());
      std::abort();
    }
  }();
  return *tokenizer;
}

bool ValidUtf8WithoutSpaceMark(std::string_view s) {
  if (s.find("\xE2\x96\x81") != std::string_view::npos) return false;
  for (size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    size_t len;
    uint32_t cp;
    if (c < 0x80) {
      len = 1, cp = c;
    } else if ((c & 0xE0) == 0xC0) {
      len = 2, cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3, cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4, cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > s.size()) return false;
    for (size_t k = 1; k < len; ++k) {
      auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    static const uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const auto& t = Vocab();
  const bool parse_special = data[0] & 1;
  const bool add_bos = data[0] & 2;
  std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);

  std::vector<hearth::text::TokenId> ids = t.Encode(text, add_bos, parse_special);
  for (auto id : ids) {
    if (id < 0 || id >= t.size()) std::abort();
  }
  std::vector<hearth::text::TokenId> body(ids.begin() + (add_bos ? 1 : 0), ids.end());
  std::string decoded = t.Decode(body, true);
  if (ValidUtf8WithoutSpaceMark(text) && decoded != text) std::abort();

  hearth::text::StreamDecoder stream(t, true);
  std::string streamed;
  for (auto id : ids) streamed += stream.Push(id);
  streamed += stream.Finish();
  if (streamed != t.Decode(ids, true)) std::abort();

  // The same bytes read as ids: decode or a clean error.
  std::vector<hearth::text::TokenId> raw;
  for (size_t i = 1; i + 3 < size; i += 4) {
    int32_t v;
    __builtin_memcpy(&v, data + i, 4);
    raw.push_back(v % (t.size() + 16));  // mostly valid, sometimes out of range or negative
  }
  try {
    (void)t.Decode(raw, data[0] & 4);
  } catch (const hearth::Error&) {
  }
  return 0;
}
