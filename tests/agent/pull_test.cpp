// `hearth pull` / `hearth models`: SHA-256 against the FIPS 180-2 vectors, the catalog, and
// downloads from a local HTTP server (tests/agent/file_server.h) that drops connections, ignores
// Range, serves the wrong bytes or nothing at all. No test touches anything but 127.0.0.1.
#include "agent/pull.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <sys/wait.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "agent/models.h"
#include "agent_test_util.h"
#include "base/error.h"
#include "file_server.h"

namespace hearth::agent {
namespace {

namespace fs = std::filesystem;
using testing::FileServer;
using testing::Read;
using testing::Route;
using testing::TempRepo;
using testing::Write;

// ---- SHA-256: FIPS 180-2 appendix B vectors -------------------------------------------------

TEST(Sha256Test, FipsVectors) {
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

// One million 'a' (FIPS 180-2 B.3), fed in uneven pieces so every buffering path is taken.
TEST(Sha256Test, MillionAInPieces) {
  const std::string a(1000000, 'a');
  Sha256 h;
  size_t off = 0, step = 1;
  while (off < a.size()) {
    const size_t n = std::min(step, a.size() - off);
    h.Update(a.data() + off, n);
    off += n;
    step = step * 3 % 211 + 1;
  }
  EXPECT_EQ(Sha256::Hex(h.Finish()),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256Test, File) {
  TempRepo dir;
  Write(dir.path() / "f", "abc");
  EXPECT_EQ(Sha256OfFile((dir.path() / "f").string()),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_THROW(Sha256OfFile((dir.path() / "missing").string()), Error);
}

// ---- Catalog ----------------------------------------------------------------------------------

TEST(CatalogTest, BuiltinsAndOverrides) {
  TempRepo dir;
  auto builtin = LoadCatalog((dir.path() / "absent.toml").string());
  for (const char* name : {"e2b", "e4b", "26b-a4b", "31b"}) {
    ASSERT_TRUE(builtin.count(name)) << name;
    EXPECT_EQ(builtin[name].url.rfind("https://huggingface.co/", 0), 0u) << name;
    EXPECT_TRUE(builtin[name].file.ends_with(".gguf")) << name;
    // Each names its MTP drafter, a downloadable entry whose file the folder scan recognises.
    const std::string draft = builtin[name].draft;
    ASSERT_EQ(draft, std::string(name) + "-assistant");
    ASSERT_TRUE(builtin.count(draft)) << draft;
    EXPECT_NE(builtin[draft].file.find("assistant"), std::string::npos) << draft;
  }
  const std::string sha(64, 'A');
  Write(dir.path() / "models.toml",
        "[models.e2b]\nurl = \"http://mirror.example/x/e2b.gguf\"\nsize = 42\nsha256 = \"" + sha +
            "\"\n[models.mine]\nurl = \"https://example.org/m.gguf?download=1\"\n"
            "[models.renamed]\nurl = \"https://example.org/a/b\"\nfile = \"b.gguf\"\n");
  auto c = LoadCatalog((dir.path() / "models.toml").string());
  EXPECT_EQ(c["e2b"].url, "http://mirror.example/x/e2b.gguf");
  EXPECT_EQ(c["e2b"].file, "e2b.gguf");
  EXPECT_EQ(c["e2b"].size, 42u);
  EXPECT_EQ(c["e2b"].sha256, std::string(64, 'a'));
  EXPECT_EQ(c["e4b"].url, builtin["e4b"].url);
  EXPECT_EQ(ResolvePullTarget("mine", c).file, "m.gguf");
  EXPECT_EQ(ResolvePullTarget("renamed", c).file, "b.gguf");
  EXPECT_EQ(ResolvePullTarget("https://h.example/dir/f.gguf", c).file, "f.gguf");
  try {
    ResolvePullTarget("e9b", c);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.error_class(), ErrorClass::kUsage);
    EXPECT_NE(e.Describe().find("26b-a4b"), std::string::npos) << e.Describe();
  }
  EXPECT_THROW(ResolvePullTarget("https://h.example/", c), Error);
  EXPECT_THROW(ResolvePullTarget("https://h.example/..", c), Error);
}

TEST(CatalogTest, MalformedConfigNamesTheKey) {
  TempRepo dir;
  const std::string path = (dir.path() / "models.toml").string();
  auto expect_error = [&](const std::string& content, const std::string& needle) {
    Write(path, content);
    try {
      LoadCatalog(path);
      ADD_FAILURE() << "accepted: " << content;
    } catch (const Error& e) {
      EXPECT_EQ(e.error_class(), ErrorClass::kInvalidInput);
      EXPECT_NE(e.Describe().find(needle), std::string::npos) << e.Describe();
    }
  };
  expect_error("[models.x]\nurl = 3\n", "models.x.url");
  expect_error("[models.x]\nurl = \"ftp://a/b.gguf\"\n", "models.x.url");
  expect_error("[models.x]\nfile = \"b.gguf\"\n", "models.x has no url");
  expect_error("[models.e2b]\nsha256 = \"abc\"\n", "models.e2b.sha256");
  expect_error("[models.e2b]\nsize = -1\n", "models.e2b.size");
  expect_error("[models.e2b]\nmirror = \"x\"\n", "unknown key 'mirror'");
  expect_error("models = 3\n", "'models' must be a table");
  expect_error("[models.e2b\n", "models.toml");
}

// An entry with a base is a model plus adapters (Ollama's FROM + ADAPTER): resolving its name
// gives the base's file and the adapter specs, relative paths taken from the config's folder.
TEST(CatalogTest, EntriesWithABase) {
  TempRepo dir;
  const fs::path base = dir.path() / "base.gguf";
  Write(base, "not read here");
  fs::create_directories(dir.path() / "hearth");
  Write(dir.path() / "hearth" / "models.toml",
        "[models.my-fix]\nbase = \"" + base.string() +
            "\"\nlora = [\"fix.gguf:0.5\", \"/abs/style.gguf\"]\ncontrol_vector = \"calm.gguf\"\n"
            "[models.other]\nbase = \"/elsewhere/model.gguf\"\nlora = \"x.gguf\"\n"
            "[models.nested]\nbase = \"my-fix\"\nlora = \"y.gguf\"\n");
  const std::string config = (dir.path() / "hearth" / "models.toml").string();
  const auto c = LoadCatalog(config);
  ASSERT_TRUE(c.count("my-fix"));
  const CatalogEntry& e = c.at("my-fix");
  EXPECT_EQ(e.base, base.string());
  EXPECT_TRUE(e.url.empty());
  const std::string folder = (dir.path() / "hearth").string();
  EXPECT_EQ(e.loras, (std::vector<std::string>{folder + "/fix.gguf:0.5", "/abs/style.gguf"}));
  EXPECT_EQ(e.cvecs, (std::vector<std::string>{folder + "/calm.gguf"}));
  // Nothing to download: pull names the base instead.
  try {
    ResolvePullTarget("my-fix", c);
    FAIL();
  } catch (const Error& err) {
    EXPECT_EQ(err.error_class(), ErrorClass::kUsage);
    EXPECT_NE(err.Describe().find("hearth pull " + base.string()), std::string::npos);
  }

  const char* old = std::getenv("XDG_CONFIG_HOME");
  const std::string keep = old ? old : "";
  setenv("XDG_CONFIG_HOME", dir.path().c_str(), 1);
  const ResolvedModel r = ResolveModel("my-fix");
  EXPECT_EQ(r.path, base.string());
  EXPECT_EQ(r.loras, e.loras);
  EXPECT_EQ(r.cvecs, e.cvecs);
  // The base by path: no adapters.
  EXPECT_TRUE(ResolveModel(base.string()).loras.empty());
  // A base that has a base itself is refused by name.
  try {
    ResolveModel("nested");
    ADD_FAILURE();
  } catch (const Error& err) {
    EXPECT_EQ(err.error_class(), ErrorClass::kInvalidInput);
    EXPECT_NE(err.Describe().find("has a base itself"), std::string::npos) << err.Describe();
  }
  // What serve offers next to the base: my-fix only (other's base is another file, nested's
  // cannot be resolved).
  const auto adapted = AdaptedModelsOf(base.string());
  ASSERT_EQ(adapted.size(), 1u);
  EXPECT_EQ(adapted[0].name, "my-fix");
  EXPECT_EQ(adapted[0].loras, e.loras);
  EXPECT_TRUE(AdaptedModelsOf((dir.path() / "missing.gguf").string()).empty());
  if (keep.empty()) {
    unsetenv("XDG_CONFIG_HOME");
  } else {
    setenv("XDG_CONFIG_HOME", keep.c_str(), 1);
  }
}

TEST(CatalogTest, MalformedEntriesWithABase) {
  TempRepo dir;
  const std::string path = (dir.path() / "models.toml").string();
  auto expect_error = [&](const std::string& content, const std::string& needle) {
    Write(path, content);
    try {
      LoadCatalog(path);
      ADD_FAILURE() << "accepted: " << content;
    } catch (const Error& e) {
      EXPECT_EQ(e.error_class(), ErrorClass::kInvalidInput);
      EXPECT_NE(e.Describe().find(needle), std::string::npos) << e.Describe();
    }
  };
  expect_error("[models.x]\nbase = \"e4b\"\n", "models.x has a base but no adapter");
  expect_error("[models.x]\nbase = 3\nlora = \"a.gguf\"\n", "models.x.base");
  expect_error("[models.x]\nbase = \"e4b\"\nlora = 3\n", "models.x.lora");
  expect_error("[models.x]\nbase = \"e4b\"\nlora = [\"\"]\n", "models.x.lora");
  expect_error("[models.x]\nbase = \"e4b\"\nlora = \"a.gguf\"\nurl = \"https://a/b.gguf\"\n",
               "unknown key 'url' in an entry with a base");
  expect_error("[models.e4b]\nbase = \"e2b\"\nlora = \"a.gguf\"\n", "built-in name");
}

TEST(CatalogTest, Paths) {
  const char* old_models = std::getenv("HEARTH_MODELS");
  const std::string keep = old_models ? old_models : "";
  setenv("HEARTH_MODELS", "/somewhere/models", 1);
  EXPECT_EQ(DefaultModelDir(), "/somewhere/models");
  unsetenv("HEARTH_MODELS");
  setenv("XDG_CACHE_HOME", "/xdg/cache", 1);
  EXPECT_EQ(DefaultModelDir(), "/xdg/cache/hearth/models");
  unsetenv("XDG_CACHE_HOME");
  setenv("XDG_CONFIG_HOME", "/xdg/config", 1);
  EXPECT_EQ(CatalogConfigPath(), "/xdg/config/hearth/models.toml");
  unsetenv("XDG_CONFIG_HOME");
  if (!keep.empty()) setenv("HEARTH_MODELS", keep.c_str(), 1);
}

// ---- Downloads --------------------------------------------------------------------------------

// Deterministic pseudo-random bytes (so a shifted or repeated range would be noticed).
std::string MakeBody(size_t n) {
  std::string s(n, '\0');
  uint32_t x = 12345;
  for (auto& c : s) {
    x = x * 1664525u + 1013904223u;
    c = static_cast<char>(x >> 24);
  }
  return s;
}

CatalogEntry Entry(const FileServer& server, const std::string& path, uint64_t size = 0,
                   const std::string& sha = "") {
  return CatalogEntry{"", server.url(path), fs::path(path).filename().string(), size, sha};
}

PullOptions Options(const TempRepo& dir) {
  PullOptions opt;
  opt.dir = (dir.path() / "models").string();
  return opt;
}

TEST(PullTest, FullDownloadWithSha256) {
  const std::string body = MakeBody(300000);
  FileServer server;
  server.Set("/m/model.gguf", Route{.body = body});
  TempRepo dir;
  PullOptions opt = Options(dir);
  uint64_t last_done = 0, last_total = 0;
  int calls = 0;
  opt.progress = [&](uint64_t done, uint64_t total) {
    EXPECT_GE(done, last_done);
    last_done = done;
    last_total = total;
    ++calls;
  };
  PullResult r = Pull(Entry(server, "/m/model.gguf", body.size(), Sha256Hex(body)), opt);
  EXPECT_FALSE(r.already_present);
  EXPECT_EQ(r.bytes, body.size());
  EXPECT_EQ(r.sha256, Sha256Hex(body));
  EXPECT_EQ(r.path, opt.dir + "/model.gguf");
  EXPECT_EQ(Read(r.path), body);
  EXPECT_FALSE(fs::exists(r.path + ".part"));
  EXPECT_GT(calls, 0);
  EXPECT_EQ(last_done, body.size());
  EXPECT_EQ(last_total, body.size());
  ASSERT_EQ(server.requests().size(), 1u);
  EXPECT_EQ(server.requests()[0].range, "");

  // A second pull finds the file, checks it and downloads nothing.
  PullResult again = Pull(Entry(server, "/m/model.gguf", body.size(), Sha256Hex(body)), opt);
  EXPECT_TRUE(again.already_present);
  EXPECT_EQ(server.requests().size(), 1u);
}

TEST(PullTest, FollowsRedirects) {
  const std::string body = MakeBody(5000);
  FileServer server;
  server.Set("/resolve/main/r.gguf", Route{.redirect_to = "/cdn/blob"});
  server.Set("/cdn/blob", Route{.body = body});
  server.Set("/loop/a.gguf", Route{.redirect_to = "/loop/a.gguf"});
  TempRepo dir;
  PullResult r = Pull(Entry(server, "/resolve/main/r.gguf", 0, Sha256Hex(body)), Options(dir));
  EXPECT_EQ(Read(r.path), body);
  EXPECT_EQ(fs::path(r.path).filename(), "r.gguf");
  try {
    Pull(Entry(server, "/loop/a.gguf"), Options(dir));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(e.Describe().find("too many redirects"), std::string::npos) << e.Describe();
  }
  EXPECT_FALSE(fs::exists(dir.path() / "models/a.gguf"));
  EXPECT_FALSE(fs::exists(dir.path() / "models/a.gguf.part"));
}

// The server closes the socket after 100000 of 300000 bytes. The first pull fails (kIo, saying
// how to resume) and keeps the .part; the second asks for the rest with Range and the result is
// byte-identical.
TEST(PullTest, ResumesAfterDroppedConnection) {
  const std::string body = MakeBody(300000);
  FileServer server;
  server.Set("/d.gguf", Route{.body = body, .drop_first_requests = 1, .drop_after = 100000});
  TempRepo dir;
  const CatalogEntry entry = Entry(server, "/d.gguf", body.size(), Sha256Hex(body));
  try {
    Pull(entry, Options(dir));
    FAIL() << "the dropped connection was not noticed";
  } catch (const Error& e) {
    EXPECT_EQ(e.error_class(), ErrorClass::kIo);
    EXPECT_NE(e.Describe().find("interrupted after 100000 of 300000 bytes"), std::string::npos)
        << e.Describe();
    EXPECT_NE(e.Describe().find("run the same command again to resume"), std::string::npos)
        << e.Describe();
  }
  const fs::path part = dir.path() / "models/d.gguf.part";
  EXPECT_FALSE(fs::exists(dir.path() / "models/d.gguf"));
  ASSERT_TRUE(fs::exists(part));
  EXPECT_EQ(fs::file_size(part), 100000u);
  EXPECT_EQ(Read(part), body.substr(0, 100000));

  PullResult r = Pull(entry, Options(dir));
  EXPECT_EQ(r.resumed_from, 100000u);
  EXPECT_FALSE(r.restarted);
  EXPECT_EQ(Read(r.path), body);
  EXPECT_FALSE(fs::exists(part));
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[0].range, "");
  EXPECT_EQ(reqs[1].range, "bytes=100000-");
}

// A .part that already holds the whole file: the server answers 416 with `bytes */SIZE`.
TEST(PullTest, PartAlreadyCompleteIsVerifiedAndRenamed) {
  const std::string body = MakeBody(7000);
  FileServer server;
  server.Set("/c.gguf", Route{.body = body});
  TempRepo dir;
  Write(dir.path() / "models/c.gguf.part", body);
  PullResult r = Pull(Entry(server, "/c.gguf", 0, Sha256Hex(body)), Options(dir));
  EXPECT_EQ(Read(r.path), body);
  ASSERT_EQ(server.requests().size(), 1u);
  EXPECT_EQ(server.requests()[0].range, "bytes=7000-");
}

TEST(PullTest, ServerIgnoringRangeRestarts) {
  const std::string body = MakeBody(200000);
  FileServer server;
  server.Set("/i.gguf", Route{.body = body, .honor_range = false});
  TempRepo dir;
  // A stale .part whose bytes are not even a prefix of the file: it must be thrown away.
  Write(dir.path() / "models/i.gguf.part", std::string(50000, 'x'));
  PullResult r = Pull(Entry(server, "/i.gguf", body.size(), Sha256Hex(body)), Options(dir));
  EXPECT_TRUE(r.restarted);
  EXPECT_EQ(r.resumed_from, 0u);
  EXPECT_EQ(Read(r.path), body);
  ASSERT_EQ(server.requests().size(), 1u);
  EXPECT_EQ(server.requests()[0].range, "bytes=50000-");
}

TEST(PullTest, WrongSha256LeavesNothing) {
  const std::string body = MakeBody(40000);
  FileServer server;
  server.Set("/bad.gguf", Route{.body = body});
  TempRepo dir;
  std::string wrong = Sha256Hex(body);
  wrong[0] = wrong[0] == '0' ? '1' : '0';
  try {
    Pull(Entry(server, "/bad.gguf", 0, wrong), Options(dir));
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.error_class(), ErrorClass::kInvalidInput);
    EXPECT_NE(e.Describe().find("has sha256 " + Sha256Hex(body) + ", expected " + wrong),
              std::string::npos)
        << e.Describe();
  }
  EXPECT_FALSE(fs::exists(dir.path() / "models/bad.gguf"));
  EXPECT_FALSE(fs::exists(dir.path() / "models/bad.gguf.part"));
}

TEST(PullTest, SizeMismatchLeavesNothing) {
  const std::string body = MakeBody(40000);
  FileServer server;
  server.Set("/s.gguf", Route{.body = body});
  TempRepo dir;
  try {
    Pull(Entry(server, "/s.gguf", 40001), Options(dir));
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.error_class(), ErrorClass::kInvalidInput);
    EXPECT_NE(e.Describe().find("has 40000 bytes, expected 40001"), std::string::npos)
        << e.Describe();
  }
  EXPECT_FALSE(fs::exists(dir.path() / "models/s.gguf"));
  EXPECT_FALSE(fs::exists(dir.path() / "models/s.gguf.part"));
}

TEST(PullTest, NotFound) {
  FileServer server;
  TempRepo dir;
  try {
    Pull(Entry(server, "/nothing.gguf"), Options(dir));
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.error_class(), ErrorClass::kIo);
    EXPECT_NE(e.Describe().find("HTTP 404"), std::string::npos) << e.Describe();
  }
  EXPECT_FALSE(fs::exists(dir.path() / "models/nothing.gguf"));
  EXPECT_FALSE(fs::exists(dir.path() / "models/nothing.gguf.part"));
}

