// The capped whole-file reader that media files named by the user go through: the bytes of a
// file written here, and each way it refuses (a directory, a missing file, a file over the cap).
#include "base/read_file.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "base/error.h"

namespace hearth {
namespace {

namespace fs = std::filesystem;

class ReadWholeFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ =
        fs::temp_directory_path() /
        ("hearth_read_file_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
         "_" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Write(const std::string& name, const std::string& bytes) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
  }

  // The error ReadWholeFile throws for `path`, or a failure when it throws none.
  Error Thrown(const std::string& path, std::uintmax_t max_bytes) {
    try {
      ReadWholeFile(path, "a media file", max_bytes, "at most so much");
    } catch (const Error& e) {
      return e;
    }
    ADD_FAILURE() << "no error for " << path;
    return Error(ErrorClass::kInternal, "none");
  }

  fs::path dir_;
};

TEST_F(ReadWholeFileTest, ReadsEveryByte) {
  const std::string bytes("a\0b\xff\n", 5);  // binary, with a NUL and a high byte
  EXPECT_EQ(ReadWholeFile(Write("x.bin", bytes), "a media file"), bytes);
  EXPECT_EQ(ReadWholeFile(Write("empty", ""), "a media file"), "");
}

TEST_F(ReadWholeFileTest, AFileAtTheCapIsRead) {
  EXPECT_EQ(ReadWholeFile(Write("four", "1234"), "a media file", 4), "1234");
}

TEST_F(ReadWholeFileTest, AFileOverTheCapIsBadInput) {
  // 1 MiB + 1 byte against a 1 MiB cap: refused, and the message gives the size in MiB.
  const std::string path = Write("big", std::string((1u << 20) + 1, 'x'));
  const Error e = Thrown(path, 1u << 20);
  EXPECT_EQ(e.error_class(), ErrorClass::kInvalidInput);
  EXPECT_EQ(std::string(e.what()), "'" + path + "' is 1 MiB; at most so much");
}

TEST_F(ReadWholeFileTest, ADirectoryIsAnIoError) {
  const std::string dir = dir_.string();
  const Error e = Thrown(dir, 100);
  EXPECT_EQ(e.error_class(), ErrorClass::kIo);
  EXPECT_EQ(std::string(e.what()), "'" + dir + "' is a directory, not a media file");
}

TEST_F(ReadWholeFileTest, AMissingFileIsAnIoError) {
  const std::string path = (dir_ / "absent.png").string();
  const Error e = Thrown(path, 100);
  EXPECT_EQ(e.error_class(), ErrorClass::kIo);
  EXPECT_EQ(std::string(e.what()).rfind("cannot read '" + path + "': ", 0), 0u) << e.what();
  EXPECT_EQ(e.hint(), "check the path");
}

}  // namespace
}  // namespace hearth
