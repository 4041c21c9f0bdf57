// The vision layer against llama.cpp's references (../shared/fixtures/multimodal/README.md §6,
// tolerances of §7.4): canvas sizes for every budget, the resized and padded pixels byte for byte,
// the gemma4v encoder's intermediates and embeddings for F32, F16 and Q8_0 projectors; and the
// decoders on files made here by the formats' own encoders (lossless round trips), EXIF
// orientation, the pixel cap and malformed files.
#include "vision/vision.h"

#include <gif_lib.h>
#include <gtest/gtest.h>
#include <png.h>
#include <turbojpeg.h>
#include <webp/encode.h>
#include <zlib.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "../model/ref_check.h"
#include "base/error.h"
#include "gguf/gguf.h"

namespace hearth::vision {
namespace {

std::string Dir() { return std::string(HEARTH_SHARED_DIR) + "/fixtures/multimodal/"; }

std::vector<uint8_t> ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

class Ref {
 public:
  explicit Ref(const std::string& stem)
      : file_(gguf::File::Open(Dir() + "refs/" + stem + ".ref.gguf")) {}
  bool Has(const std::string& name) const { return file_.FindTensor(name) != nullptr; }
  template <typename T>
  std::vector<T> Get(const std::string& name) const {
    const gguf::TensorInfo* t = file_.FindTensor(name);
    EXPECT_NE(t, nullptr) << name;
    if (t == nullptr) {
      return {};
    }
    std::vector<T> v(static_cast<size_t>(t->n_elements()));
    std::memcpy(v.data(), t->data, v.size() * sizeof(T));
    return v;
  }
  std::vector<int64_t> Shape(const std::string& name) const {
    return file_.FindTensor(name)->shape;
  }
  nlohmann::json Case(const std::string& name) const {
    return nlohmann::json::parse(std::string(*file_.GetString("ref.case." + name)));
  }