// A closed port on 127.0.0.1: refused at once; the message names the folder for a manual copy.
TEST(PullTest, UnreachableFailsFast) {
  int port;
  {
    FileServer probe;  // bind an ephemeral port, then free it
    port = std::stoi(probe.url("").substr(std::string("http://127.0.0.1:").size()));
  }
  TempRepo dir;
  PullOptions opt = Options(dir);
  const auto t0 = std::chrono::steady_clock::now();
  try {
    Pull(CatalogEntry{"", "http://127.0.0.1:" + std::to_string(port) + "/x.gguf", "x.gguf", 0, ""},
         opt);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.error_class(), ErrorClass::kIo);
    EXPECT_NE(e.Describe().find("cannot reach"), std::string::npos) << e.Describe();
    EXPECT_NE(e.Describe().find("put it in " + opt.dir + " as x.gguf"), std::string::npos)
        << e.Describe();
  }
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  EXPECT_FALSE(fs::exists(dir.path() / "models/x.gguf.part"));
}

TEST(ListModelsTest, CompletePartialAndBroken) {
  TempRepo dir;
  const fs::path models = dir.path() / "models";
  fs::create_directories(models);
  fs::copy_file(std::string(HEARTH_SHARED_DIR) + "/fixtures/models/tiny-e.Q8_0.gguf",
                models / "tiny-e.Q8_0.gguf");
  Write(models / "big.gguf.part", std::string(1000, 'x'));
  Write(models / "junk.gguf", "not a gguf");
  Write(models / "notes.txt", "ignored");
  auto list = ListModels(models.string());
  ASSERT_EQ(list.size(), 3u);
  EXPECT_EQ(list[0].file, "big.gguf.part");
  EXPECT_TRUE(list[0].incomplete);
  EXPECT_EQ(list[0].bytes, 1000u);
  EXPECT_EQ(list[1].file, "junk.gguf");
  EXPECT_FALSE(list[1].problem.empty());
  EXPECT_EQ(list[2].file, "tiny-e.Q8_0.gguf");
  EXPECT_EQ(list[2].architecture, "gemma4");
  EXPECT_EQ(list[2].type, "Q8_0");  // general.file_type 7, as the file name says
  EXPECT_EQ(list[2].bytes, fs::file_size(models / "tiny-e.Q8_0.gguf"));
  EXPECT_TRUE(ListModels((dir.path() / "absent").string()).empty());
}

