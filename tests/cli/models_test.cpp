// Models by name, through the real binary: -m resolves a path, a file in the model folder, a
// catalog short name (and its gemma4: alias), then a model of a local Ollama store (a fake
// ~/.ollama tree built here); `hearth models`/`list`, `rm`, `show`, the configured default model
// and the not-found message.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "cli_test_util.h"

namespace {

using namespace hearth::cli_test;  // NOLINT(google-build-using-namespace): test helpers

namespace fs = std::filesystem;

std::string Fixture(const std::string& name) {
  return std::string(HEARTH_SHARED_DIR) + "/fixtures/models/" + name;
}

// A fresh HOME with no model settings from the environment of the test run.
class ModelsByName : public ::testing::Test {
 protected:
  void SetUp() override {
    home_ = fs::path(::testing::TempDir()) /
            ("hearth_models_" + std::to_string(::getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(home_);
    fs::create_directories(home_);
    folder_ = home_ / ".cache/hearth/models";
    ollama_ = home_ / ".ollama/models";
  }
  void TearDown() override { fs::remove_all(home_); }

  Result Run(const std::string& args, const std::string& env = "") {
    static int call = 0;
    const std::string stem = (home_ / ("call" + std::to_string(call++))).string();
    const std::string cmd = "cd '" + home_.string() +
                            "' && env -u XDG_CONFIG_HOME -u XDG_CACHE_HOME -u HEARTH_MODELS "
                            "-u OLLAMA_MODELS HOME='" +
                            home_.string() + "' " + env + " " + HEARTH_BINARY + " " + args +
                            " </dev/null";
    return RunCaptured(cmd, stem);
  }

  // The e4b catalog file, as `hearth pull e4b` leaves it (a tiny fixture under that name).
  void PutE4bInFolder() {
    fs::create_directories(folder_);
    fs::copy_file(Fixture("tiny-e.Q4_K_M.gguf"), folder_ / "gemma-4-E4B-it-Q4_K_M.gguf");
  }
  // An Ollama store holding `gemma4:e2b` (and `me/custom:v1`) as Ollama lays it out: a manifest
  // per name and tag, naming a content-addressed blob.
  fs::path PutOllamaModel(const std::string& rel_manifest, char digit) {
    const std::string hex(64, digit);
    const fs::path blob = ollama_ / "blobs" / ("sha256-" + hex);
    fs::create_directories(blob.parent_path());
    if (!fs::exists(blob)) fs::copy_file(Fixture("tiny-moe.Q8_0.gguf"), blob);
    Write(ollama_ / "manifests" / rel_manifest,
          R"({"schemaVersion":2,"config":{"digest":"sha256:)" + std::string(64, 'c') +
              R"(","size":10},"layers":[{"mediaType":"application/vnd.ollama.image.template",)"
              R"("digest":"sha256:)" +
              std::string(64, 'd') +
              R"(","size":5},{"mediaType":"application/vnd.ollama.image.model","digest":"sha256:)" +
              hex + R"(","size":)" + std::to_string(fs::file_size(blob)) + "}]}");
    return blob;
  }
  // The token ids of "hello" with the tokenizer of a fixture given by path: the reference.
  std::string TokensByPath(const std::string& fixture) {
    Result r = Run("tokenize -m " + Fixture(fixture) + " hello");
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.out;
  }

  fs::path home_, folder_, ollama_;
};