 private:
  gguf::File file_;
};

using model::testing::Compare;
using model::testing::Diff;

// ---- canvas sizes ----

// README §4's table (align 12 = the fixtures' patch 4 × pool 3), every image and budget.
TEST(VisionCanvas, FixtureTable) {
  struct Row {
    int w, h;
    Canvas c[5];
  };
  const Row rows[] = {
      {64, 64, {{108, 108, 81}, {108, 108, 81}, {108, 108, 81}, {108, 108, 81}, {108, 108, 81}}},
      {200,
       120,
       {{120, 72, 60}, {180, 108, 135}, {204, 120, 170}, {204, 120, 170}, {204, 120, 170}}},
      {37, 91, {{72, 168, 84}, {72, 168, 84}, {72, 168, 84}, {72, 168, 84}, {72, 168, 84}}},
      {160,
       120,
       {{108, 84, 63}, {156, 120, 130}, {156, 120, 130}, {156, 120, 130}, {156, 120, 130}}},
  };
  for (const Row& r : rows) {
    for (size_t b = 0; b < kTokenBudgets.size(); ++b) {
      const Canvas c = CanvasFor(r.w, r.h, 12, kMinTokens, kTokenBudgets[b]);
      EXPECT_EQ(c.width, r.c[b].width) << r.w << "x" << r.h << " B=" << kTokenBudgets[b];
      EXPECT_EQ(c.height, r.c[b].height) << r.w << "x" << r.h << " B=" << kTokenBudgets[b];
      EXPECT_EQ(c.tokens, r.c[b].tokens) << r.w << "x" << r.h << " B=" << kTokenBudgets[b];
    }
  }
}

// The spec's table for the real model (align 48 = patch 16 × pool 3), §3.2.
TEST(VisionCanvas, RealModelTable) {
  struct Case {
    int w, h, budget, cw, ch, tokens;
  };
  const Case cases[] = {
      {64, 64, 70, 432, 432, 81},        {224, 224, 1120, 432, 432, 81},
      {640, 480, 70, 432, 336, 63},      {640, 480, 140, 624, 480, 130},
      {1024, 768, 280, 912, 672, 266},   {1024, 768, 560, 1008, 768, 336},
      {1280, 720, 70, 528, 288, 66},     {1280, 720, 560, 1296, 720, 405},
      {1920, 1080, 560, 1488, 816, 527}, {1920, 1080, 1120, 1920, 1104, 920},
      {4032, 3024, 560, 1296, 960, 540}, {4032, 3024, 1120, 1824, 1344, 1064},
      {800, 200, 70, 816, 240, 85},      {3000, 400, 70, 1056, 144, 66},
      {3000, 400, 280, 2160, 288, 270},  {3000, 400, 1120, 3024, 384, 504},
  };
  for (const Case& c : cases) {
    const Canvas got = CanvasFor(c.w, c.h, 48, kMinTokens, c.budget);
    EXPECT_EQ(got.width, c.cw) << c.w << "x" << c.h << " B=" << c.budget;
    EXPECT_EQ(got.height, c.ch) << c.w << "x" << c.h << " B=" << c.budget;
    EXPECT_EQ(got.tokens, c.tokens) << c.w << "x" << c.h << " B=" << c.budget;
  }
}

// ---- preprocessing: llama.cpp's pixels byte for byte ----

std::vector<std::string> ImageCases(const Ref& ref) {
  std::vector<std::string> out;
  for (const char* c : {"img-64x64", "img-200x120.b70", "img-200x120.b140", "img-200x120",
                        "img-37x91", "img-160x120.b70", "img-160x120"}) {
    if (ref.Has(std::string(c) + ".tokens")) {
      out.emplace_back(c);
    }
  }
  return out;
}

int Budget(const nlohmann::json& c) {
  return c["max_tokens"].is_null() ? kDefaultTokens : c["max_tokens"].get<int>();
}

// The decoded input of a case: the PNGs through our decoder; the JPEG as stb_image decoded it
// (stored in the reference), since libjpeg-turbo differs from stb by a few levels (checked below).
Image Input(const Ref& ref, const nlohmann::json& c) {
  const std::string media = c["media"];
  if (media.ends_with(".jpg")) {
    Image img{c["bitmap_nx"].get<int>(), c["bitmap_ny"].get<int>(),
              ref.Get<uint8_t>(media + ".decoded_u8")};
    return img;
  }
  return DecodeFile(Dir() + "media/" + media);
}

// Planar u8 [3][h][w] of an RGB image.
std::vector<uint8_t> Planar(const Image& img) {
  const size_t plane = size_t(img.width) * size_t(img.height);
  std::vector<uint8_t> out(plane * 3);
  for (size_t i = 0; i < plane; ++i) {
    for (size_t ch = 0; ch < 3; ++ch) {
      out[ch * plane + i] = img.rgb[i * 3 + ch];
    }
  }
  return out;
}

TEST(VisionPreprocess, PixelsMatchLlamaCppExactly) {
  const Ref ref("tiny-e.mmproj.F32");
  const auto enc = Encoder::Open(Dir() + "models/tiny-e.mmproj.F32.gguf");
  const std::vector<std::string> cases = ImageCases(ref);
  ASSERT_EQ(cases.size(), 7U);
  for (const std::string& name : cases) {
    const nlohmann::json c = ref.Case(name);
    const Image img = Input(ref, c);
    const Canvas canvas = enc->CanvasOf(img, Budget(c));
    EXPECT_EQ(canvas.width, c["grid"]["width"].get<int>()) << name;
    EXPECT_EQ(canvas.height, c["grid"]["height"].get<int>()) << name;
    EXPECT_EQ(canvas.tokens, c["chunks"][1]["n_tokens"].get<int>()) << name;
    const Image fitted = FitAndPad(img, canvas.width, canvas.height);
    const std::vector<uint8_t> want = ref.Get<uint8_t>(name + ".pixels_u8");
    const std::vector<uint8_t> got = Planar(fitted);
    ASSERT_EQ(got.size(), want.size()) << name;
    size_t differing = 0;
    for (size_t i = 0; i < got.size(); ++i) {
      differing += got[i] != want[i];
    }
    EXPECT_EQ(differing, 0U) << name;
    // Normalisation of these projectors (mean 0, std 1): u8 / 255.
    const Pixels px = enc->Preprocess(img, Budget(c));
    ASSERT_EQ(px.data.size(), want.size());
    for (size_t i = 0; i < want.size(); i += 97) {
      EXPECT_EQ(px.data[i], static_cast<float>(want[i]) / 255.0F) << name << " " << i;
    }
  }
}

// libjpeg-turbo against stb_image (what llama.cpp uses) on the fixture JPEG: README §4 measured
// Pillow/libjpeg at up to 3 levels on 7 % of the values.
TEST(VisionDecode, JpegWithinThreeLevelsOfStb) {
  const Ref ref("tiny-e.mmproj.F32");
  const Image img = DecodeBytes(ReadAll(Dir() + "media/img-160x120.jpg"), "img-160x120.jpg");
  ASSERT_EQ(img.width, 160);
  ASSERT_EQ(img.height, 120);
  const std::vector<uint8_t> want = ref.Get<uint8_t>("img-160x120.jpg.decoded_u8");
  ASSERT_EQ(img.rgb.size(), want.size());
  int worst = 0;
  size_t differing = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    const int d = std::abs(int{img.rgb[i]} - int{want[i]});
    worst = std::max(worst, d);
    differing += d != 0;
  }
  EXPECT_LE(worst, 3);
  EXPECT_LE(static_cast<double>(differing) / static_cast<double>(want.size()), 0.10);
}

TEST(VisionDecode, RgbaPngDropsAlphaWithoutCompositing) {
  // img-37x91.png is RGBA with an alpha ramp; llama.cpp's pixels are its RGB unchanged, which
  // PixelsMatchLlamaCppExactly checks through the resize. Here: the size and that no pixel was
  // darkened towards black by compositing (the top-left pixel is fully transparent in the file).
  const Image img = DecodeFile(Dir() + "media/img-37x91.png");
  EXPECT_EQ(img.width, 37);
  EXPECT_EQ(img.height, 91);
  EXPECT_EQ(img.rgb.size(), 37U * 91U * 3U);
}

// ---- the encoder ----

struct Tol {
  double max_abs;
  double rel_rms;
};

// Encodes every case of `stem` that stores an embedding (or only its row norms) and compares.
void CheckSetup(const std::string& stem, const Tol& tol, int min_cases = 2) {
  const Ref ref(stem);
  const Ref pixels_ref("tiny-e.mmproj.F32");  // the pixels are stored once (README §5)
  const Ref* pix = &ref;
  const auto enc = Encoder::Open(Dir() + "models/" + stem + ".gguf");
  tensor::ThreadPool pool(2);
  int checked = 0;
  for (const std::string& name : ImageCases(ref)) {
    const nlohmann::json c = ref.Case(name);
    std::string pix_name = name;
    if (!ref.Has(name + ".pixels_u8")) {
      pix = &pixels_ref;
    } else {
      pix = &ref;
    }
    const std::vector<uint8_t> u8 = pix->Get<uint8_t>(pix_name + ".pixels_u8");
    const std::vector<int64_t> shape = pix->Shape(pix_name + ".pixels_u8");
    Pixels px{static_cast<int>(shape[0]), static_cast<int>(shape[1]), {}};
    for (uint8_t v : u8) {
      px.data.push_back(static_cast<float>(v) / 255.0F);
    }
    Intermediates inter;
    const std::vector<float> got = enc->Encode(px, &pool, &inter);
    const int n_text = enc->TextWidth();
    const size_t rows = got.size() / size_t(n_text);
    EXPECT_EQ(rows, c["chunks"][1]["n_tokens"].get<size_t>()) << stem << " " << name;
    if (ref.Has(name + ".embd")) {
      const Diff d = Compare(got, ref.Get<float>(name + ".embd"));
      std::printf("%s %s: embd max-abs %.2e rel-rms %.2e\n", stem.c_str(), name.c_str(), d.max_abs,
                  d.rel_rms);
      EXPECT_LE(d.max_abs, tol.max_abs) << stem << " " << name;
      EXPECT_LE(d.rel_rms, tol.rel_rms) << stem << " " << name;
    } else {
      std::vector<float> norms(rows);
      for (size_t r = 0; r < rows; ++r) {
        double ss = 0;
        for (int t = 0; t < n_text; ++t) {
          ss += double{got[r * size_t(n_text) + size_t(t)]} * got[r * size_t(n_text) + size_t(t)];
        }
        norms[r] = static_cast<float>(std::sqrt(ss));
      }
      const Diff d = Compare(norms, ref.Get<float>(name + ".embd_rownorm"));
      std::printf("%s %s: row norms rel-rms %.2e\n", stem.c_str(), name.c_str(), d.rel_rms);
      EXPECT_LE(d.rel_rms, tol.rel_rms) << stem << " " << name;
    }
    if (ref.Has(name + ".inter.pos_embd")) {
      const Diff p = Compare(inter.pos_embd, ref.Get<float>(name + ".inter.pos_embd"));
      const Diff l =
          Compare(inter.layer_out.at(0), ref.Get<float>(name + ".inter.layer_out_scaled-0"));
      const Diff q = Compare(inter.pooled, ref.Get<float>(name + ".inter.pooled"));
      std::printf("%s %s: pos_embd %.2e, layer 0 %.2e, pooled %.2e (max-abs)\n", stem.c_str(),
                  name.c_str(), p.max_abs, l.max_abs, q.max_abs);
      EXPECT_LE(p.rel_rms, tol.rel_rms);
      EXPECT_LE(l.rel_rms, tol.rel_rms);
      EXPECT_LE(q.rel_rms, tol.rel_rms);
    }
    ++checked;
  }
  EXPECT_GE(checked, min_cases) << stem;
}

// README §7.4 item 3: F32 projectors, max-abs ≤ 4e-3 and rel-RMS ≤ 1e-3.
TEST(VisionEncoder, TinyEF32) { CheckSetup("tiny-e.mmproj.F32", {4e-3, 1e-3}); }
TEST(VisionEncoder, TinyDenseF32StdAndClamps) { CheckSetup("tiny-dense.mmproj.F32", {4e-3, 1e-3}); }
TEST(VisionEncoder, TinyMmF32WithIntermediates) {
  CheckSetup("tiny-mm.mmproj.F32", {4e-3, 1e-3}, 1);
}
// Item 5: F16 max-abs ≤ 5e-3, rel-RMS ≤ 1e-3; Q8_0 max-abs ≤ 0.15, rel-RMS ≤ 2.5e-2.
TEST(VisionEncoder, TinyDenseF16) { CheckSetup("tiny-dense.mmproj.F16", {5e-3, 1e-3}); }
TEST(VisionEncoder, TinyEQ8_0) { CheckSetup("tiny-e.mmproj.Q8_0", {0.15, 2.5e-2}); }

TEST(VisionEncoder, DescribesAndRefusesAudioOnlyOrTextFiles) {
  const auto enc = Encoder::Open(Dir() + "models/tiny-e.mmproj.Q8_0.gguf");
  EXPECT_EQ(enc->Describe(), "gemma4v, 2 layers, width 64, 2 heads, patch 4, pool 3, Q8_0");
  EXPECT_EQ(enc->TextWidth(), 256);
  try {
    Encoder::Open(Dir() + "models/tiny-mm.F32.gguf");
    FAIL() << "a text model is not a projector";
  } catch (const Error& e) {
    EXPECT_EQ(e.error_class(), ErrorClass::kInvalidInput);
    EXPECT_NE(std::string(e.what()).find("no vision encoder"), std::string::npos) << e.what();
  }
}

TEST(VisionEncoder, EncodeImageRunsTheWholePipeline) {
  const Ref ref("tiny-e.mmproj.F32");
  const auto enc = Encoder::Open(Dir() + "models/tiny-e.mmproj.F32.gguf");
  const std::vector<float> got =
      enc->EncodeImage(DecodeFile(Dir() + "media/img-64x64.png"), kDefaultTokens, nullptr);
  const Diff d = Compare(got, ref.Get<float>("img-64x64.embd"));
  EXPECT_LE(d.max_abs, 4e-3);
}

// ---- decoders on files made by the formats' own encoders ----

// A w×h test pattern with distinct values per pixel and channel.
Image Pattern(int w, int h) {
  Image img{w, h, std::vector<uint8_t>(size_t(w) * size_t(h) * 3)};
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      uint8_t* p = img.rgb.data() + (size_t(y) * size_t(w) + size_t(x)) * 3;
      p[0] = static_cast<uint8_t>(x * 7 + y);
      p[1] = static_cast<uint8_t>(y * 11 + 3);
      p[2] = static_cast<uint8_t>((x ^ y) * 5);
    }
  }
  return img;
}

