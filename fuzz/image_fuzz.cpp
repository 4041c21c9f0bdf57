// Any byte string given to the image decoder (PNG, JPEG, WebP, GIF, BMP, with EXIF orientation)
// either decodes to an image of the announced size or raises hearth::Error; nothing else. What
// decodes is also fitted into a small canvas (the resampler sees odd sizes). The pixel cap is
// low so one input cannot take long or use much memory.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "base/error.h"
#include "vision/vision.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const hearth::vision::Image img = hearth::vision::DecodeBytes({data, size}, "fuzz", 1 << 20);
    if (img.width < 1 || img.height < 1 ||
        img.rgb.size() != static_cast<size_t>(img.width) * static_cast<size_t>(img.height) * 3) {
      std::abort();
    }
    const hearth::vision::Canvas c = hearth::vision::CanvasFor(img.width, img.height, 12, 4, 16);
    const hearth::vision::Image fitted = hearth::vision::FitAndPad(img, c.width, c.height);
    if (fitted.rgb.size() != static_cast<size_t>(c.width) * static_cast<size_t>(c.height) * 3) {
      std::abort();
    }
  } catch (const hearth::Error&) {
  }
  return 0;
}
