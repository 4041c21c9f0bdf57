// Everyday use through the real binary: prompts from files and pipes, `-` for stdin, `.hearth/`
// keeping itself out of git, the root outside a repository, and hints that name real flags.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "cli_test_util.h"

namespace {

using namespace hearth::cli_test;  // NOLINT(google-build-using-namespace): test helpers

namespace fs = std::filesystem;

const std::string kModels = std::string(HEARTH_SHARED_DIR) + "/fixtures/models/";

class Everyday : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) /
           ("hearth_everyday_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    dir_ = fs::canonical(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // hearth in `cwd` (default: the test's directory); `stdin_from` a file, or /dev/null.
  Result Run(const std::string& args, const std::string& stdin_from = "/dev/null",
             const std::string& env = "", const fs::path& cwd = {}) {
    static int call = 0;
    const std::string stem = (dir_ / ("call" + std::to_string(call++))).string();
    const std::string cmd = "cd '" + (cwd.empty() ? dir_ : cwd).string() + "' && " + env + " " +
                            HEARTH_BINARY + " " + args + " <'" + stdin_from + "'";
    return RunCaptured(cmd, stem);
  }

  fs::path dir_;
};

TEST_F(Everyday, RunTakesThePromptFromAFileStdinOrAPipe) {
  const std::string m = "-m " + kModels + "tiny-e.Q8_0.gguf -n 6 --temp 0 -t 1 ";
  const Result ref = Run("run " + m + "-p 'The cat sat'");
  ASSERT_EQ(ref.exit_code, 0) << ref.err;
  ASSERT_EQ(ref.out.rfind("The cat sat", 0), 0u) << ref.out;
  Write(dir_ / "prompt.txt", "The cat sat");
  for (const auto& [args, in] : {std::pair<std::string, std::string>{"-f prompt.txt", "/dev/null"},
                                 {"--file prompt.txt", "/dev/null"},
                                 {"-p -", (dir_ / "prompt.txt").string()},
                                 {"-f -", (dir_ / "prompt.txt").string()},
                                 {"", (dir_ / "prompt.txt").string()}}) {
    const Result r = Run("run " + m + args, in);
    EXPECT_EQ(r.exit_code, 0) << args << ": " << r.err;
    EXPECT_EQ(r.out, ref.out) << args;
  }
  const Result both = Run("run " + m + "-p x -f prompt.txt");
  EXPECT_EQ(both.exit_code, 2) << both.err;
  const Result missing = Run("run " + m + "-f nope.txt");
  EXPECT_EQ(missing.exit_code, 4) << missing.err;
  EXPECT_NE(missing.err.find("nope.txt"), std::string::npos) << missing.err;
}

TEST_F(Everyday, DashReadsStdinForTokenizeRenderChatAndParseOutput) {
  const std::string vocab = "-m " + kModels + "tiny-e.Q8_0.gguf ";
  Write(dir_ / "text.txt", "Hello <turn|> world");
  const Result tok = Run("tokenize " + vocab + "--file text.txt");
  ASSERT_EQ(tok.exit_code, 0) << tok.err;
  const Result tok_in = Run("tokenize " + vocab + "--file -", (dir_ / "text.txt").string());
  EXPECT_EQ(tok_in.exit_code, 0) << tok_in.err;
  EXPECT_EQ(tok_in.out, tok.out);

  Write(dir_ / "chat.json",
        R"({"messages":[{"role":"user","content":"Hi"}],"add_generation_prompt":true})");
  const Result chat = Run("render-chat " + vocab + "--input chat.json");
  ASSERT_EQ(chat.exit_code, 0) << chat.err;
  EXPECT_NE(chat.out.find("<|turn>user\nHi<turn|>"), std::string::npos) << chat.out;
  const Result chat_in = Run("render-chat " + vocab + "--input -", (dir_ / "chat.json").string());
  EXPECT_EQ(chat_in.exit_code, 0) << chat_in.err;
  EXPECT_EQ(chat_in.out, chat.out);

  Write(dir_ / "raw.txt", "The answer.");
  const Result parsed = Run("parse-output --input raw.txt");
  ASSERT_EQ(parsed.exit_code, 0) << parsed.err;
  EXPECT_NE(parsed.out.find("\"content\":\"The answer.\""), std::string::npos) << parsed.out;
  const Result parsed_in = Run("parse-output --input -", (dir_ / "raw.txt").string());
  EXPECT_EQ(parsed_in.exit_code, 0) << parsed_in.err;
  EXPECT_EQ(parsed_in.out, parsed.out);
}