// An RGB PNG written by libpng, with an eXIf chunk holding `orientation` when it is not 0.
std::vector<uint8_t> MakePng(const Image& img, int orientation = 0) {
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  std::vector<uint8_t> out;
  png_set_write_fn(
      png, &out,
      [](png_structp p, png_bytep data, size_t n) {
        auto* o = static_cast<std::vector<uint8_t>*>(png_get_io_ptr(p));
        o->insert(o->end(), data, data + n);
      },
      nullptr);
  png_set_IHDR(png, info, static_cast<png_uint_32>(img.width), static_cast<png_uint_32>(img.height),
               8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  // A big-endian TIFF block with one IFD entry: Orientation (0x0112), SHORT, 1 value.
  std::vector<uint8_t> exif = {'M',  'M',  0, 42, 0, 0, 0, 8, 0, 1,
                               0x01, 0x12, 0, 3,  0, 0, 0, 1, 0, static_cast<uint8_t>(orientation),
                               0,    0,    0, 0,  0, 0};
  if (orientation != 0) {
    png_set_eXIf_1(png, info, static_cast<png_uint_32>(exif.size()), exif.data());
  }
  png_write_info(png, info);
  for (int y = 0; y < img.height; ++y) {
    png_write_row(png, img.rgb.data() + size_t(y) * size_t(img.width) * 3);
  }
  png_write_end(png, info);
  png_destroy_write_struct(&png, &info);
  return out;
}

TEST(VisionDecode, PngRoundTrip) {
  const Image src = Pattern(13, 7);
  const Image got = DecodeBytes(MakePng(src), "t.png");
  EXPECT_EQ(got.width, 13);
  EXPECT_EQ(got.height, 7);
  EXPECT_EQ(got.rgb, src.rgb);
}

TEST(VisionDecode, WebpLosslessRoundTrip) {
  const Image src = Pattern(9, 5);
  uint8_t* out = nullptr;
  const size_t n = WebPEncodeLosslessRGB(src.rgb.data(), 9, 5, 27, &out);
  ASSERT_GT(n, 0U);
  const std::vector<uint8_t> bytes(out, out + n);
  WebPFree(out);
  const Image got = DecodeBytes(bytes, "t.webp");
  EXPECT_EQ(got.width, 9);
  EXPECT_EQ(got.height, 5);
  EXPECT_EQ(got.rgb, src.rgb);
  // Truncated: an error, not a crash or partial pixels.
  try {
    DecodeBytes(std::span(bytes).first(bytes.size() - 5), "t.webp");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.error_class(), ErrorClass::kInvalidInput);
  }
}

