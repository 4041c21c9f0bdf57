// Zero egress: `hearth ask` with the local engine works where network sockets are impossible
// (tests/agent/no_network_exec.cpp: seccomp makes socket() fail for everything but AF_UNIX).
// Control assertions show the sandbox really blocks the network, so the main test cannot pass
// vacuously.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

#include "agent_test_util.h"
#include "file_server.h"

namespace hearth::agent {
namespace {

namespace fs = std::filesystem;
using testing::FileServer;
using testing::Route;
using testing::TempRepo;
using testing::Write;

using Result = testing::ShellResult;

Result Shell(const fs::path& dir, const std::string& cmdline) {
  const std::string cmd = "cd '" + dir.string() + "' && " + cmdline + " </dev/null 2>&1";
  return testing::RunShell(cmd);
}

const std::string kSandbox = std::string("'") + NO_NETWORK_EXEC + "' ";
const std::string kHearth = std::string("'") + HEARTH_BINARY + "' ";

// Skips the test when this kernel or container does not allow seccomp filters.
#define SKIP_WITHOUT_SECCOMP(dir)                                                            \
  do {                                                                                       \
    Result probe = Shell(dir, kSandbox + "--check");                                         \
    if (probe.code == 77) GTEST_SKIP() << "seccomp unavailable: " << probe.out;              \
    ASSERT_EQ(probe.code, 0) << "the sandbox does not block AF_INET sockets: " << probe.out; \
  } while (0)

// The control: a pull from a server that is up and answering succeeds outside the sandbox and
// fails inside it, and the server never sees the sandboxed request.
TEST(EgressTest, SandboxReallyBlocksTheNetwork) {
  TempRepo dir;
  SKIP_WITHOUT_SECCOMP(dir.path());
  FileServer server;
  server.Set("/m.gguf", Route{.body = std::string(1000, 'g')});
  const std::string pull =
      "pull -q --dir '" + (dir.path() / "models").string() + "' " + server.url("/m.gguf");
  Result inside = Shell(dir.path(), kSandbox + kHearth + pull);
  EXPECT_EQ(inside.code, 4) << inside.out;
  EXPECT_NE(inside.out.find("hearth: error: cannot reach"), std::string::npos) << inside.out;
  EXPECT_TRUE(server.requests().empty());
  EXPECT_FALSE(fs::exists(dir.path() / "models/m.gguf"));

  Result outside = Shell(dir.path(), kHearth + pull);
  EXPECT_EQ(outside.code, 0) << outside.out;
  EXPECT_EQ(server.requests().size(), 1u);
  EXPECT_TRUE(fs::exists(dir.path() / "models/m.gguf"));
}

// `hearth ask` on the tiny fixture model with no network at all: it answers and exits 0.
TEST(EgressTest, AskWithLocalEngineNeedsNoNetwork) {
  TempRepo repo;
  SKIP_WITHOUT_SECCOMP(repo.path());
  Write(repo.path() / "main.c", "int main(void) { return 0; }\n");
  const std::string model = std::string(HEARTH_SHARED_DIR) + "/fixtures/models/tiny-e.Q8_0.gguf";
  Result r = Shell(repo.path(), kSandbox + kHearth + "ask -m '" + model +
                                    "' -n 16 --max-steps 2 -t 1 --permissions read-only -v "
                                    "'what does main return?'");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("hearth: step 1: "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("prompt tokens"), std::string::npos) << r.out;
  // The index was built inside the sandbox too.
  EXPECT_TRUE(fs::exists(repo.path() / ".hearth"));
}

}  // namespace
}  // namespace hearth::agent
