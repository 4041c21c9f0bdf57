// Decoding (libsndfile reads WAV, FLAC, Ogg/Vorbis/Opus and MP3 from memory through its virtual
// I/O), down-mixing, resampling (libsoxr) and splitting a clip into pieces.
#include <sndfile.h>
#include <soxr.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>

#include "audio/audio.h"
#include "base/error.h"

namespace hearth::audio {
namespace {

static_assert(std::endian::native == std::endian::little, "EncodeWav writes host floats");

// The longest clip hearth decodes (4 hours at 16 kHz): a bound on memory for hostile headers.
constexpr int64_t kMaxOutputSamples = int64_t{4} * 3600 * kSampleRate;

struct MemoryStream {
  std::span<const uint8_t> bytes;
  sf_count_t pos = 0;
};

sf_count_t VioLength(void* user) {
  return static_cast<sf_count_t>(static_cast<MemoryStream*>(user)->bytes.size());
}
sf_count_t VioSeek(sf_count_t offset, int whence, void* user) {
  auto* s = static_cast<MemoryStream*>(user);
  const auto size = static_cast<sf_count_t>(s->bytes.size());
  sf_count_t base = 0;
  if (whence == SEEK_CUR) {
    base = s->pos;
  }
  if (whence == SEEK_END) {
    base = size;
  }
  const sf_count_t target = base + offset;
  if (target < 0 || target > size) {
    return -1;
  }
  s->pos = target;
  return s->pos;
}
sf_count_t VioRead(void* ptr, sf_count_t count, void* user) {
  auto* s = static_cast<MemoryStream*>(user);
  const auto size = static_cast<sf_count_t>(s->bytes.size());
  const sf_count_t n = std::clamp<sf_count_t>(size - s->pos, 0, std::max<sf_count_t>(count, 0));
  if (n > 0) {
    std::memcpy(ptr, s->bytes.data() + s->pos, static_cast<size_t>(n));
  }
  s->pos += n;
  return n;
}
sf_count_t VioWrite(const void* /*ptr*/, sf_count_t /*count*/, void* /*user*/) { return 0; }
sf_count_t VioTell(void* user) { return static_cast<MemoryStream*>(user)->pos; }

[[noreturn]] void Corrupt(std::string_view name, const std::string& why) {
  ThrowInvalidInput("cannot decode audio '" + std::string(name) + "': " + why,
                    "give a WAV, FLAC, Ogg/Opus or MP3 file");
}

struct SndFileCloser {
  void operator()(SNDFILE* f) const { sf_close(f); }
};

// Reads every frame as float, channels averaged. libsndfile scales 16-bit PCM by 1/32768.
std::vector<float> ReadMono(SNDFILE* file, const SF_INFO& info, std::string_view name) {
  const int channels = info.channels;
  std::vector<float> mono;
  std::vector<float> block(static_cast<size_t>(4096) * static_cast<size_t>(channels));
  const double max_input = static_cast<double>(kMaxOutputSamples) *
                           std::max(1.0, static_cast<double>(info.samplerate) / kSampleRate);
  while (true) {
    const sf_count_t got = sf_readf_float(file, block.data(), 4096);
    if (got <= 0) {
      break;
    }
    for (sf_count_t i = 0; i < got; ++i) {
      const float* frame = block.data() + i * channels;
      if (channels == 1) {
        mono.push_back(frame[0]);
        continue;
      }
      double sum = 0;
      for (int c = 0; c < channels; ++c) {
        sum += frame[c];
      }
      mono.push_back(static_cast<float>(sum / channels));
    }
    if (static_cast<double>(mono.size()) > max_input) {
      Corrupt(name, "longer than 4 hours");
    }
  }
  if (sf_error(file) != SF_ERR_NO_ERROR) {
    Corrupt(name, sf_strerror(file));
  }
  for (float& x : mono) {
    if (!std::isfinite(x)) {
      x = 0;  // float files may hold NaN/inf; they would poison the encoder
    }
  }
  return mono;
}

}  // namespace

std::vector<float> DecodeBytes(std::span<const uint8_t> bytes, std::string_view name) {
  if (bytes.empty()) {
    Corrupt(name, "the file is empty");
  }
  MemoryStream stream{bytes, 0};
  SF_VIRTUAL_IO vio{VioLength, VioSeek, VioRead, VioWrite, VioTell};
  SF_INFO info{};
  std::unique_ptr<SNDFILE, SndFileCloser> file(sf_open_virtual(&vio, SFM_READ, &info, &stream));
  if (!file) {
    Corrupt(name, sf_strerror(nullptr));
  }
  if (info.channels < 1 || info.channels > 64) {
    Corrupt(name, "unsupported channel count");
  }
  if (info.samplerate < 1000 || info.samplerate > 768000) {
    Corrupt(name, "unsupported sample rate " + std::to_string(info.samplerate) + " Hz");
  }
  std::vector<float> mono = ReadMono(file.get(), info, name);
  if (mono.empty()) {
    Corrupt(name, "no audio samples");
  }
  if (info.samplerate == kSampleRate) {
    return mono;
  }
  std::vector<float> out = Resample(mono, info.samplerate);
  if (out.empty()) {
    Corrupt(name, "too short to resample");
  }
  return out;
}

std::vector<float> DecodeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    ThrowIo("cannot open audio file '" + path + "'", "check the path");
  }
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                             std::istreambuf_iterator<char>());
  if (in.bad()) {
    ThrowIo("cannot read audio file '" + path + "'");
  }
  return DecodeBytes(bytes, path);
}