TEST(VisionDecode, JpegRoundTripAndTruncation) {
  const Image src = Pattern(32, 16);
  tjhandle tj = tjInitCompress();
  unsigned char* out = nullptr;
  unsigned long size = 0;
  ASSERT_EQ(tjCompress2(tj, src.rgb.data(), 32, 0, 16, TJPF_RGB, &out, &size, TJSAMP_444, 100, 0),
            0);
  const std::vector<uint8_t> bytes(out, out + size);
  tjFree(out);
  tjDestroy(tj);
  const Image got = DecodeBytes(bytes, "t.jpg");
  ASSERT_EQ(got.rgb.size(), src.rgb.size());
  int worst = 0;
  for (size_t i = 0; i < src.rgb.size(); ++i) {
    worst = std::max(worst, std::abs(int{got.rgb[i]} - int{src.rgb[i]}));
  }
  EXPECT_LE(worst, 12);  // quality 100, no subsampling
  for (size_t cut : {bytes.size() / 2, bytes.size() - 2, size_t{20}}) {
    try {
      DecodeBytes(std::span(bytes).first(cut), "t.jpg");
      FAIL() << cut;
    } catch (const Error& e) {
      EXPECT_EQ(e.error_class(), ErrorClass::kInvalidInput) << cut;
    }
  }
}

