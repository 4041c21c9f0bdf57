// The audio layer against llama.cpp's references (../shared/fixtures/multimodal/README.md §6,
// tolerances of §7.4): decoded PCM, log-mel features, the conformer's intermediates and
// embeddings, and long clips split into 30 s pieces.
#include "audio/audio.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <numbers>
#include <string>
#include <vector>

#include "../model/ref_check.h"
#include "base/error.h"
#include "gguf/gguf.h"

namespace hearth::audio {
namespace {

std::string Dir() { return std::string(HEARTH_SHARED_DIR) + "/fixtures/multimodal/"; }

std::vector<uint8_t> ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

class Ref {
 public:
  explicit Ref(const std::string& stem)
      : file_(gguf::File::Open(Dir() + "refs/" + stem + ".audio.ref.gguf")) {}
  bool Has(const std::string& name) const { return file_.FindTensor(name) != nullptr; }
  std::vector<float> Floats(const std::string& name) const {
    const gguf::TensorInfo* t = file_.FindTensor(name);
    EXPECT_NE(t, nullptr) << name;
    if (t == nullptr) {
      return {};
    }
    EXPECT_EQ(t->type_id, static_cast<uint32_t>(gguf::TensorType::kF32)) << name;
    std::vector<float> v(static_cast<size_t>(t->n_elements()));
    std::memcpy(v.data(), t->data, v.size() * sizeof(float));
    return v;
  }
  std::vector<int32_t> Ints(const std::string& name) const {
    const gguf::TensorInfo* t = file_.FindTensor(name);
    EXPECT_NE(t, nullptr) << name;
    if (t == nullptr) {
      return {};
    }
    std::vector<int32_t> v(static_cast<size_t>(t->n_elements()));
    std::memcpy(v.data(), t->data, v.size() * sizeof(int32_t));
    return v;
  }
  std::vector<int64_t> Shape(const std::string& name) const {
    return file_.FindTensor(name)->shape;
  }

