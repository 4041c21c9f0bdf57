// Video frames (vision::DecodeVideo) against videos written here by FFmpeg's own encoders, one
// solid colour per second: the sampled frames' count, times and colours are known in advance.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "base/error.h"
#include "test_video.h"
#include "vision/vision.h"

namespace hearth::vision {
namespace {

using testing::Rgb;
using testing::WriteTestVideo;

const Rgb kRed = {220, 20, 30}, kGreen = {20, 200, 40}, kBlue = {30, 40, 210};

struct Frame {
  double t;
  Image image;
};

std::vector<Frame> Decode(const std::vector<uint8_t>& bytes, double fps, VideoInfo* info = nullptr,
                          int64_t max_pixels = kMaxPixels) {
  std::vector<Frame> frames;
  const VideoInfo i = DecodeVideo(
      bytes, "test", fps,
      [&](const Image& im, double t) {
        frames.push_back({t, im});
      },
      max_pixels);
  if (info) *info = i;
  return frames;
}

std::string TempPath(const std::string& name) {
  return (std::filesystem::temp_directory_path() /
          ("hearth-video-" + std::to_string(::getpid()) + "-" + name))
      .string();
}

// Every pixel within `tol` of `want`.
void ExpectSolid(const Image& im, const Rgb& want, int tol, const std::string& what) {
  ASSERT_EQ(im.rgb.size(), size_t(im.width) * im.height * 3) << what;
  int worst = 0;
  for (size_t i = 0; i < im.rgb.size(); ++i) {
    worst = std::max(worst, std::abs(int(im.rgb[i]) - int(want[i % 3])));
  }
  EXPECT_LE(worst, tol) << what;
}

TEST(Video, LosslessFramesAtOneAndTwoFps) {
  const std::string path = TempPath("png.mkv");
  const auto bytes =
      WriteTestVideo(path, "matroska", AV_CODEC_ID_PNG, 32, 24, 10, {kRed, kGreen, kBlue});
  std::filesystem::remove(path);
  VideoInfo info;
  std::vector<Frame> f = Decode(bytes, 1, &info);
  ASSERT_EQ(f.size(), 3u);
  EXPECT_EQ(info.frames, 3);
  EXPECT_FALSE(info.clipped);
  EXPECT_NEAR(info.seconds, 3.0, 1e-3);
  const Rgb want1[] = {kRed, kGreen, kBlue};
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_DOUBLE_EQ(f[i].t, double(i));
    EXPECT_EQ(f[i].image.width, 32);
    EXPECT_EQ(f[i].image.height, 24);
    ExpectSolid(f[i].image, want1[i], 0, "1 fps frame " + std::to_string(i));
  }
  f = Decode(bytes, 2);
  ASSERT_EQ(f.size(), 6u);
  const Rgb want2[] = {kRed, kRed, kGreen, kGreen, kBlue, kBlue};
  for (size_t i = 0; i < 6; ++i) {
    EXPECT_DOUBLE_EQ(f[i].t, 0.5 * double(i));
    ExpectSolid(f[i].image, want2[i], 0, "2 fps frame " + std::to_string(i));
  }
  // 4 fps is the most; 12 frames.
  EXPECT_EQ(Decode(bytes, 4).size(), 12u);
}

TEST(Video, LossyYuvFramesHaveTheirColours) {
  const std::string path = TempPath("mpeg4.mp4");
  const auto bytes =
      WriteTestVideo(path, "mp4", AV_CODEC_ID_MPEG4, 32, 24, 5, {kRed, kGreen, kBlue});
  std::filesystem::remove(path);
  const std::vector<Frame> f = Decode(bytes, 1);
  ASSERT_EQ(f.size(), 3u);
  const Rgb want[] = {kRed, kGreen, kBlue};
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_DOUBLE_EQ(f[i].t, double(i));
    ExpectSolid(f[i].image, want[i], 12, "mpeg4 frame " + std::to_string(i));
  }
}

TEST(Video, LongerThanSixtySecondsIsCut) {
  const std::string path = TempPath("long.mkv");
  std::vector<Rgb> colours(70, kGreen);
  colours[59] = kRed;
  colours[60] = kBlue;
  const auto bytes = WriteTestVideo(path, "matroska", AV_CODEC_ID_PNG, 8, 8, 1, colours);
  std::filesystem::remove(path);
  VideoInfo info;
  const std::vector<Frame> f = Decode(bytes, 1, &info);
  ASSERT_EQ(f.size(), 60u);
  EXPECT_TRUE(info.clipped);
  EXPECT_DOUBLE_EQ(f.back().t, 59.0);
  ExpectSolid(f.back().image, kRed, 0, "the frame at 59 s");
}

TEST(Video, BadInputIsAClearError) {
  auto expect_invalid = [](const std::vector<uint8_t>& bytes, const std::string& what) {
    try {
      Decode(bytes, 1);
      ADD_FAILURE() << what << ": no error";
    } catch (const Error& e) {
      EXPECT_EQ(e.error_class(), ErrorClass::kInvalidInput) << what;
      EXPECT_NE(e.Describe().find("'test'"), std::string::npos) << e.Describe();
    }
  };
  expect_invalid({}, "empty");
  const std::string text = "this is a text file, not a video at all\n";
  expect_invalid(std::vector<uint8_t>(text.begin(), text.end()), "text");
  // A playlist naming another file: demuxers never open anything but these bytes.
  const std::string m3u =
      "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\n/etc/hostname\n"
      "#EXT-X-ENDLIST\n";
  expect_invalid(std::vector<uint8_t>(m3u.begin(), m3u.end()), "playlist");
  const std::string concat = "ffconcat version 1.0\nfile /etc/hostname\n";
  expect_invalid(std::vector<uint8_t>(concat.begin(), concat.end()), "concat list");
  const std::string path = TempPath("cut.mkv");
  const auto bytes =
      WriteTestVideo(path, "matroska", AV_CODEC_ID_PNG, 32, 24, 10, {kRed, kGreen, kBlue});
  std::filesystem::remove(path);
  // Cut inside the header: nothing decodable.
  expect_invalid(std::vector<uint8_t>(bytes.begin(), bytes.begin() + 64), "header cut");
  // Cut anywhere: an error or fewer frames, never a crash.
  for (size_t cut = 16; cut < bytes.size(); cut += bytes.size() / 23) {
    try {
      const auto f = Decode(std::vector<uint8_t>(bytes.begin(), bytes.begin() + cut), 1);
      EXPECT_LE(f.size(), 3u);
    } catch (const Error& e) {
      EXPECT_EQ(e.error_class(), ErrorClass::kInvalidInput) << cut;
    }
  }
  // The pixel cap (decompression bombs) and the frame rate range.
  try {
    Decode(bytes, 1, nullptr, 32 * 24 - 1);
    ADD_FAILURE() << "pixel cap";
  } catch (const Error& e) {
    EXPECT_NE(e.Describe().find("pixels"), std::string::npos) << e.Describe();
  }
  EXPECT_THROW(Decode(bytes, 0), Error);
  EXPECT_THROW(Decode(bytes, 4.5), Error);
}

}  // namespace
}  // namespace hearth::vision
