// Image file decoding through Debian's libraries: libpng, libjpeg-turbo (TurboJPEG API), libwebp,
// giflib and stb_image (BMP only), with libexif for the orientation tag. The format is chosen by
// the file's magic bytes, so each library only ever sees its own format. Every dimension is checked
// against the pixel cap from the header, before the pixels are allocated.
#include <gif_lib.h>
#include <libexif/exif-data.h>
#include <png.h>
#include <stb/stb_image.h>
#include <turbojpeg.h>
#include <webp/decode.h>
#include <webp/demux.h>

#include <algorithm>
#include <csetjmp>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>

#include "base/error.h"
#include "vision/vision.h"

namespace hearth::vision {
namespace {

[[noreturn]] void Bad(std::string_view name, const std::string& what) {
  ThrowInvalidInput("image '" + std::string(name) + "': " + what,
                    "give a PNG, JPEG, WebP, GIF or BMP file");
}

void CheckSize(std::string_view name, int64_t width, int64_t height, int64_t max_pixels) {
  if (width <= 0 || height <= 0) {
    Bad(name, "has no pixels");
  }
  if (width > max_pixels || height > max_pixels || width * height > max_pixels) {
    ThrowInvalidInput("image '" + std::string(name) + "' is " + std::to_string(width) + "x" +
                          std::to_string(height) + " pixels, more than the limit of " +
                          std::to_string(max_pixels),
                      "scale it down first; an image is resized to at most 1120 tokens anyway");
  }
}

bool StartsWith(std::span<const uint8_t> b, std::string_view magic, size_t at = 0) {
  return b.size() >= at + magic.size() &&
         std::memcmp(b.data() + at, magic.data(), magic.size()) == 0;
}

// ---- EXIF orientation (libexif) ----

// The orientation tag of an EXIF block ("Exif\0\0" + TIFF, or a whole JPEG file); 1 when absent.
int ExifOrientation(const uint8_t* data, size_t size) {
  if (data == nullptr || size == 0 || size > std::numeric_limits<unsigned int>::max()) {
    return 1;
  }
  ExifData* ed = exif_data_new_from_data(data, static_cast<unsigned int>(size));
  if (ed == nullptr) {
    return 1;
  }
  int orientation = 1;
  ExifEntry* e = exif_data_get_entry(ed, EXIF_TAG_ORIENTATION);
  if (e != nullptr && e->format == EXIF_FORMAT_SHORT && e->components >= 1 && e->size >= 2 &&
      e->data != nullptr) {
    orientation = exif_get_short(e->data, exif_data_get_byte_order(ed));
  }
  exif_data_unref(ed);
  return orientation >= 1 && orientation <= 8 ? orientation : 1;
}

// A bare TIFF EXIF payload (PNG eXIf, most WebP EXIF chunks) with the "Exif\0\0" header libexif
// looks for.
int TiffOrientation(const uint8_t* data, size_t size) {
  static constexpr uint8_t kHeader[6] = {'E', 'x', 'i', 'f', 0, 0};
  if (size >= 6 && std::memcmp(data, kHeader, 6) == 0) {
    return ExifOrientation(data, size);
  }
  std::vector<uint8_t> block(kHeader, kHeader + 6);
  block.insert(block.end(), data, data + size);
  return ExifOrientation(block.data(), block.size());
}

// ---- PNG (libpng; its errors longjmp back to ReadPng) ----

struct PngSource {
  const uint8_t* data;
  size_t size;
  size_t pos;
  char error[160];
};

void PngReadFn(png_structp png, png_bytep out, size_t n) {
  auto* s = static_cast<PngSource*>(png_get_io_ptr(png));
  if (n > s->size - s->pos) {
    png_error(png, "file is truncated");
  }
  std::memcpy(out, s->data + s->pos, n);
  s->pos += n;
}

void PngErrorFn(png_structp png, png_const_charp msg) {
  auto* s = static_cast<PngSource*>(png_get_error_ptr(png));
  std::snprintf(s->error, sizeof(s->error), "%s", msg);
  png_longjmp(png, 1);
}

void PngWarningFn(png_structp /*png*/, png_const_charp /*msg*/) {}

// Everything that lives across setjmp is owned by the caller (no C++ object is skipped by the
// longjmp). Returns false with src->error set on failure.
bool ReadPng(PngSource* src, int64_t max_pixels, Image* image, std::vector<png_bytep>* rows,
             std::vector<uint8_t>* exif) {
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, src, PngErrorFn, PngWarningFn);
  if (png == nullptr) {
    std::snprintf(src->error, sizeof(src->error), "out of memory");
    return false;
  }
  png_infop info = png_create_info_struct(png);
  if (info == nullptr || setjmp(png_jmpbuf(png))) {
    png_destroy_read_struct(&png, &info, nullptr);
    return false;
  }
  png_set_read_fn(png, src, PngReadFn);
  png_set_user_limits(png, 0x7fffffff, 0x7fffffff);
  png_set_chunk_malloc_max(png, 64 << 20);
  png_read_info(png, info);
  const png_uint_32 w = png_get_image_width(png, info);
  const png_uint_32 h = png_get_image_height(png, info);
  if (int64_t{w} * h > max_pixels) {
    image->width = static_cast<int>(std::min<png_uint_32>(w, 0x7fffffff));
    image->height = static_cast<int>(std::min<png_uint_32>(h, 0x7fffffff));
    png_destroy_read_struct(&png, &info, nullptr);
    return true;  // the caller reports the size
  }
  // stb_image's results (what llama.cpp sees): 16-bit keeps the high byte, gray is replicated,
  // palettes expanded, alpha (and tRNS) dropped without compositing.
  png_set_strip_16(png);
  png_set_palette_to_rgb(png);
  png_set_expand_gray_1_2_4_to_8(png);
  png_set_gray_to_rgb(png);
  png_set_strip_alpha(png);
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  if (png_get_rowbytes(png, info) != size_t{w} * 3) {
    png_error(png, "unsupported pixel format");
  }
#ifdef PNG_eXIf_SUPPORTED
  png_bytep exif_data = nullptr;
  png_uint_32 exif_size = 0;
  if (png_get_eXIf_1(png, info, &exif_size, &exif_data) != 0 && exif_data != nullptr) {
    exif->assign(exif_data, exif_data + exif_size);
  }
#endif
  image->width = static_cast<int>(w);
  image->height = static_cast<int>(h);
  image->rgb.resize(size_t{w} * h * 3);
  rows->resize(h);
  for (png_uint_32 y = 0; y < h; ++y) {
    (*rows)[y] = image->rgb.data() + size_t{y} * w * 3;
  }
  png_read_image(png, rows->data());
  png_destroy_read_struct(&png, &info, nullptr);
  return true;
}

Image DecodePng(std::span<const uint8_t> bytes, std::string_view name, int64_t max_pixels) {
  PngSource src{bytes.data(), bytes.size(), 0, {}};
  Image image;
  std::vector<png_bytep> rows;
  std::vector<uint8_t> exif;
  if (!ReadPng(&src, max_pixels, &image, &rows, &exif)) {
    Bad(name, std::string("corrupt PNG (") + src.error + ")");
  }
  CheckSize(name, image.width, image.height, max_pixels);
  return exif.empty() ? image : Orient(image, TiffOrientation(exif.data(), exif.size()));
}

// ---- JPEG (TurboJPEG: error codes, no longjmp) ----

Image DecodeJpeg(std::span<const uint8_t> bytes, std::string_view name, int64_t max_pixels) {
  if (bytes.size() > std::numeric_limits<unsigned long>::max()) {
    Bad(name, "too large");
  }
  tjhandle tj = tjInitDecompress();
  if (tj == nullptr) {
    throw Error(ErrorClass::kResource, "cannot start the JPEG decoder");
  }
  const auto fail = [&](const std::string& what) {
    const std::string reason = tjGetErrorStr2(tj);
    tjDestroy(tj);
    Bad(name, what + " (" + reason + ")");
  };
  int w = 0, h = 0, subsamp = 0, colorspace = 0;
  const auto size = static_cast<unsigned long>(bytes.size());
  if (tjDecompressHeader3(tj, bytes.data(), size, &w, &h, &subsamp, &colorspace) != 0) {
    fail("corrupt JPEG");
  }
  if (w <= 0 || h <= 0 || int64_t{w} * h > max_pixels) {
    tjDestroy(tj);
    CheckSize(name, w, h, max_pixels);
  }
  Image image;
  image.width = w;
  image.height = h;
  image.rgb.resize(size_t(w) * size_t(h) * 3);
  // Warnings (a truncated scan, bad data) are errors: the pixels would be partly invented.
  // LIMITSCANS refuses progressive files with absurd scan counts (a CPU-time bomb).
  if (tjDecompress2(tj, bytes.data(), size, image.rgb.data(), w, 0, h, TJPF_RGB,
                    TJFLAG_STOPONWARNING | TJFLAG_LIMITSCANS) != 0) {
    fail("corrupt or truncated JPEG");
  }
  tjDestroy(tj);
  return Orient(image, ExifOrientation(bytes.data(), bytes.size()));
}

// ---- WebP (libwebp; animated files through the animation decoder, first frame) ----

Image DecodeWebp(std::span<const uint8_t> bytes, std::string_view name, int64_t max_pixels) {
  WebPBitstreamFeatures features;
  if (WebPGetFeatures(bytes.data(), bytes.size(), &features) != VP8_STATUS_OK) {
    Bad(name, "corrupt WebP");
  }
  CheckSize(name, features.width, features.height, max_pixels);
  const WebPData data{bytes.data(), bytes.size()};
  Image image;
  image.width = features.width;
  image.height = features.height;
  image.rgb.resize(size_t(features.width) * size_t(features.height) * 3);
  if (features.has_animation == 0) {
    if (WebPDecodeRGBInto(bytes.data(), bytes.size(), image.rgb.data(), image.rgb.size(),
                          features.width * 3) == nullptr) {
      Bad(name, "corrupt or truncated WebP");
    }
  } else {
    WebPAnimDecoderOptions options;
    WebPAnimDecoderOptionsInit(&options);
    options.color_mode = MODE_RGBA;
    options.use_threads = 0;
    WebPAnimDecoder* dec = WebPAnimDecoderNew(&data, &options);
    if (dec == nullptr) {
      Bad(name, "corrupt animated WebP");
    }
    WebPAnimInfo info;
    uint8_t* rgba = nullptr;
    int timestamp = 0;
    if (WebPAnimDecoderGetInfo(dec, &info) == 0 ||
        static_cast<int>(info.canvas_width) != features.width ||
        static_cast<int>(info.canvas_height) != features.height ||
        WebPAnimDecoderGetNext(dec, &rgba, &timestamp) == 0) {
      WebPAnimDecoderDelete(dec);
      Bad(name, "corrupt or truncated animated WebP");
    }
    for (size_t i = 0, n = size_t(features.width) * size_t(features.height); i < n; ++i) {
      std::memcpy(image.rgb.data() + 3 * i, rgba + 4 * i, 3);
    }
    WebPAnimDecoderDelete(dec);
  }
  int orientation = 1;
  if (WebPDemuxer* demux = WebPDemux(&data); demux != nullptr) {
    WebPChunkIterator it;
    if (WebPDemuxGetChunk(demux, "EXIF", 1, &it) != 0) {
      orientation = TiffOrientation(it.chunk.bytes, it.chunk.size);
      WebPDemuxReleaseChunkIterator(&it);
    }
    WebPDemuxDelete(demux);
  }
  return Orient(image, orientation);
}

// ---- GIF (giflib; the first frame drawn on a black canvas of the logical screen's size) ----

struct GifSource {
  const uint8_t* data;
  size_t size;
  size_t pos;
};

int GifReadFn(GifFileType* gif, GifByteType* out, int n) {
  auto* s = static_cast<GifSource*>(gif->UserData);
  const size_t take = std::min(static_cast<size_t>(std::max(n, 0)), s->size - s->pos);
  std::memcpy(out, s->data + s->pos, take);
  s->pos += take;
  return static_cast<int>(take);
}

Image DecodeGif(std::span<const uint8_t> bytes, std::string_view name, int64_t max_pixels) {
  GifSource src{bytes.data(), bytes.size(), 0};
  int error = 0;
  GifFileType* gif = DGifOpen(&src, GifReadFn, &error);
  if (gif == nullptr) {
    Bad(name, std::string("corrupt GIF (") + GifErrorString(error) + ")");
  }
  struct Closer {
    GifFileType* gif;
    ~Closer() {
      int e = 0;
      DGifCloseFile(gif, &e);
    }
  } closer{gif};
  const auto fail = [&](const std::string& what) {
    Bad(name, what + " (" + (GifErrorString(gif->Error) ? GifErrorString(gif->Error) : "?") + ")");
  };
  CheckSize(name, gif->SWidth, gif->SHeight, max_pixels);
  int transparent = -1;
  for (;;) {
    GifRecordType type = UNDEFINED_RECORD_TYPE;
    if (DGifGetRecordType(gif, &type) == GIF_ERROR) {
      fail("corrupt or truncated GIF");
    }
    if (type == EXTENSION_RECORD_TYPE) {
      int code = 0;
      GifByteType* ext = nullptr;
      if (DGifGetExtension(gif, &code, &ext) == GIF_ERROR) {
        fail("corrupt GIF extension");
      }
      while (ext != nullptr) {
        if (code == GRAPHICS_EXT_FUNC_CODE && ext[0] >= 4) {
          transparent = (ext[1] & 1) != 0 ? ext[4] : -1;
        }
        if (DGifGetExtensionNext(gif, &ext) == GIF_ERROR) {
          fail("corrupt GIF extension");
        }
      }
    } else if (type == IMAGE_DESC_RECORD_TYPE) {
      break;
    } else {
      Bad(name, "GIF has no image");
    }
  }
  if (DGifGetImageDesc(gif) == GIF_ERROR) {
    fail("corrupt GIF image descriptor");
  }
  const GifImageDesc& d = gif->Image;
  CheckSize(name, d.Width, d.Height, max_pixels);
  const ColorMapObject* map = d.ColorMap != nullptr ? d.ColorMap : gif->SColorMap;
  if (map == nullptr || map->Colors == nullptr) {
    Bad(name, "GIF has no colour table");
  }
  Image image;
  image.width = gif->SWidth;
  image.height = gif->SHeight;
  image.rgb.assign(size_t(image.width) * size_t(image.height) * 3, 0);
  std::vector<GifPixelType> line(static_cast<size_t>(d.Width));
  // Interlaced frames arrive in four passes of rows.
  static constexpr int kStart[4] = {0, 4, 2, 1};
  static constexpr int kStep[4] = {8, 8, 4, 2};
  const int passes = d.Interlace ? 4 : 1;
  for (int pass = 0; pass < passes; ++pass) {
    const int start = d.Interlace ? kStart[pass] : 0;
    const int step = d.Interlace ? kStep[pass] : 1;
    for (int row = start; row < d.Height; row += step) {
      if (DGifGetLine(gif, line.data(), d.Width) == GIF_ERROR) {
        fail("corrupt or truncated GIF");
      }
      const int y = d.Top + row;
      if (y < 0 || y >= image.height) {
        continue;
      }
      for (int col = 0; col < d.Width; ++col) {
        const int x = d.Left + col;
        const int index = line[static_cast<size_t>(col)];
        if (x < 0 || x >= image.width || index == transparent || index >= map->ColorCount) {
          continue;
        }
        uint8_t* px = image.rgb.data() + (size_t(y) * size_t(image.width) + size_t(x)) * 3;
        px[0] = map->Colors[index].Red;
        px[1] = map->Colors[index].Green;
        px[2] = map->Colors[index].Blue;
      }
    }
  }
  return image;
}

// ---- BMP (stb_image from Debian's libstb; only ever handed files starting with "BM") ----

Image DecodeBmp(std::span<const uint8_t> bytes, std::string_view name, int64_t max_pixels) {
  if (bytes.size() > static_cast<size_t>(std::numeric_limits<int>::max())) {
    Bad(name, "too large");
  }
  const int len = static_cast<int>(bytes.size());
  int w = 0, h = 0, comp = 0;
  if (stbi_info_from_memory(bytes.data(), len, &w, &h, &comp) == 0) {
    Bad(name, std::string("corrupt BMP (") + stbi_failure_reason() + ")");
  }
  CheckSize(name, w, h, max_pixels);
  // stb_image reads zeros past the end of a file; an uncompressed BMP must hold all its rows.
  const auto u16 = [&](size_t at) { return uint32_t{bytes[at]} | uint32_t{bytes[at + 1]} << 8; };
  const auto u32 = [&](size_t at) { return u16(at) | u16(at + 2) << 16; };
  if (bytes.size() >= 34) {
    const uint32_t offset = u32(10);
    const bool os2 = u32(14) == 12;
    const uint32_t bpp = os2 ? u16(24) : u16(28);
    const uint32_t compression = os2 ? 0 : u32(30);
    if (compression == 0 || compression == 3) {
      const uint64_t stride = (uint64_t(w) * bpp + 31) / 32 * 4;
      if (uint64_t{offset} + stride * uint64_t(h) > bytes.size()) {
        Bad(name, "truncated BMP");
      }
    }
  }
  uint8_t* pixels = stbi_load_from_memory(bytes.data(), len, &w, &h, &comp, 3);
  if (pixels == nullptr) {
    Bad(name, std::string("corrupt or truncated BMP (") + stbi_failure_reason() + ")");
  }
  Image image;
  image.width = w;
  image.height = h;
  image.rgb.assign(pixels, pixels + size_t(w) * size_t(h) * 3);
  stbi_image_free(pixels);
  return image;
}

}  // namespace

