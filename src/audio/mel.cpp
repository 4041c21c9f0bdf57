// Log-mel features as llama.cpp's gemma4a preprocessor computes them (spec §5.2): a 320-sample
// periodic Hann window left-aligned in a 512-point frame, hop 160, magnitude spectrum (FFTW,
// double precision), HTK mel filterbank without area normalisation, natural log floored at 1e-3.
#include <fftw3.h>

#include <cmath>
#include <mutex>
#include <numbers>

#include "audio/audio.h"
#include "base/error.h"

namespace hearth::audio {
namespace {

constexpr int kFft = 512;
constexpr int kBins = kFft / 2 + 1;
constexpr int kWindow = 320;
constexpr int kHop = 160;

// FFTW's planner is not thread-safe; plans are made and destroyed under this lock.
std::mutex& PlannerMutex() {
  static std::mutex mutex;
  return mutex;
}

// n_mel triangles over the 257 FFT bins (HTK mel scale, 0..8000 Hz), computed in double and
// stored as float like the reference.
std::vector<float> MelFilterbank(int n_mel) {
  auto to_mel = [](double f) { return 2595.0 * std::log10(1.0 + f / 700.0); };
  auto to_hz = [](double m) { return 700.0 * (std::pow(10.0, m / 2595.0) - 1.0); };
  const double mel_lo = to_mel(0.0);
  const double mel_hi = to_mel(kSampleRate / 2.0);
  std::vector<double> corners(static_cast<size_t>(n_mel) + 2);
  for (int i = 0; i < n_mel + 2; ++i) {
    corners[i] = to_hz(mel_lo + (mel_hi - mel_lo) * i / (n_mel + 1));
  }
  std::vector<float> fb(static_cast<size_t>(n_mel) * kBins, 0.0F);
  for (int m = 0; m < n_mel; ++m) {
    const double lo = corners[m];
    const double mid = corners[m + 1];
    const double hi = corners[m + 2];
    for (int b = 0; b < kBins; ++b) {
      const double f = static_cast<double>(b) * kSampleRate / kFft;
      double w = 0;
      if (f >= lo && f <= mid) {
        w = (f - lo) / (mid - lo);
      } else if (f > mid && f <= hi) {
        w = (hi - f) / (hi - mid);
      }
      fb[static_cast<size_t>(m) * kBins + b] = static_cast<float>(w);
    }
  }
  return fb;
}

}  // namespace

Mel LogMel(std::span<const float> samples, int n_mel) {
  if (n_mel < 1 || n_mel > 256) {
    ThrowInvalidInput("mel bin count out of range (1..256)");
  }
  const auto n = static_cast<int64_t>(samples.size());
  Mel mel;
  mel.n_mel = n_mel;
  const int64_t frames = (n + kHop - (kWindow + 1)) / kHop + 1;  // C division, as the reference
  if (frames < 1) {
    return mel;
  }
  mel.frames = static_cast<int>(frames);
  mel.data.assign(static_cast<size_t>(n_mel) * frames, 0.0F);

  std::vector<float> window(kWindow);
  for (int j = 0; j < kWindow; ++j) {
    window[j] = 0.5F - 0.5F * std::cos(2.0F * std::numbers::pi_v<float> * j / kWindow);
  }
  const std::vector<float> fb = MelFilterbank(n_mel);

  double* in = fftw_alloc_real(kFft);
  fftw_complex* out = fftw_alloc_complex(kBins);
  fftw_plan plan = nullptr;
  {
    std::lock_guard<std::mutex> lock(PlannerMutex());
    plan = fftw_plan_dft_r2c_1d(kFft, in, out, FFTW_ESTIMATE);
  }
  std::vector<float> mag(kBins);
  for (int64_t t = 0; t < frames; ++t) {
    // Frame t covers samples [160t - 160, 160t + 352) of the clip (160 zeros in front).
    for (int j = 0; j < kFft; ++j) {
      const int64_t src = t * kHop + j - kHop;
      const float x = (j < kWindow && src >= 0 && src < n) ? samples[src] : 0.0F;
      in[j] = static_cast<double>(x * (j < kWindow ? window[j] : 0.0F));
    }
    fftw_execute(plan);
    for (int b = 0; b < kBins; ++b) {
      mag[b] = static_cast<float>(std::sqrt(out[b][0] * out[b][0] + out[b][1] * out[b][1]));
    }
    for (int m = 0; m < n_mel; ++m) {
      const float* row = fb.data() + static_cast<size_t>(m) * kBins;
      double sum = 0;
      for (int b = 0; b < kBins; ++b) {
        sum += static_cast<double>(mag[b] * row[b]);
      }
      mel.data[static_cast<size_t>(m) * frames + t] =
          static_cast<float>(std::log(std::max(sum, 0.001)));
    }
  }
  {
    std::lock_guard<std::mutex> lock(PlannerMutex());
    fftw_destroy_plan(plan);
  }
  fftw_free(in);
  fftw_free(out);
  return mel;
}

int TokensForFrames(int frames) {
  if (frames < 1) {
    return 0;
  }
  const int t1 = (frames - 1) / 2 + 1;
  return (t1 - 1) / 2 + 1;
}

}  // namespace hearth::audio