 private:
  gguf::File file_;
};

using model::testing::Compare;
using model::testing::Diff;

// Mel tolerance of README §7.4 item 2.
void ExpectMelClose(const std::vector<float>& got, const std::vector<float>& want,
                    const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  double loud = 0;
  double quiet = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double e = std::abs(double{got[i]} - want[i]);
    (want[i] > -3 ? loud : quiet) = std::max(want[i] > -3 ? loud : quiet, e);
  }
  EXPECT_LE(loud, 1e-4) << what;
  EXPECT_LE(quiet, 1e-2) << what;
  std::printf("%s: mel max-abs %.2e (ref > -3), %.2e (elsewhere)\n", what.c_str(), loud, quiet);
}

Mel RefMel(const Ref& ref, const std::string& name) {
  Mel mel;
  const std::vector<int64_t> shape = ref.Shape(name);
  mel.frames = static_cast<int>(shape[0]);
  mel.n_mel = static_cast<int>(shape[1]);
  mel.data = ref.Floats(name);
  return mel;
}

TEST(AudioDecode, SixteenBitWavIsExactlyS16Over32768) {
  const std::vector<uint8_t> bytes = ReadAll(Dir() + "media/chirp-1.5s.wav");
  const std::vector<float> pcm = DecodeBytes(bytes, "chirp");
  ASSERT_EQ(pcm.size(), 24000U);
  // Canonical 44-byte header, then little-endian int16 samples.
  for (size_t i = 0; i < pcm.size(); ++i) {
    int16_t s = 0;
    std::memcpy(&s, bytes.data() + 44 + 2 * i, 2);
    ASSERT_EQ(pcm[i], static_cast<float>(s) / 32768.0F) << i;
  }
}

// A stereo 44.1 kHz float WAV with a 1 kHz tone on one channel and silence on the other comes
// out as the mono 16 kHz tone at half amplitude.
TEST(AudioDecode, StereoAnyRateIsMixedAndResampled) {
  const int rate = 44100;
  const int n = rate;  // 1 s
  std::vector<float> interleaved(static_cast<size_t>(n) * 2);
  for (int i = 0; i < n; ++i) {
    interleaved[2 * static_cast<size_t>(i)] =
        static_cast<float>(std::sin(2 * std::numbers::pi * 1000.0 * i / rate));
    interleaved[2 * static_cast<size_t>(i) + 1] = 0;
  }
  auto put32 = [](std::vector<uint8_t>& b, uint32_t v) {
    for (int i = 0; i < 4; ++i) {
      b.push_back(static_cast<uint8_t>(v >> (8 * i)));
    }
  };
  auto put16 = [](std::vector<uint8_t>& b, uint16_t v) {
    b.push_back(static_cast<uint8_t>(v));
    b.push_back(static_cast<uint8_t>(v >> 8));
  };
  const auto data_bytes = static_cast<uint32_t>(interleaved.size() * 4);
  std::vector<uint8_t> wav = {'R', 'I', 'F', 'F'};
  put32(wav, 36 + data_bytes);
  for (char c : std::string("WAVEfmt ")) {
    wav.push_back(static_cast<uint8_t>(c));
  }
  put32(wav, 16);
  put16(wav, 3);  // IEEE float
  put16(wav, 2);
  put32(wav, rate);
  put32(wav, rate * 8);
  put16(wav, 8);
  put16(wav, 32);
  for (char c : std::string("data")) {
    wav.push_back(static_cast<uint8_t>(c));
  }
  put32(wav, data_bytes);
  const size_t at = wav.size();
  wav.resize(at + data_bytes);
  std::memcpy(wav.data() + at, interleaved.data(), data_bytes);

  const std::vector<float> pcm = DecodeBytes(wav, "stereo");
  ASSERT_NEAR(static_cast<double>(pcm.size()), 16000.0, 2.0);
  double max_err = 0;
  for (size_t i = 400; i + 400 < pcm.size(); ++i) {  // away from the filter's edges
    const double want =
        0.5 * std::sin(2 * std::numbers::pi * 1000.0 * static_cast<double>(i) / kSampleRate);
    max_err = std::max(max_err, std::abs(pcm[i] - want));
  }
  EXPECT_LT(max_err, 2e-3);
}

// The fuzz seeds are 0.5·sin(0.1·i) at their own rate and channel count, written by libsndfile's
// encoders: every format decodes to the right duration at 16 kHz and the sine's RMS (0.354).
TEST(AudioDecode, FlacOggOpusMp3Decode) {
  struct Case {
    const char* file;
    double seconds;
    double rms_tolerance;
  };
  const std::string seeds = std::string(HEARTH_SOURCE_DIR) + "/fuzz/seeds/audio_fuzz/";
  for (const Case& c :
       {Case{"tiny.flac", 500.0 / 22050, 0.02}, Case{"tiny.ogg", 2000.0 / 16000, 0.05},
        Case{"tiny.opus", 2000.0 / 48000, 0.08}, Case{"tiny.mp3", 2000.0 / 16000, 0.08},
        Case{"stereo-8k.wav", 300.0 / 8000, 0.03}}) {
    const std::vector<float> pcm = DecodeFile(seeds + c.file);
    const double seconds = static_cast<double>(pcm.size()) / kSampleRate;
    // Lossy codecs add encoder delay and padding (MP3 up to ~1 frame of 1152 samples).
    EXPECT_NEAR(seconds, c.seconds, 0.08) << c.file;
    double ss = 0;
    size_t n = 0;
    for (size_t i = pcm.size() / 4; i < pcm.size() * 3 / 4; ++i, ++n) {
      ss += double{pcm[i]} * pcm[i];
    }
    EXPECT_NEAR(std::sqrt(ss / static_cast<double>(n)), 0.5 / std::sqrt(2.0), c.rms_tolerance)
        << c.file;
  }
}

TEST(AudioDecode, EncodeWavRoundTripsExactly) {
  const std::vector<float> pcm = DecodeFile(Dir() + "media/tones-4s.wav");
  const std::string wav = EncodeWav(pcm);
  const std::vector<float> back =
      DecodeBytes({reinterpret_cast<const uint8_t*>(wav.data()), wav.size()}, "roundtrip");
  EXPECT_EQ(back, pcm);
}

TEST(AudioDecode, CorruptInputIsAnInvalidInputError) {
  const std::vector<std::vector<uint8_t>> bad = {
      {},
      {'R', 'I', 'F', 'F', 0, 0, 0, 0, 'W', 'A', 'V', 'E'},
      std::vector<uint8_t>(1000, 0x41),
  };
  for (const auto& bytes : bad) {
    try {
      (void)DecodeBytes(bytes, "bad.wav");
      ADD_FAILURE() << "decoded " << bytes.size() << " garbage bytes";
    } catch (const Error& e) {
      EXPECT_EQ(e.error_class(), ErrorClass::kInvalidInput);
      EXPECT_NE(std::string(e.what()).find("bad.wav"), std::string::npos) << e.what();
    }
  }
  // A truncated real file: the header promises more than there is. libsndfile reads what is
  // there; whatever it returns is finite and no longer than the promise.
  std::vector<uint8_t> cut = ReadAll(Dir() + "media/chirp-1.5s.wav");
  cut.resize(1000);
  try {
    const std::vector<float> pcm = DecodeBytes(cut, "cut.wav");
    EXPECT_LE(pcm.size(), 24000U);
  } catch (const Error& e) {
    EXPECT_EQ(e.error_class(), ErrorClass::kInvalidInput);
  }
}

TEST(AudioSplit, CutsAtSilenceWhenThereIsSome) {
  std::vector<float> clip(static_cast<size_t>(40 * kSampleRate));
  for (size_t i = 0; i < clip.size(); ++i) {
    clip[i] = 0.3F * std::sin(0.05F * static_cast<float>(i));
  }
  // A pause of 0.3 s around 27 s.
  const int64_t pause = int64_t{27} * kSampleRate;
  for (int64_t i = pause; i < pause + 4800; ++i) {
    clip[i] = 0;
  }
  const std::vector<Piece> pieces = SplitAtSilence(clip);
  ASSERT_EQ(pieces.size(), 2U);
  EXPECT_EQ(pieces[0].begin, 0);
  EXPECT_GE(pieces[0].end, pause);
  EXPECT_LE(pieces[0].end, pause + 4800);
  EXPECT_EQ(pieces[1].begin, pieces[0].end);
  EXPECT_EQ(pieces[1].end, static_cast<int64_t>(clip.size()));
}

TEST(AudioSplit, CutsAtThirtySecondsWithoutSilence) {
  std::vector<float> clip(static_cast<size_t>(65 * kSampleRate));
  for (size_t i = 0; i < clip.size(); ++i) {
    clip[i] = 0.3F * std::sin(0.05F * static_cast<float>(i));
  }
  const std::vector<Piece> pieces = SplitAtSilence(clip);
  ASSERT_EQ(pieces.size(), 3U);
  EXPECT_EQ(pieces[0].end, kMaxPieceSamples);
  EXPECT_EQ(pieces[1].end, 2 * kMaxPieceSamples);
  EXPECT_EQ(pieces[2].end, static_cast<int64_t>(clip.size()));
  EXPECT_EQ(SplitAtSilence(std::span<const float>(clip).first(kMaxPieceSamples)).size(), 1U);
}

TEST(AudioMel, MatchesTheReferenceFeatures) {
  struct Case {
    const char* stem;
    const char* clip;
    int n_mel;
  };
  for (const Case& c :
       {Case{"tiny-e.mmproj.F32", "chirp-1.5s", 128}, Case{"tiny-e.mmproj.F32", "tones-4s", 128},
        Case{"tiny-mm.mmproj.F32", "chirp-1.5s", 32}}) {
    const Ref ref(c.stem);
    const std::vector<float> pcm = DecodeFile(Dir() + "media/" + c.clip + ".wav");
    const Mel mel = LogMel(pcm, c.n_mel);
    const Mel want = RefMel(ref, std::string(c.clip) + ".mel");
    EXPECT_EQ(mel.frames, want.frames);
    ExpectMelClose(mel.data, want.data, std::string(c.stem) + "/" + c.clip);
  }
  EXPECT_EQ(TokensForFrames(149), 38);
  EXPECT_EQ(TokensForFrames(399), 100);
  EXPECT_EQ(TokensForFrames(2999), 750);
  EXPECT_EQ(TokensForFrames(49), 13);
}

void ExpectEncoderClose(const Diff& d, double max_abs, double rel_rms, const std::string& what) {
  EXPECT_LE(d.max_abs, max_abs) << what;
  EXPECT_LE(d.rel_rms, rel_rms) << what;
  std::printf("%s: max-abs %.2e rel-rms %.2e\n", what.c_str(), d.max_abs, d.rel_rms);
}

// Fed with the reference features, the F32 encoders match the embeddings and intermediates
// (README §7.4 item 3: max-abs 1e-2, rel-RMS 1e-3).
TEST(AudioEncoder, F32MatchesTheReferenceEmbeddings) {
  tensor::ThreadPool pool(2);
  struct Case {
    const char* stem;
    const char* clip;
    int blocks;
  };
  for (const Case& c :
       {Case{"tiny-e.mmproj.F32", "chirp-1.5s", 2}, Case{"tiny-e.mmproj.F32", "tones-4s", 0},
        Case{"tiny-mm.mmproj.F32", "chirp-1.5s", 1}}) {
    const Ref ref(c.stem);
    const auto enc = Encoder::Open(Dir() + "models/" + std::string(c.stem) + ".gguf");
    const std::string p = std::string(c.stem) + "/" + c.clip;
    Intermediates inter;
    const std::vector<float> embd =
        enc->Encode(RefMel(ref, std::string(c.clip) + ".mel"), &pool, &inter);
    ExpectEncoderClose(Compare(embd, ref.Floats(std::string(c.clip) + ".embd")), 1e-2, 1e-3, p);
    if (c.blocks == 0) {
      continue;
    }
    const std::string in = std::string(c.clip) + ".inter.";
    ExpectEncoderClose(Compare(inter.sscp_proj, ref.Floats(in + "sscp_proj")), 1e-2, 1e-3,
                       p + " sscp_proj");
    ASSERT_EQ(inter.block_out.size(), static_cast<size_t>(c.blocks));
    for (int b = 0; b < c.blocks; ++b) {
      ExpectEncoderClose(
          Compare(inter.block_out[b], ref.Floats(in + "block_out-" + std::to_string(b))), 1e-2,
          1e-3, p + " block_out-" + std::to_string(b));
    }
    ExpectEncoderClose(Compare(inter.out_proj, ref.Floats(in + "out_proj")), 1e-2, 1e-3,
                       p + " out_proj");
  }
}

// Q8_0 projector against llama.cpp's Q8_0 run (README §7.4 item 5).
TEST(AudioEncoder, Q8MatchesTheReference) {
  tensor::ThreadPool pool(2);
  const Ref f32("tiny-e.mmproj.F32");
  const Ref ref("tiny-e.mmproj.Q8_0");
  const auto enc = Encoder::Open(Dir() + "models/tiny-e.mmproj.Q8_0.gguf");
  const std::vector<float> embd = enc->Encode(RefMel(f32, "chirp-1.5s.mel"), &pool);
  EXPECT_EQ(enc->Describe(), "gemma4a, 2 blocks, width 32, 2 heads, 128 mel bins, Q8_0");
  ExpectEncoderClose(Compare(embd, ref.Floats("chirp-1.5s.embd")), 0.15, 2.5e-2, "Q8_0/chirp");
  // tones: only per-row norms are stored.
  const std::vector<float> tones = enc->Encode(RefMel(f32, "tones-4s.mel"), &pool);
  const int e = enc->TextWidth();
  std::vector<float> norms;
  for (size_t r = 0; r * e < tones.size(); ++r) {
    double ss = 0;
    for (int i = 0; i < e; ++i) {
      ss += double{tones[r * e + i]} * tones[r * e + i];
    }
    norms.push_back(static_cast<float>(std::sqrt(ss)));
  }
  ExpectEncoderClose(Compare(norms, ref.Floats("tones-4s.embd_rownorm")), 0.5, 2.5e-2,
                     "Q8_0/tones row norms");
}

// The 30.5 s clip, decoded and split by hearth, becomes llama.cpp's two pieces: 750 + 13 rows.
TEST(AudioEncoder, LongClipIsTwoPiecesInOrder) {
  tensor::ThreadPool pool(2);
  const Ref ref("tiny-mm.mmproj.F32");
  const auto enc = Encoder::Open(Dir() + "models/tiny-mm.mmproj.F32.gguf");
  const std::vector<float> pcm = DecodeFile(Dir() + "media/long-30.5s.wav");
  ASSERT_EQ(pcm.size(), 488000U);
  // llama.cpp cuts at exactly 30 s; the clip has a pause near 26.8 s, where SplitAtSilence cuts.
  const std::vector<Piece> pieces = SplitClip(pcm, Split::kFixed);
  ASSERT_EQ(pieces.size(), 2U);
  EXPECT_EQ(pieces[0].end, kMaxPieceSamples);
  const std::vector<Piece> at_pause = SplitClip(pcm, Split::kAtSilence);
  ASSERT_EQ(at_pause.size(), 2U);
  EXPECT_LT(at_pause[0].end, kMaxPieceSamples - int64_t{2} * kSampleRate);

  // The stored mel frames of piece 0 and all of piece 1.
  const Mel mel0 = LogMel(std::span<const float>(pcm).first(kMaxPieceSamples), 32);
  ASSERT_EQ(mel0.frames, 2999);
  const std::vector<int32_t> frames = ref.Ints("long-30.5s.mel_frames.c0");
  const std::vector<float> want0 = ref.Floats("long-30.5s.mel.c0");
  std::vector<float> got0;
  for (int m = 0; m < 32; ++m) {
    for (int32_t t : frames) {
      got0.push_back(mel0.data[static_cast<size_t>(m) * mel0.frames + t]);
    }
  }
  ExpectMelClose(got0, want0, "long c0 (stored frames)");
  const std::vector<float> colsum = ref.Floats("long-30.5s.mel_colsum.c0");
  double colsum_err = 0;
  for (int t = 0; t < mel0.frames; ++t) {
    double s = 0;
    for (int m = 0; m < 32; ++m) {
      s += mel0.data[static_cast<size_t>(m) * mel0.frames + t];
    }
    colsum_err = std::max(colsum_err, std::abs(s - colsum[t]));
  }
  EXPECT_LE(colsum_err, 32 * 1e-2);
  const Mel mel1 = LogMel(std::span<const float>(pcm).subspan(kMaxPieceSamples), 32);
  ExpectMelClose(mel1.data, ref.Floats("long-30.5s.mel.c1"), "long c1");

  std::vector<int> rows;
  const std::vector<float> embd = enc->EncodeClip(pcm, &pool, &rows);
  ASSERT_EQ(rows, (std::vector<int>{750, 13}));
  const size_t split = size_t{750} * 32;
  ExpectEncoderClose(
      Compare({embd.begin(), embd.begin() + split}, ref.Floats("long-30.5s.embd.c0")), 1e-2, 1e-3,
      "long c0 embd");
  ExpectEncoderClose(Compare({embd.begin() + split, embd.end()}, ref.Floats("long-30.5s.embd.c1")),
                     1e-2, 1e-3, "long c1 embd");
}

TEST(AudioEncoder, ProjectorWithoutAudioNamesTheModelsThatHaveIt) {
  try {
    (void)Encoder::Open(Dir() + "models/tiny-dense.mmproj.F32.gguf");
    FAIL() << "loaded a vision-only projector as audio";
  } catch (const Error& e) {
    EXPECT_EQ(e.error_class(), ErrorClass::kInvalidInput);
    EXPECT_NE(e.Describe().find("E2B"), std::string::npos) << e.Describe();
    EXPECT_NE(e.Describe().find("E4B"), std::string::npos) << e.Describe();
  }
}

}  // namespace
}  // namespace hearth::audio