// A GIF written by giflib: 4×3, palette of 4 colours, index 3 transparent.
std::vector<uint8_t> MakeGif() {
  std::vector<uint8_t> out;
  int err = 0;
  GifFileType* gif = EGifOpen(
      &out,
      [](GifFileType* g, const GifByteType* data, int n) {
        auto* o = static_cast<std::vector<uint8_t>*>(g->UserData);
        o->insert(o->end(), data, data + n);
        return n;
      },
      &err);
  GifColorType colors[4] = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {9, 9, 9}};
  ColorMapObject* map = GifMakeMapObject(4, colors);
  EGifSetGifVersion(gif, true);
  EGifPutScreenDesc(gif, 4, 3, 2, 0, map);
  GraphicsControlBlock gcb{0, false, 0, 3};
  GifByteType ext[4];
  EGifGCBToExtension(&gcb, ext);
  EGifPutExtension(gif, GRAPHICS_EXT_FUNC_CODE, 4, ext);
  EGifPutImageDesc(gif, 0, 0, 4, 3, false, nullptr);
  for (int y = 0; y < 3; ++y) {
    GifPixelType line[4] = {0, 1, 2, 3};
    line[0] = static_cast<GifPixelType>(y);
    EGifPutLine(gif, line, 4);
  }
  EGifCloseFile(gif, &err);
  GifFreeMapObject(map);
  return out;
}