TEST_F(Everyday, HearthDirKeepsItselfOutOfGit) {
  Write(dir_ / "a.c", "int main(void) { return 0; }\n");
  ASSERT_EQ(std::system(("git -C '" + dir_.string() + "' init -q").c_str()), 0);
  const Result r = Run("index");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string ignore = Slurp(dir_ / ".hearth/.gitignore");
  EXPECT_NE(ignore.find("\n*\n"), std::string::npos) << ignore;
  const std::string status = dir_.string() + "/status.txt";
  ASSERT_EQ(
      std::system(("git -C '" + dir_.string() + "' status --porcelain >'" + status + "'").c_str()),
      0);
  EXPECT_EQ(Slurp(status), "?? a.c\n?? status.txt\n");
  // A .gitignore of the user's own is kept as it is.
  Write(dir_ / ".hearth/.gitignore", "index.db\n");
  ASSERT_EQ(Run("index").exit_code, 0);
  EXPECT_EQ(Slurp(dir_ / ".hearth/.gitignore"), "index.db\n");
}

TEST_F(Everyday, HearthDirLinkIsNotWrittenThrough) {
  const fs::path elsewhere = dir_ / "elsewhere";
  fs::create_directories(elsewhere);
  fs::create_directories(dir_ / "repo/.git");
  Write(dir_ / "repo/a.c", "int x;\n");
  fs::create_directory_symlink(elsewhere, dir_ / "repo/.hearth");
  Run("index", "/dev/null", "", dir_ / "repo");
  EXPECT_FALSE(fs::exists(elsewhere / ".gitignore"));
}

TEST_F(Everyday, AskOutsideARepositorySaysWhichRootAndRefusesHome) {
  const std::string ask = "ask --no-index --backend http://127.0.0.1:9 hello";
  const Result r = Run(ask);
  EXPECT_EQ(r.exit_code, 4) << r.err;  // the backend is unreachable: the root was accepted
  EXPECT_NE(r.err.find("using " + dir_.string() + " as the root"), std::string::npos) << r.err;
  const std::string home = "HOME='" + dir_.string() + "'";
  const Result h = Run(ask, "/dev/null", home);
  EXPECT_EQ(h.exit_code, 2) << h.err;
  EXPECT_NE(h.err.find("your home directory is too wide a root"), std::string::npos) << h.err;
  EXPECT_NE(h.err.find("--root"), std::string::npos) << h.err;
  EXPECT_EQ(Run(ask + " --root .", "/dev/null", home).exit_code, 4);
  const Result root = Run(ask, "/dev/null", "", "/");
  EXPECT_EQ(root.exit_code, 2) << root.err;
  EXPECT_NE(root.err.find("/ is too wide"), std::string::npos) << root.err;
}

TEST_F(Everyday, HintsNameFlagsThatExist) {
  Write(dir_ / "a.c", "int main(void) { return 0; }\n");
  ASSERT_EQ(Run("index").exit_code, 0);
  const Result lang = Run("search --lang cobol main");
  EXPECT_EQ(lang.exit_code, 2) << lang.err;
  EXPECT_NE(lang.err.find("unknown language 'cobol'"), std::string::npos) << lang.err;
  EXPECT_NE(lang.err.find(" python "), std::string::npos) << lang.err;
  EXPECT_EQ(Run("search --lang c main").exit_code, 0);

  const std::string m = "-m " + kModels + "tiny-e.Q8_0.gguf ";
  const Result tmpl = Run("chat --plain " + m + "--chat-template bogus");
  EXPECT_EQ(tmpl.exit_code, 2) << tmpl.err;
  EXPECT_NE(tmpl.err.find("--chat-template official"), std::string::npos) << tmpl.err;
  EXPECT_EQ(tmpl.err.find("--template official"), std::string::npos) << tmpl.err;

  const Result bench = Run("bench " + m + "-p 9000 -n 1 -r 1");
  EXPECT_EQ(bench.exit_code, 6) << bench.err;
  EXPECT_NE(bench.err.find("maximum context of 8192"), std::string::npos) << bench.err;
  EXPECT_NE(bench.err.find("lower -p, -n or --depth"), std::string::npos) << bench.err;
  EXPECT_EQ(bench.err.find("-c"), std::string::npos) << bench.err;

  fs::create_directories(dir_ / ".git");
  const Result file = Run("ask --no-index --backend http://127.0.0.1:9 --file nope.md hello");
  EXPECT_NE(file.exit_code, 0);
  EXPECT_NE(file.err.find("--file nope.md"), std::string::npos) << file.err;
  EXPECT_EQ(file.err.find("list_dir"), std::string::npos) << file.err;
}