TEST_F(ModelsByName, FolderFileShortNameAndAliasAllNameTheSameFile) {
  PutE4bInFolder();
  const std::string want = TokensByPath("tiny-e.Q4_K_M.gguf");
  for (const char* name :
       {"gemma-4-E4B-it-Q4_K_M.gguf", "gemma-4-E4B-it-Q4_K_M", "e4b", "gemma4:e4b"}) {
    Result r = Run(std::string("tokenize -m ") + name + " hello");
    EXPECT_EQ(r.exit_code, 0) << name << ": " << r.err;
    EXPECT_EQ(r.out, want) << name;
  }
  // `show` is `info`, with the name as an argument.
  Result show = Run("show e4b");
  EXPECT_EQ(show.exit_code, 0) << show.err;
  EXPECT_NE(show.out.find("architecture:  gemma4"), std::string::npos) << show.out;
  EXPECT_EQ(show.out, Run("info -m gemma4:e4b").out);
  // A path still wins over a name: a file called e4b in the current directory.
  fs::copy_file(Fixture("tiny-dense.Q8_0.gguf"), home_ / "e4b");
  EXPECT_EQ(Run("tokenize -m e4b hello").out, TokensByPath("tiny-dense.Q8_0.gguf"));
}

TEST_F(ModelsByName, OllamaStoreIsReadInPlace) {
  const fs::path blob = PutOllamaModel("registry.ollama.ai/library/gemma4/e2b", 'a');
  PutOllamaModel("registry.ollama.ai/me/custom/v1", 'a');
  const std::string want = TokensByPath("tiny-moe.Q8_0.gguf");
  for (const char* name : {"gemma4:e2b", "me/custom:v1", "registry.ollama.ai/me/custom:v1"}) {
    Result r = Run(std::string("tokenize -m ") + name + " hello");
    EXPECT_EQ(r.exit_code, 0) << name << ": " << r.err;
    EXPECT_EQ(r.out, want) << name;
  }
  // Nothing was copied into hearth's model folder.
  EXPECT_FALSE(fs::exists(folder_));
  // `gemma4` alone is the tag `latest`, which this store does not have.
  EXPECT_EQ(Run("tokenize -m gemma4 hello").exit_code, 4);
  Result list = Run("list");
  EXPECT_EQ(list.exit_code, 0) << list.err;
  EXPECT_NE(list.out.find("gemma4:e2b"), std::string::npos) << list.out;
  EXPECT_NE(list.out.find("me/custom:v1"), std::string::npos) << list.out;
  EXPECT_NE(list.out.find("ollama: " + blob.string()), std::string::npos) << list.out;
  EXPECT_NE(list.out.find("Q8_0"), std::string::npos) << list.out;
  // $OLLAMA_MODELS moves the store, as for Ollama itself.
  fs::rename(ollama_, home_ / "elsewhere");
  EXPECT_EQ(Run("tokenize -m gemma4:e2b hello").exit_code, 4);
  Result moved =
      Run("tokenize -m gemma4:e2b hello", "OLLAMA_MODELS='" + (home_ / "elsewhere").string() + "'");
  EXPECT_EQ(moved.exit_code, 0) << moved.err;
  EXPECT_EQ(moved.out, want);
}

TEST_F(ModelsByName, AManifestCannotLeadOutsideTheBlobs) {
  Write(home_ / "secret.gguf", Slurp(Fixture("tiny-moe.Q8_0.gguf")));
  Write(ollama_ / "manifests/registry.ollama.ai/library/evil/latest",
        R"({"layers":[{"mediaType":"application/vnd.ollama.image.model",)"
        R"("digest":"sha256:../../../secret.gguf"}]})");
  Write(ollama_ / "manifests/registry.ollama.ai/library/junk/latest", "not json {");
  Result r = Run("tokenize -m evil hello");
  EXPECT_EQ(r.exit_code, 4) << r.out;
  EXPECT_EQ(Run("tokenize -m junk hello").exit_code, 4);
  EXPECT_EQ(Run("tokenize -m ../../../../secret.gguf:x hello").exit_code, 4);
  Result list = Run("models");
  EXPECT_EQ(list.exit_code, 0) << list.err;
  EXPECT_EQ(list.out.find("evil"), std::string::npos) << list.out;
}