// ---- The CLI ----------------------------------------------------------------------------------

using Result = testing::ShellResult;

Result Hearth(const std::string& env, const std::string& args) {
  const std::string cmd =
      env + " '" + std::string(HEARTH_BINARY) + "' " + args + " </dev/null 2>&1";
  return testing::RunShell(cmd);
}

// A user's models.toml names a model served locally; `hearth pull NAME` fetches it into
// $HEARTH_MODELS, `hearth models` lists it; a wrong digest exits 3 and leaves no file.
TEST(PullCliTest, PullByNameThenList) {
  const std::string body = MakeBody(123457);
  FileServer server;
  server.Set("/tiny.gguf", Route{.body = body});
  server.Set("/evil.gguf", Route{.body = body});
  TempRepo dir;
  const fs::path models = dir.path() / "models";
  Write(dir.path() / "config/hearth/models.toml",
        "[models.tiny]\nurl = \"" + server.url("/tiny.gguf") + "\"\nsha256 = \"" + Sha256Hex(body) +
            "\"\nsize = " + std::to_string(body.size()) + "\n[models.evil]\nurl = \"" +
            server.url("/evil.gguf") + "\"\nsha256 = \"" + std::string(64, '0') + "\"\n");
  const std::string env = "HEARTH_MODELS='" + models.string() + "' XDG_CONFIG_HOME='" +
                          (dir.path() / "config").string() + "'";
  Result r = Hearth(env, "pull tiny");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find((models / "tiny.gguf").string()), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("sha256 " + Sha256Hex(body) + " (verified)"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("\033["), std::string::npos) << "progress bar without a terminal";
  EXPECT_EQ(Read(models / "tiny.gguf"), body);

  r = Hearth(env, "pull evil");
  EXPECT_EQ(r.code, 3) << r.out;
  EXPECT_NE(r.out.find("hearth: error: the download of " + server.url("/evil.gguf") +
                       " has sha256 " + Sha256Hex(body) + ", expected " + std::string(64, '0')),
            std::string::npos)
      << r.out;
  EXPECT_FALSE(fs::exists(models / "evil.gguf"));
  EXPECT_FALSE(fs::exists(models / "evil.gguf.part"));

  Write(models / "half.gguf.part", std::string(2048, 'x'));
  r = Hearth(env, "models");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("model folder: " + models.string()), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("half.gguf.part"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("2.0 KiB  incomplete download"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("tiny.gguf"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("120.6 KiB  not readable as GGUF"), std::string::npos) << r.out;

  r = Hearth(env, "models --dir '" + std::string(HEARTH_SHARED_DIR) + "/fixtures/models'");
  EXPECT_EQ(r.code, 0) << r.out;
  for (const char* type : {"BF16", "F16", "F32", "Q4_0", "Q4_K_M", "Q6_K", "Q8_0"}) {
    // Each fixture's name ends in its file type.
    const std::string want = "tiny-moe." + std::string(type) + ".gguf";
    const size_t at = r.out.find(want);
    ASSERT_NE(at, std::string::npos) << r.out;
    const std::string line = r.out.substr(at, r.out.find('\n', at) - at);
    // Columns: name, size, quant type (read from the header), variant, where it lives.
    EXPECT_NE(line.find("  " + std::string(type) + " "), std::string::npos) << line;
    EXPECT_NE(line.find("MoE"), std::string::npos) << line;
    EXPECT_NE(line.find("model folder: "), std::string::npos) << line;
  }

  r = Hearth(env, "pull e7b");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("unknown model 'e7b'"), std::string::npos) << r.out;
  r = Hearth(env, "pull --help");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("26b-a4b"), std::string::npos) << r.out;
}

