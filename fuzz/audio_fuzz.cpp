// Any byte string given to the audio decoder (libsndfile: WAV, FLAC, Ogg, MP3, ...) either
// decodes to finite 16 kHz samples or raises hearth::Error; nothing else. The log-mel features of
// what decodes are computed too (short prefix: bounded time per input).
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "audio/audio.h"
#include "base/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const std::vector<float> pcm = hearth::audio::DecodeBytes({data, size}, "fuzz");
    for (float x : pcm) {
      if (!std::isfinite(x)) std::abort();
    }
    const size_t n = std::min<size_t>(pcm.size(), 8000);
    const auto mel = hearth::audio::LogMel(std::span<const float>(pcm).first(n), 32);
    for (float x : mel.data) {
      if (!std::isfinite(x)) std::abort();
    }
  } catch (const hearth::Error&) {
  }
  return 0;
}