TEST(VisionDecode, GifFirstFrameTransparentIsBlack) {
  const std::vector<uint8_t> bytes = MakeGif();
  const Image got = DecodeBytes(bytes, "t.gif");
  ASSERT_EQ(got.width, 4);
  ASSERT_EQ(got.height, 3);
  // Row 1: indices 1, 1, 2, 3 → green, green, blue, transparent (black).
  const std::vector<uint8_t> row1(got.rgb.begin() + 12, got.rgb.begin() + 24);
  EXPECT_EQ(row1, (std::vector<uint8_t>{0, 255, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0}));
  try {
    DecodeBytes(std::span(bytes).first(bytes.size() - 6), "t.gif");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.error_class(), ErrorClass::kInvalidInput);
  }
}

// A 24-bit bottom-up BMP (the layout every BMP writer produces).
std::vector<uint8_t> MakeBmp(const Image& img) {
  const int stride = (img.width * 3 + 3) / 4 * 4;
  const uint32_t data = static_cast<uint32_t>(stride * img.height);
  std::vector<uint8_t> b = {'B', 'M'};
  auto put = [&](uint32_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) {
      b.push_back(static_cast<uint8_t>(v >> (8 * i)));
    }
  };
  put(54 + data, 4);
  put(0, 4);
  put(54, 4);
  put(40, 4);
  put(static_cast<uint32_t>(img.width), 4);
  put(static_cast<uint32_t>(img.height), 4);
  put(1, 2);
  put(24, 2);
  put(0, 4);
  put(data, 4);
  put(2835, 4);
  put(2835, 4);
  put(0, 4);
  put(0, 4);
  for (int y = img.height - 1; y >= 0; --y) {
    for (int x = 0; x < img.width; ++x) {
      const uint8_t* p = img.rgb.data() + (size_t(y) * size_t(img.width) + size_t(x)) * 3;
      b.push_back(p[2]);
      b.push_back(p[1]);
      b.push_back(p[0]);
    }
    for (int pad = img.width * 3; pad < stride; ++pad) {
      b.push_back(0);
    }
  }
  return b;
}

TEST(VisionDecode, BmpRoundTrip) {
  const Image src = Pattern(5, 4);
  const Image got = DecodeBytes(MakeBmp(src), "t.bmp");
  EXPECT_EQ(got.width, 5);
  EXPECT_EQ(got.height, 4);
  EXPECT_EQ(got.rgb, src.rgb);
}