// A catalog model names its MTP drafter (key `draft`): `hearth pull` fetches it beside the model
// and `hearth run -m NAME` drafts with it, although its file name says nothing of a drafter (so
// the catalog, not the folder scan, found it). --no-draft skips it; a drafter that cannot be
// downloaded leaves the model usable with a warning; a draft naming nothing is refused.
TEST(PullCliTest, PullFetchesTheDrafterTheCatalogNames) {
  const fs::path shared = fs::path(HEARTH_SHARED_DIR) / "fixtures";
  FileServer server;
  server.Set("/tiny-e.gguf", Route{.body = Read(shared / "models/tiny-e.F32.gguf")});
  server.Set("/helper.gguf", Route{.body = Read(shared / "mtp/models/tiny-e-mtp.F32.gguf")});
  TempRepo dir;
  const fs::path models = dir.path() / "models";
  const fs::path config = dir.path() / "config/hearth/models.toml";
  Write(config, "[models.tiny]\nurl = \"" + server.url("/tiny-e.gguf") +
                    "\"\ndraft = \"tiny-helper\"\n[models.tiny-helper]\nurl = \"" +
                    server.url("/helper.gguf") + "\"\n");
  const std::string env = "HEARTH_MODELS='" + models.string() + "' XDG_CONFIG_HOME='" +
                          (dir.path() / "config").string() + "'";
  const std::string run = "run -m tiny --tokens 2,1946,3205 -n 4 --temp 0 -v";

  Result r = Hearth(env, "pull tiny");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("its drafter for speculative decoding, tiny-helper"), std::string::npos)
      << r.out;
  EXPECT_TRUE(fs::exists(models / "tiny-e.gguf"));
  EXPECT_TRUE(fs::exists(models / "helper.gguf"));
  r = Hearth(env, run);
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("draft source mtp"), std::string::npos) << r.out;
  r = Hearth(env, run + " --no-spec");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("draft source none"), std::string::npos) << r.out;

  fs::remove_all(models);
  r = Hearth(env, "pull tiny --no-draft");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_FALSE(fs::exists(models / "helper.gguf"));
  r = Hearth(env, run);
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("draft source none"), std::string::npos) << r.out;

  server.Set("/helper.gguf", Route{.status = 404});
  r = Hearth(env, "pull tiny");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("warning: the drafter 'tiny-helper' was not downloaded"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find((models / "tiny-e.gguf").string()), std::string::npos) << r.out;

  Write(config, "[models.tiny]\nurl = \"" + server.url("/tiny-e.gguf") + "\"\ndraft = \"nope\"\n");
  r = Hearth(env, "pull tiny");
  EXPECT_EQ(r.code, 3) << r.out;
  EXPECT_NE(r.out.find("models.tiny.draft names 'nope'"), std::string::npos) << r.out;
}

