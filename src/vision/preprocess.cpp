// llama.cpp's gemma4v preprocessing (spec §3.2-3.5): the canvas for a token budget, computed in
// float32 like llama.cpp (a double version can flip a floor/ceil), Pillow's fixed-point bicubic
// resampler, the aspect-preserving fit on black, and normalisation to planar floats.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "base/error.h"
#include "vision/vision.h"

namespace hearth::vision {

bool IsTokenBudget(int tokens) {
  return std::find(kTokenBudgets.begin(), kTokenBudgets.end(), tokens) != kTokenBudgets.end();
}

Canvas CanvasFor(int width, int height, int align, int min_tokens, int max_tokens) {
  const auto a = static_cast<float>(align);
  const auto w = static_cast<float>(width);
  const auto h = static_cast<float>(height);
  const int64_t min_px = int64_t{min_tokens} * align * align;
  const int64_t max_px = int64_t{max_tokens} * align * align;
  // Nearest multiple of the alignment first; only one of the two corrections runs.
  int wb = std::max(align, static_cast<int>(std::round(w / a)) * align);
  int hb = std::max(align, static_cast<int>(std::round(h / a)) * align);
  if (int64_t{wb} * hb > max_px) {
    const float beta = std::sqrt(h * w / static_cast<float>(max_px));
    hb = std::max(align, static_cast<int>(std::floor((h / beta) / a)) * align);
    wb = std::max(align, static_cast<int>(std::floor((w / beta) / a)) * align);
  } else if (int64_t{wb} * hb < min_px) {
    const float beta = std::sqrt(static_cast<float>(min_px) / (h * w));
    hb = static_cast<int>(std::ceil((h * beta) / a)) * align;
    wb = static_cast<int>(std::ceil((w * beta) / a)) * align;
  }
  return {wb, hb, (wb / align) * (hb / align)};
}

namespace {

constexpr int kPrecisionBits = 32 - 8 - 2;

double Cubic(double x) {
  constexpr double a = -0.5;
  x = std::abs(x);
  if (x < 1.0) {
    return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  }
  if (x < 2.0) {
    return (((x - 5) * x + 8) * x - 4) * a;
  }
  return 0.0;
}

// Pillow's precompute_coeffs + normalize_coeffs_8bpc for one dimension: per output index the
// first input index, the tap count and the fixed-point weights (ksize per output).
struct Coeffs {
  int ksize = 0;
  std::vector<int> first, count;
  std::vector<int32_t> weights;
};

Coeffs Precompute(int in, int out) {
  const double scale = static_cast<double>(in) / out;
  const double fs = std::max(scale, 1.0);
  const double support = 2.0 * fs;
  Coeffs c;
  c.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  c.first.resize(static_cast<size_t>(out));
  c.count.resize(static_cast<size_t>(out));
  c.weights.assign(static_cast<size_t>(out) * static_cast<size_t>(c.ksize), 0);
  std::vector<double> w(static_cast<size_t>(c.ksize));
  for (int i = 0; i < out; ++i) {
    const double center = (i + 0.5) * scale;
    const int xmin = std::max(0, static_cast<int>(center - support + 0.5));
    const int xmax = std::min(in, static_cast<int>(center + support + 0.5));
    const int n = std::min(xmax - xmin, c.ksize);
    double sum = 0;
    for (int j = 0; j < n; ++j) {
      w[static_cast<size_t>(j)] = Cubic((j + xmin - center + 0.5) / fs);
      sum += w[static_cast<size_t>(j)];
    }
    for (int j = 0; j < n; ++j) {
      double v = w[static_cast<size_t>(j)];
      if (sum != 0.0) {
        v /= sum;
      }
      c.weights[static_cast<size_t>(i) * static_cast<size_t>(c.ksize) + static_cast<size_t>(j)] =
          static_cast<int32_t>(v * (1 << kPrecisionBits) + (v < 0 ? -0.5 : 0.5));
    }
    c.first[static_cast<size_t>(i)] = xmin;
    c.count[static_cast<size_t>(i)] = n;
  }
  return c;
}

uint8_t Clip8(int32_t acc) {
  return static_cast<uint8_t>(std::clamp(acc >> kPrecisionBits, 0, 255));
}

Image Horizontal(const Image& in, int out_w) {
  const Coeffs c = Precompute(in.width, out_w);
  Image out{out_w, in.height, std::vector<uint8_t>(size_t(out_w) * size_t(in.height) * 3)};
  for (int y = 0; y < in.height; ++y) {
    const uint8_t* src = in.rgb.data() + size_t(y) * size_t(in.width) * 3;
    uint8_t* dst = out.rgb.data() + size_t(y) * size_t(out_w) * 3;
    for (int x = 0; x < out_w; ++x) {
      const int32_t* k = c.weights.data() + size_t(x) * size_t(c.ksize);
      const int first = c.first[size_t(x)];
      for (int ch = 0; ch < 3; ++ch) {
        int32_t acc = 1 << (kPrecisionBits - 1);
        for (int j = 0; j < c.count[size_t(x)]; ++j) {
          acc += src[size_t(first + j) * 3 + size_t(ch)] * k[j];
        }
        dst[size_t(x) * 3 + size_t(ch)] = Clip8(acc);
      }
    }
  }
  return out;
}

Image Vertical(const Image& in, int out_h) {
  const Coeffs c = Precompute(in.height, out_h);
  const size_t stride = size_t(in.width) * 3;
  Image out{in.width, out_h, std::vector<uint8_t>(size_t(out_h) * stride)};
  for (int y = 0; y < out_h; ++y) {
    const int32_t* k = c.weights.data() + size_t(y) * size_t(c.ksize);
    const int first = c.first[size_t(y)];
    uint8_t* dst = out.rgb.data() + size_t(y) * stride;
    for (size_t i = 0; i < stride; ++i) {
      int32_t acc = 1 << (kPrecisionBits - 1);
      for (int j = 0; j < c.count[size_t(y)]; ++j) {
        acc += in.rgb[size_t(first + j) * stride + i] * k[j];
      }
      dst[i] = Clip8(acc);
    }
  }
  return out;
}

}  // namespace

Image Resize(const Image& image, int width, int height) {
  if (width < 1 || height < 1 || image.width < 1 || image.height < 1) {
    ThrowInvalidInput("cannot resize an image to " + std::to_string(width) + "x" +
                      std::to_string(height));
  }
  Image out = image.width != width ? Horizontal(image, width) : image;
  if (out.height != height) {
    out = Vertical(out, height);
  }
  return out;
}

Image FitAndPad(const Image& image, int width, int height) {
  if (image.width == width && image.height == height) {
    return image;
  }
  const float s = std::min(static_cast<float>(width) / static_cast<float>(image.width),
                           static_cast<float>(height) / static_cast<float>(image.height));
  const int nw = std::min(static_cast<int>(std::ceil(static_cast<float>(image.width) * s)), width);
  const int nh =
      std::min(static_cast<int>(std::ceil(static_cast<float>(image.height) * s)), height);
  const Image fitted = Resize(image, std::max(nw, 1), std::max(nh, 1));
  Image out{width, height, std::vector<uint8_t>(size_t(width) * size_t(height) * 3, 0)};
  const int x0 = (width - fitted.width) / 2;
  const int y0 = (height - fitted.height) / 2;
  for (int y = 0; y < fitted.height; ++y) {
    std::memcpy(out.rgb.data() + (size_t(y0 + y) * size_t(width) + size_t(x0)) * 3,
                fitted.rgb.data() + size_t(y) * size_t(fitted.width) * 3, size_t(fitted.width) * 3);
  }
  return out;
}

Pixels Normalize(const Image& image, const std::array<float, 3>& mean,
                 const std::array<float, 3>& std) {
  Pixels p{image.width, image.height, {}};
  const size_t plane = size_t(image.width) * size_t(image.height);
  p.data.resize(plane * 3);
  for (size_t i = 0; i < plane; ++i) {
    for (size_t c = 0; c < 3; ++c) {
      const float v = static_cast<float>(image.rgb[i * 3 + c]) / 255.0F;
      p.data[c * plane + i] = (v - mean[c]) / std[c];
    }
  }
  return p;
}

}  // namespace hearth::vision