TEST_F(Everyday, QuantizeWarnsOnQuantizedInputAndShowsProgress) {
  const Result again = Run("quantize " + kModels + "tiny-dense.Q8_0.gguf out.gguf Q4_0 -t 1");
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_NE(again.err.find("is already quantized (Q8_0)"), std::string::npos) << again.err;
  EXPECT_NE(again.err.find("hearth: quantize: "), std::string::npos) << again.err;
  EXPECT_NE(again.err.find("(100%)"), std::string::npos) << again.err;
  const Result fresh = Run("quantize " + kModels + "tiny-dense.F32.gguf out2.gguf Q8_0 -t 1");
  EXPECT_EQ(fresh.exit_code, 0) << fresh.err;
  EXPECT_EQ(fresh.err.find("already quantized"), std::string::npos) << fresh.err;
  EXPECT_NE(fresh.err.find("(100%)"), std::string::npos) << fresh.err;
}

TEST_F(Everyday, LlamaCppFlagsWorkOrSayWhatToDoInstead) {
  const std::string m = "-m " + kModels + "tiny-e.Q8_0.gguf -n 2 --temp 0 -t 1 -p hi ";
  // -ngl and --jinja: accepted, with a note (CLI11 alone read -ngl as -n -g -l: a parse error).
  const Result ngl = Run("run " + m + "-ngl 99 --jinja");
  EXPECT_EQ(ngl.exit_code, 0) << ngl.err;
  EXPECT_NE(ngl.err.find("-ngl is ignored"), std::string::npos) << ngl.err;
  EXPECT_NE(ngl.err.find("--jinja is not needed"), std::string::npos) << ngl.err;
  const Result plain = Run("run " + m);
  EXPECT_EQ(ngl.out, plain.out);  // ignored means ignored
  // -cnv: run is not a conversation; -hf: only pull downloads.
  const Result cnv = Run("run " + m + "-cnv");
  EXPECT_EQ(cnv.exit_code, 2) << cnv.err;
  EXPECT_NE(cnv.err.find("hearth chat --plain -m MODEL"), std::string::npos) << cnv.err;
  const Result hf = Run("run -hf ggml-org/gemma-4-E4B-it-GGUF:Q4_K_M -p hi");
  EXPECT_EQ(hf.exit_code, 2) << hf.err;
  EXPECT_NE(hf.err.find("hearth pull https://huggingface.co/ggml-org/gemma-4-E4B-it-GGUF/"),
            std::string::npos)
      << hf.err;
  const Result grammar = Run("run " + m + "--grammar 'root ::= \"a\"'");
  EXPECT_EQ(grammar.exit_code, 2) << grammar.err;
  EXPECT_NE(grammar.err.find("--json-schema"), std::string::npos) << grammar.err;
  // In chat, -cnv is what chat is anyway.
  const Result chat = Run("chat --plain -m " + kModels + "tiny-e.Q8_0.gguf -n 2 -t 1 -cnv -ngl 1");
  EXPECT_EQ(chat.exit_code, 0) << chat.err;
}

TEST_F(Everyday, RunJsonSchemaConstrainsTheContinuation) {
  const std::string schema =
      R"({"type":"object","properties":{"n":{"type":"integer"},"ok":{"type":"boolean"}},)"
      R"("required":["n","ok"],"additionalProperties":false})";
  Write(dir_ / "schema.json", schema);
  for (const std::string& how :
       {"--json-schema '" + schema + "'", std::string("-j '") + schema + "'",
        std::string("--json-schema-file schema.json")}) {
    for (int seed : {1, 2, 3}) {
      const Result r = Run("run -m " + kModels + "tiny-e.Q8_0.gguf -p 'Data:' -n 48 --temp 1.5 " +
                           "-t 1 --no-display-prompt --seed " + std::to_string(seed) + " " + how);
      ASSERT_EQ(r.exit_code, 0) << how << ": " << r.err;
      const nlohmann::json j = nlohmann::json::parse(r.out, nullptr, false);
      ASSERT_TRUE(j.is_object()) << how << " seed " << seed << ": " << r.out;
      EXPECT_EQ(j.size(), 2u) << r.out;
      EXPECT_TRUE(j["n"].is_number_integer()) << r.out;
      EXPECT_TRUE(j["ok"].is_boolean()) << r.out;
    }
  }
  const Result bad = Run("run -m " + kModels + "tiny-e.Q8_0.gguf -p x --json-schema '{nope'");
  EXPECT_EQ(bad.exit_code, 2) << bad.err;
  const Result kw = Run("run -m " + kModels + "tiny-e.Q8_0.gguf -p x --json-schema " +
                        R"('{"type":"string","pattern":"a+"}')");
  EXPECT_EQ(kw.exit_code, 3) << kw.err;
  EXPECT_NE(kw.err.find("pattern"), std::string::npos) << kw.err;
}

}  // namespace