// `hearth serve`'s /api/pull and /api/delete on the real binary: a catalog name of the user's
// models.toml, fetched from a local file server into $HEARTH_MODELS with Ollama-style progress;
// URLs are refused; delete removes it, and nothing outside the model folder; an access-log line
// for each request.
TEST(ServeModelFolderTest, PullThenDelete) {
  const std::string body = MakeBody(300001);
  FileServer files;
  files.Set("/tiny.gguf", Route{.body = body});
  TempRepo dir;
  const fs::path models = dir.path() / "models";
  Write(dir.path() / "config/hearth/models.toml",
        "[models.tiny]\nurl = \"" + files.url("/tiny.gguf") + "\"\nsha256 = \"" + Sha256Hex(body) +
            "\"\nsize = " + std::to_string(body.size()) + "\n");
  Write(dir.path() / "outside.gguf", "mine");
  int port;
  {
    FileServer probe;  // a free port (closed again before the server binds it)
    port = std::stoi(probe.url("").substr(std::string("http://127.0.0.1:").size()));
  }
  const fs::path err = dir.path() / "serve.err";
  const Result started = testing::RunShell(
      "HEARTH_MODELS='" + models.string() + "' XDG_CONFIG_HOME='" +
      (dir.path() / "config").string() + "' '" + HEARTH_BINARY + "' serve -m '" +
      HEARTH_SHARED_DIR + "/fixtures/models/tiny-e.Q8_0.gguf' -t 1 --port " + std::to_string(port) +
      " </dev/null >/dev/null 2>'" + err.string() + "' & echo $!");
  const pid_t pid = std::stoi(started.out);
  struct Stop {
    pid_t pid;
    ~Stop() {
      ::kill(pid, SIGTERM);
      for (int i = 0; i < 100 && ::kill(pid, 0) == 0; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    }
  } stop{pid};
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(60, 0);
  bool healthy = false;
  for (int i = 0; i < 300 && !healthy; ++i) {
    auto h = c.Get("/health");
    healthy = h && h->status == 200;
    if (!healthy) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(healthy) << Read(err);

  auto r = c.Post("/api/pull", R"({"model":"tiny"})", "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  std::vector<nlohmann::json> lines;
  for (size_t at = 0; at < r->body.size();) {
    const size_t nl = r->body.find('\n', at);
    lines.push_back(nlohmann::json::parse(r->body.substr(at, nl - at)));
    at = nl + 1;
  }
  ASSERT_GE(lines.size(), 3u) << r->body;
  EXPECT_EQ(lines.front()["status"], "pulling manifest");
  EXPECT_EQ(lines.back()["status"], "success") << r->body;
  bool all_bytes = false;
  for (const auto& l : lines) {
    all_bytes |=
        l.contains("completed") && l["completed"] == body.size() && l["total"] == body.size();
  }
  EXPECT_TRUE(all_bytes) << r->body;
  EXPECT_EQ(Read(models / "tiny.gguf"), body);

  r = c.Post("/api/pull", R"({"model":")" + files.url("/tiny.gguf") + R"(","stream":false})",
             "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400) << r->body;
  EXPECT_EQ(files.requests().size(), 1u);  // the URL was never fetched

  r = c.Delete("/api/delete", R"({"model":"../outside"})", "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404) << r->body;
  EXPECT_EQ(Read(dir.path() / "outside.gguf"), "mine");
  r = c.Delete("/api/delete", R"({"model":"tiny"})", "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_FALSE(fs::exists(models / "tiny.gguf"));
  r = c.Delete("/api/delete", R"({"model":"tiny"})", "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404) << r->body;

  const std::string log = Read(err);
  EXPECT_NE(log.find("hearth: POST /api/pull 200 - "), std::string::npos) << log;
  EXPECT_NE(log.find("hearth: DELETE /api/delete 404 - "), std::string::npos) << log;
  EXPECT_NE(log.find("hearth: GET /health 200 - "), std::string::npos) << log;
}

// Ctrl-C during a download that hangs: exit 130 within seconds, a note saying how to resume, and
// the .part file kept with what arrived.
TEST(PullCliTest, CtrlCExits130AndKeepsThePart) {
  const std::string body = MakeBody(200000);
  FileServer server;
  server.Set("/slow.gguf", Route{.body = body, .stall_after = 5000});
  TempRepo dir;
  const fs::path models = dir.path() / "models";
  // `set -m`: a background job of a script would otherwise start with SIGINT ignored.
  const auto start = std::chrono::steady_clock::now();
  const Result r = testing::RunShell(
      "set -m; '" + std::string(HEARTH_BINARY) + "' pull --dir '" + models.string() + "' " +
      server.url("/slow.gguf") + " </dev/null >/dev/null 2>'" + (dir.path() / "err").string() +
      "' & p=$!; for i in $(seq 100); do [ -s '" + (models / "slow.gguf.part").string() +
      "' ] && break; sleep 0.1; done; sleep 0.2; kill -INT $p; wait $p; echo \"rc=$?\"");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(15));
  EXPECT_NE(r.out.find("rc=130"), std::string::npos) << r.out << Read(dir.path() / "err");
  EXPECT_NE(Read(dir.path() / "err").find("again resumes"), std::string::npos)
      << Read(dir.path() / "err");
  EXPECT_EQ(fs::file_size(models / "slow.gguf.part"), 5000u);
  EXPECT_FALSE(fs::exists(models / "slow.gguf"));
}

TEST(PullCliTest, UnreachableSaysWhereToPutTheFile) {
  int port;
  {
    FileServer probe;
    port = std::stoi(probe.url("").substr(std::string("http://127.0.0.1:").size()));
  }
  TempRepo dir;
  const fs::path models = dir.path() / "m";
  Result r = Hearth("", "pull --dir '" + models.string() +
                            "' http://127.0.0.1:" + std::to_string(port) + "/gemma.gguf");
  EXPECT_EQ(r.code, 4) << r.out;
  EXPECT_NE(r.out.find("hearth: error: cannot reach"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("put it in " + models.string() + " as gemma.gguf"), std::string::npos)
      << r.out;
}

}  // namespace
}  // namespace hearth::agent
