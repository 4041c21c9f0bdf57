// Any byte string given to the video decoder (FFmpeg's demuxers and decoders, sampled at 4 fps)
// either yields frames of a sane size or raises hearth::Error; nothing else. The pixel cap is low
// so one input cannot take long or use much memory.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "base/error.h"
#include "vision/vision.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    hearth::vision::DecodeVideo(
        {data, size}, "fuzz", 4,
        [](const hearth::vision::Image& img, double t) {
          if (img.width < 1 || img.height < 1 || int64_t{img.width} * img.height > (1 << 16) ||
              img.rgb.size() != static_cast<size_t>(img.width) * img.height * 3 || t < 0 ||
              t >= hearth::vision::kMaxVideoSeconds) {
            std::abort();
          }
        },
        1 << 16);
  } catch (const hearth::Error&) {
  }
  return 0;
}
