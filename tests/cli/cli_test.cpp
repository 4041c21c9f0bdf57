// The `hearth` binary as a user meets it: help, version, the one error style and exit codes.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <string>
#include <vector>

#include "cli_test_util.h"

namespace {

using namespace hearth::cli_test;  // NOLINT(google-build-using-namespace): test helpers

TEST(Cli, VersionNamesTheCommit) {
  Result r = RunHearth("--version");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("hearth 0."), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("commit "), std::string::npos) << r.out;
}

TEST(Cli, HelpListsRealSubcommands) {
  Result r = RunHearth("--help");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("info"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Exit codes"), std::string::npos);
}

TEST(Cli, EverySubcommandHasHelp) {
  for (const char* sub : {"info"}) {
    Result r = RunHearth(std::string(sub) + " --help");
    EXPECT_EQ(r.exit_code, 0) << sub;
    EXPECT_NE(r.out.find("Usage"), std::string::npos) << sub << ": " << r.out;
  }
}

TEST(Cli, UsageErrorsUseTheOneStyleAndExitTwo) {
  Result r = RunHearth("info --no-such-flag");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err.rfind("hearth: error: ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find("--help"), std::string::npos) << r.err;

  r = RunHearth("no-such-command");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err.rfind("hearth: error: ", 0), 0u) << r.err;

  r = RunHearth("");
  EXPECT_EQ(r.exit_code, 2);
}

TEST(Cli, UnknownCommandIsNamedWithAPointerToHelp) {
  Result r = RunHearth("frobnicate --now");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "hearth: error: unknown command 'frobnicate' (see hearth --help)\n");
  Result none = RunHearth("");
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_EQ(none.err, "hearth: error: a command is required (see hearth --help)\n");
  // A real command still parses, and an unknown flag before any command is still CLI11's error.
  EXPECT_EQ(RunHearth("--version").exit_code, 0);
  EXPECT_EQ(RunHearth("--frob").exit_code, 2);
  Result help = RunHearth("help");  // as `git help`, `ollama help`
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("Exit codes"), std::string::npos) << help.out;
}

TEST(Cli, MissingFileIsAnIoErrorNamingTheFile) {
  Result r = RunHearth("info -m /nonexistent/x.gguf");
  EXPECT_EQ(r.exit_code, 4);
  EXPECT_EQ(r.err.rfind("hearth: error: cannot open '/nonexistent/x.gguf'", 0), 0u) << r.err;
  EXPECT_NE(r.err.find("("), std::string::npos) << "no hint: " << r.err;
}

TEST(Cli, InvalidFileIsAnInputError) {
  Result r = RunHearth(std::string("info -m ") + HEARTH_SOURCE_DIR + "/CMakeLists.txt");
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.err.find("not a GGUF file"), std::string::npos) << r.err;
}

TEST(Cli, InfoDescribesAFixtureModel) {
  Result r = RunHearth(std::string("info -m ") + HEARTH_SHARED_DIR +
                       "/fixtures/models/tiny-moe.Q4_K_M.gguf --tensors");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("architecture:  gemma4"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Q4_K x20"), std::string::npos) << r.out;  // refs/README.md §2
  EXPECT_NE(r.out.find("ffn_gate_up_exps"), std::string::npos);
}

// --cache-type (and llama.cpp's -ctk / -ctv) on every command that runs a model: a value that
// is not a KV cache type is a usage error listing the valid ones; precise mode refuses it; info
// sizes the cache for it; logits runs with it.
TEST(Cli, CacheTypeFlag) {
  const std::string model = std::string(HEARTH_SHARED_DIR) + "/fixtures/models/tiny-e.Q8_0.gguf";
  const std::string out = ::testing::TempDir() + "kv_logits_" + std::to_string(::getpid());
  for (const std::string& cmd : std::vector<std::string>{
           "run -p hi -n 1", "chat --plain", "ask --no-index what", "serve --port 0", "bench -r 1",
           "logits --tokens 2,3 --out " + out, "info", "transcribe x.wav"}) {
    for (const std::string flag : {"--cache-type q5_1", "-ctk q5_1", "-ctv q5_1"}) {
      SCOPED_TRACE(cmd + " " + flag);
      const Result r = RunHearth(cmd + " -m " + model + " " + flag);
      EXPECT_EQ(r.exit_code, 2) << r.err;
      EXPECT_NE(r.err.find("unknown KV cache type"), std::string::npos) << r.err;
      EXPECT_NE(r.err.find("f16, q8_0, q4_0"), std::string::npos) << r.err;
    }
  }
  Result r = RunHearth("logits -m " + model + " --tokens 2,3 --out " + out +
                       " --precise --cache-type q8_0");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("precise mode keeps an F32 KV cache"), std::string::npos) << r.err;

  // tiny-e at 1024 positions (kv_type_test has the sum by hand): 372352 bytes in F16, 197812 in
  // Q8_0, 104724 in Q4_0.
  r = RunHearth("info -m " + model + " -c 1024 --cache-type q8_0");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("193.2 KiB q8_0 KV cache at 1024 positions"), std::string::npos) << r.out;
  r = RunHearth("info -m " + model + " -c 1024 -ctk q4_0");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("q4_0/f16 KV cache at 1024 positions"), std::string::npos) << r.out;
  r = RunHearth("info -m " + model + " -c 1024");
  EXPECT_NE(r.out.find("363.6 KiB f16 KV cache at 1024 positions"), std::string::npos) << r.out;

  for (const std::string flags : {"--cache-type q8_0", "-ctk q4_0 -ctv q8_0"}) {
    r = RunHearth("logits -m " + model + " --tokens 2,3,4,5 --out " + out + " " + flags);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(Slurp(out).size(), size_t{4} * 4096 * sizeof(float)) << flags;
  }
  std::remove(out.c_str());
}

}  // namespace