std::string EncodeWav(std::span<const float> samples) {
  std::string out;
  auto put = [&out](uint32_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) {
      out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
    }
  };
  const auto data_bytes = static_cast<uint32_t>(samples.size() * sizeof(float));
  out += "RIFF";
  put(36 + data_bytes, 4);
  out += "WAVEfmt ";
  put(16, 4);
  put(3, 2);  // IEEE float
  put(1, 2);  // mono
  put(kSampleRate, 4);
  put(kSampleRate * 4, 4);
  put(4, 2);
  put(32, 2);
  out += "data";
  put(data_bytes, 4);
  const size_t at = out.size();
  out.resize(at + data_bytes);
  std::memcpy(out.data() + at, samples.data(), data_bytes);
  return out;
}

std::vector<float> Resample(std::span<const float> samples, double rate) {
  if (rate == kSampleRate) {
    return {samples.begin(), samples.end()};
  }
  const double ratio = kSampleRate / rate;
  const auto out_len = static_cast<size_t>(std::ceil(static_cast<double>(samples.size()) * ratio));
  std::vector<float> out(out_len + 16);
  size_t done = 0;
  const soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
  const soxr_quality_spec_t quality = soxr_quality_spec(SOXR_HQ, 0);
  const soxr_error_t err =
      soxr_oneshot(rate, kSampleRate, 1, samples.data(), samples.size(), nullptr, out.data(),
                   out.size(), &done, &io, &quality, nullptr);
  if (err != nullptr) {
    ThrowInvalidInput(std::string("cannot resample audio: ") + err);
  }
  out.resize(std::min(done, out_len));
  return out;
}

std::vector<Piece> SplitAtSilence(std::span<const float> samples, int64_t max_samples) {
  const auto n = static_cast<int64_t>(samples.size());
  std::vector<Piece> pieces;
  constexpr int64_t kWindow = kSampleRate / 50;          // 20 ms
  constexpr int64_t kSearch = int64_t{5} * kSampleRate;  // look back at most 5 s for a pause
  const double silence = std::pow(10.0, -50.0 / 20.0);
  int64_t begin = 0;
  while (n - begin > max_samples) {
    int64_t cut = begin + max_samples;
    double best = std::numeric_limits<double>::infinity();
    int64_t best_cut = cut;
    const int64_t lo = std::max(begin + max_samples / 2, cut - kSearch);
    for (int64_t w = cut - kWindow; w >= lo; w -= kWindow) {
      double energy = 0;
      for (int64_t i = w; i < w + kWindow; ++i) {
        energy += double{samples[i]} * samples[i];
      }
      const double rms = std::sqrt(energy / kWindow);
      if (rms < best) {
        best = rms;
        best_cut = w + kWindow / 2;
      }
    }
    if (best < silence) {
      cut = best_cut;
    }
    pieces.push_back({begin, cut});
    begin = cut;
  }
  if (n > begin) {
    pieces.push_back({begin, n});
  }
  return pieces;
}

std::vector<Piece> SplitClip(std::span<const float> samples, Split split) {
  if (split == Split::kAtSilence) {
    return SplitAtSilence(samples);
  }
  std::vector<Piece> pieces;
  const auto n = static_cast<int64_t>(samples.size());
  for (int64_t begin = 0; begin < n; begin += kMaxPieceSamples) {
    pieces.push_back({begin, std::min(n, begin + kMaxPieceSamples)});
  }
  return pieces;
}

}  // namespace hearth::audio