Image Orient(const Image& image, int orientation) {
  if (orientation <= 1 || orientation > 8) {
    return image;
  }
  const int w = image.width;
  const int h = image.height;
  const bool swap = orientation >= 5;
  Image out;
  out.width = swap ? h : w;
  out.height = swap ? w : h;
  out.rgb.resize(image.rgb.size());
  for (int y = 0; y < out.height; ++y) {
    for (int x = 0; x < out.width; ++x) {
      int sx = x, sy = y;
      switch (orientation) {
        case 2:
          sx = w - 1 - x;
          break;  // mirrored
        case 3:
          sx = w - 1 - x;
          sy = h - 1 - y;
          break;  // upside down
        case 4:
          sy = h - 1 - y;
          break;  // mirrored vertically
        case 5:
          sx = y;
          sy = x;
          break;  // transposed
        case 6:
          sx = y;
          sy = h - 1 - x;
          break;  // turn 90° clockwise to display
        case 7:
          sx = w - 1 - y;
          sy = h - 1 - x;
          break;  // transverse
        default:
          sx = w - 1 - y;
          sy = x;
          break;  // 8: turn 90° counter-clockwise
      }
      std::memcpy(out.rgb.data() + (size_t(y) * size_t(out.width) + size_t(x)) * 3,
                  image.rgb.data() + (size_t(sy) * size_t(w) + size_t(sx)) * 3, 3);
    }
  }
  return out;
}