TEST_F(ModelsByName, ModelsListsNameSizeTypeVariantAndPlace) {
  PutE4bInFolder();
  Write(folder_ / "half.gguf.part", "xyz");
  Result r = Run("models");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  // The catalog file is listed under its short name, with the type from general.file_type.
  std::string row;
  for (size_t at = 0; at < r.out.size();) {
    const size_t nl = r.out.find('\n', at);
    const std::string line = r.out.substr(at, nl - at);
    if (line.starts_with("e4b ")) row = line;
    at = nl == std::string::npos ? r.out.size() : nl + 1;
  }
  ASSERT_FALSE(row.empty()) << r.out;
  EXPECT_NE(row.find("3.4 MiB"), std::string::npos) << row;  // 3534080 bytes
  EXPECT_NE(row.find("Q4_K_M"), std::string::npos) << row;
  EXPECT_NE(row.find("model folder: " + (folder_ / "gemma-4-E4B-it-Q4_K_M.gguf").string()),
            std::string::npos)
      << row;
  EXPECT_NE(r.out.find("half.gguf.part"), std::string::npos);
  EXPECT_NE(r.out.find("incomplete download"), std::string::npos);
  EXPECT_EQ(Run("list").out, r.out);
}

TEST_F(ModelsByName, NotFoundListsWhatIsThereAndHowToPull) {
  PutE4bInFolder();
  PutOllamaModel("registry.ollama.ai/library/gemma4/e2b", 'b');
  Result r = Run("run -m nosuch -p hi -n 1");
  EXPECT_EQ(r.exit_code, 4);
  EXPECT_EQ(r.err.rfind("hearth: error: cannot open 'nosuch'", 0), 0u) << r.err;
  EXPECT_NE(r.err.find("gemma-4-E4B-it-Q4_K_M.gguf"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("gemma4:e2b (ollama)"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("hearth pull NAME"), std::string::npos) << r.err;
  // A catalog name that is not downloaded says exactly what to run.
  Result p = Run("info -m 31b");
  EXPECT_EQ(p.exit_code, 4);
  EXPECT_NE(p.err.find("`hearth pull 31b`"), std::string::npos) << p.err;
}

TEST_F(ModelsByName, ConfiguredDefaultModelNeedsNoFlag) {
  PutE4bInFolder();
  Result none = Run("tokenize hello");
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_NE(none.err.find("no model given"), std::string::npos) << none.err;
  EXPECT_NE(none.err.find("gemma-4-E4B-it-Q4_K_M.gguf"), std::string::npos) << none.err;
  Write(home_ / ".config/hearth/config.toml", "[agent]\nmodel = \"e4b\"\n");
  Result r = Run("tokenize hello");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, TokensByPath("tiny-e.Q4_K_M.gguf"));
  EXPECT_EQ(Run("show").out, Run("info -m e4b").out);
}

TEST_F(ModelsByName, RmDeletesOnlyFromTheModelFolder) {
  PutE4bInFolder();
  const fs::path blob = PutOllamaModel("registry.ollama.ai/library/gemma4/e2b", 'a');
  Write(home_ / "mine.gguf", "x");
  Result o = Run("rm gemma4:e2b");
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_NE(o.err.find("ollama rm gemma4:e2b"), std::string::npos) << o.err;
  EXPECT_TRUE(fs::exists(blob));
  EXPECT_EQ(Run("rm ../../../mine.gguf").exit_code, 2);
  EXPECT_EQ(Run("rm " + (home_ / "mine.gguf").string()).exit_code, 2);
  EXPECT_TRUE(fs::exists(home_ / "mine.gguf"));
  Result r = Run("rm e4b");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(fs::exists(folder_ / "gemma-4-E4B-it-Q4_K_M.gguf"));
  Result gone = Run("info -m e4b");
  EXPECT_EQ(gone.exit_code, 4);
  EXPECT_NE(gone.err.find("hearth pull e4b"), std::string::npos) << gone.err;
}

TEST_F(ModelsByName, HelpListsTheNewCommands) {
  Result r = Run("--help");
  for (const char* c : {"models", "rm", "info"}) {
    EXPECT_NE(r.out.find(std::string("  ") + c), std::string::npos) << c << "\n" << r.out;
  }
}

}  // namespace