TEST(VisionDecode, ExifOrientationIsApplied) {
  const Image src = Pattern(3, 2);
  auto at = [](const Image& img, int x, int y) {
    const uint8_t* p = img.rgb.data() + (size_t(y) * size_t(img.width) + size_t(x)) * 3;
    return std::vector<uint8_t>(p, p + 3);
  };
  // 6: the camera was turned; display rotated 90° clockwise: the left column becomes the top row
  // read bottom to top.
  const Image r6 = DecodeBytes(MakePng(src, 6), "t.png");
  ASSERT_EQ(r6.width, 2);
  ASSERT_EQ(r6.height, 3);
  EXPECT_EQ(at(r6, 0, 0), at(src, 0, 1));
  EXPECT_EQ(at(r6, 1, 0), at(src, 0, 0));
  EXPECT_EQ(at(r6, 0, 2), at(src, 2, 1));
  const Image r3 = DecodeBytes(MakePng(src, 3), "t.png");
  EXPECT_EQ(at(r3, 0, 0), at(src, 2, 1));
  const Image r8 = DecodeBytes(MakePng(src, 8), "t.png");
  ASSERT_EQ(r8.width, 2);
  EXPECT_EQ(at(r8, 0, 0), at(src, 2, 0));
  const Image r2 = DecodeBytes(MakePng(src, 2), "t.png");
  EXPECT_EQ(at(r2, 0, 0), at(src, 2, 0));
  const Image r1 = DecodeBytes(MakePng(src, 1), "t.png");
  EXPECT_EQ(r1.rgb, src.rgb);
}

void ExpectInvalid(std::span<const uint8_t> bytes, const std::string& what,
                   const std::string& needle = "", int64_t max_pixels = kMaxPixels) {
  try {
    DecodeBytes(bytes, "x", max_pixels);
    FAIL() << what;
  } catch (const Error& e) {
    EXPECT_EQ(e.error_class(), ErrorClass::kInvalidInput) << what;
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << what << ": " << e.what();
  }
}

TEST(VisionDecode, MalformedFilesAreInvalidInput) {
  ExpectInvalid({}, "empty", "empty");
  const std::string junk = "hello, not an image at all";
  ExpectInvalid({reinterpret_cast<const uint8_t*>(junk.data()), junk.size()}, "junk", "not a PNG");
  const std::vector<uint8_t> png = MakePng(Pattern(40, 30));
  for (size_t cut : {size_t{8}, size_t{20}, size_t{40}, png.size() / 2, png.size() - 13}) {
    ExpectInvalid(std::span(png).first(cut), "png cut at " + std::to_string(cut));
  }
  std::vector<uint8_t> bad_crc = png;
  bad_crc[30] ^= 0xff;  // inside IHDR: its CRC no longer matches
  ExpectInvalid(bad_crc, "png bad crc");
  const std::vector<uint8_t> bmp = MakeBmp(Pattern(40, 30));
  ExpectInvalid(std::span(bmp).first(bmp.size() / 2), "bmp cut");
  ExpectInvalid(std::span(bmp).first(20), "bmp header cut");
}

TEST(VisionDecode, PixelCapRefusesBeforeDecoding) {
  const std::vector<uint8_t> png = MakePng(Pattern(40, 30));
  ExpectInvalid(png, "cap", "more than the limit", 1000);
  // A header claiming 100000×100000 (1e10 pixels): refused from the header alone.
  std::vector<uint8_t> bomb = png;
  const uint8_t big[8] = {0, 1, 0x86, 0xa0, 0, 1, 0x86, 0xa0};
  std::memcpy(bomb.data() + 16, big, 8);
  const uint32_t crc = static_cast<uint32_t>(crc32(0, bomb.data() + 12, 17));
  for (int i = 0; i < 4; ++i) {
    bomb[29 + size_t(i)] = static_cast<uint8_t>(crc >> (24 - 8 * i));
  }
  ExpectInvalid(bomb, "bomb", "more than the limit");
  const std::vector<uint8_t> bmp = MakeBmp(Pattern(40, 30));
  ExpectInvalid(bmp, "bmp cap", "more than the limit", 1000);
  const std::vector<uint8_t> gif = MakeGif();
  ExpectInvalid(gif, "gif cap", "more than the limit", 5);
}

TEST(VisionDecode, MissingFileIsIo) {
  try {
    DecodeFile("/nonexistent/x.png");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.error_class(), ErrorClass::kIo);
  }
}

}  // namespace
}  // namespace hearth::vision