Image DecodeBytes(std::span<const uint8_t> bytes, std::string_view name, int64_t max_pixels) {
  if (StartsWith(bytes, "\x89PNG\r\n\x1a\n")) {
    return DecodePng(bytes, name, max_pixels);
  }
  if (StartsWith(bytes, "\xff\xd8\xff")) {
    return DecodeJpeg(bytes, name, max_pixels);
  }
  if (StartsWith(bytes, "RIFF") && StartsWith(bytes, "WEBP", 8)) {
    return DecodeWebp(bytes, name, max_pixels);
  }
  if (StartsWith(bytes, "GIF87a") || StartsWith(bytes, "GIF89a")) {
    return DecodeGif(bytes, name, max_pixels);
  }
  if (StartsWith(bytes, "BM")) {
    return DecodeBmp(bytes, name, max_pixels);
  }
  Bad(name, bytes.empty() ? "file is empty" : "not a PNG, JPEG, WebP, GIF or BMP image");
}

Image DecodeFile(const std::string& path, int64_t max_pixels) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    ThrowIo("cannot open image '" + path + "': " + ErrnoText(errno));
  }
  const std::vector<uint8_t> bytes{std::istreambuf_iterator<char>(in),
                                   std::istreambuf_iterator<char>()};
  if (in.bad()) {
    ThrowIo("cannot read image '" + path + "'");
  }
  return DecodeBytes(bytes, path, max_pixels);
}

}  // namespace hearth::vision
