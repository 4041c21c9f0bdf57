// Hostile model output and file contents cannot crash it (docs/SECURITY.md): tool-call
// arguments (and whole server replies) nested far deeper than any real call are refused before
// anything recursive touches them, and bytes that are not UTF-8 in file names and contents reach
// the prompt and the JSON output replaced, never as an internal error.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "agent/scripted_server.h"
#include "base/json_depth.h"
#include "security/hearth_cli.h"
#include "security/hostile_repo.h"
#include "text/output_parser.h"

namespace hearth::security {
namespace {

namespace fs = std::filesystem;
using agent::testing::ScriptedServer;
using nlohmann::json;
using testing::CliResult;
using testing::HostileRepo;
using testing::RunHearth;

std::string Nested(int depth, const std::string& leaf = "1") {
  std::string s;
  for (int i = 0; i < depth; ++i) s += "{\"a\":";
  s += leaf;
  for (int i = 0; i < depth; ++i) s += "}";
  return s;
}

std::string Answer(const std::string& text) {
  return json({{"choices",
                {{{"message", {{"role", "assistant"}, {"content", text}}},
                  {"finish_reason", "stop"}}}}})
      .dump();
}

// An OpenAI reply calling `tool` with `arguments` (raw text, as the server sends it).
std::string RawCall(const std::string& tool, const std::string& arguments) {
  return R"({"choices":[{"message":{"role":"assistant","content":"","tool_calls":[{"id":"c1",)"
         R"("type":"function","function":{"name":")" +
         tool + R"(","arguments":)" + json(arguments).dump() +
         R"(}}]},"finish_reason":"tool_calls"}]})";
}

TEST(JsonDepthTest, CountsNestingOutsideStrings) {
  EXPECT_FALSE(JsonDeeperThan(Nested(64), 64));
  EXPECT_TRUE(JsonDeeperThan(Nested(65), 64));
  EXPECT_TRUE(JsonDeeperThan(std::string(100000, '['), 64));
  EXPECT_FALSE(JsonDeeperThan(R"({"a":"[[[[[[[[[[\"{{{{{{{{"})", 2));
  EXPECT_FALSE(JsonDeeperThan(R"([[1],[2],[3],[4]])", 2));
  EXPECT_TRUE(JsonDeeperThan(R"([[[1]]])", 2));
}

// The Gemma output parser (local engine, server) refuses a call nested 100k deep as malformed.
TEST(HostileOutputTest, OutputParserRefusesDeepArgumentsWithoutCrashing) {
  text::ParserConfig config;
  config.tool_names = {"read_file"};
  std::string args(100000, '[');
  const std::string out = "<|tool_call>call:read_file{path:" + args + "<tool_call|>";
  text::ParsedOutput p = text::ParseOutput(out, config);
  EXPECT_TRUE(p.error || p.tool_calls.empty() || !p.tool_calls[0].complete);
}

TEST(HostileOutputTest, DeeplyNestedToolArgumentsAreRefusedNotCrashed) {
  HostileRepo repo;
  repo.Write("a.txt", "hello\n");
  ScriptedServer server({RawCall("read_file", Nested(100000, "\"a.txt\"")),
                         RawCall("read_file", Nested(65, "\"a.txt\"")), Answer("gave up")},
                        "/v1/chat/completions");
  CliResult r = RunHearth(repo.root(), repo.outside() / "home",
                          "ask --no-index --backend " + server.url() + " 'read it'");
  EXPECT_EQ(r.code, 0) << r.out.substr(0, 2000);
  EXPECT_NE(r.out.find("gave up"), std::string::npos) << r.out.substr(0, 2000);
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 3u);
  for (int i : {1, 2}) {
    const json& last = reqs[i]["messages"].back();
    EXPECT_EQ(last["role"], "tool");
    EXPECT_NE(last["content"].get<std::string>().find("nest deeper than 64 levels"),
              std::string::npos)
        << last.dump();
  }
}

// Ollama sends arguments as an object: a reply nested 100k deep is refused as a whole.
TEST(HostileOutputTest, DeeplyNestedOllamaReplyIsAClearError) {
  HostileRepo repo;
  const std::string reply = R"({"message":{"role":"assistant","content":"","tool_calls":[)"
                            R"({"function":{"name":"read_file","arguments":)" +
                            Nested(100000) + R"(}}]},"done":true})";
  ScriptedServer server({reply}, "/api/chat");
  CliResult r = RunHearth(repo.root(), repo.outside() / "home",
                          "ask --no-index --backend " + server.url("/api/chat") + " 'read it'");
  EXPECT_EQ(r.code, 3) << r.out.substr(0, 2000);
  EXPECT_NE(r.out.find("nests deeper than"), std::string::npos) << r.out.substr(0, 2000);
}

// File names and contents that are not UTF-8, in the prompt (retrieval, --file, rules) and in
// `search --json`: replaced, the request is valid JSON, nothing fails.
TEST(HostileOutputTest, NonUtf8FilesNeverFailAskOrSearchJson) {
  HostileRepo repo;
  repo.Write("caf\xe9.py", "def latin_one_name():\n    return '\xff\xfe'\n");
  repo.Write("notes.py", "# r\xe9sum\xe9 of latin_one_name\nlatin_one_name()\n");
  repo.Write("AGENTS.md", "Be brief \xff.\n");
  const fs::path home = repo.outside() / "home";
  ASSERT_EQ(RunHearth(repo.root(), home, "index -q").code, 0);

  CliResult s = RunHearth(repo.root(), home, "search --json latin_one_name");
  EXPECT_EQ(s.code, 0) << s.out;
  json j = json::parse(s.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << s.out;
  std::string paths;
  for (const auto& hit : j["results"]) paths += hit["path"].get<std::string>() + "|";
  EXPECT_NE(paths.find("caf\xef\xbf\xbd.py|"), std::string::npos) << paths;

  CliResult t = RunHearth(repo.root(), home, "search latin_one_name");
  EXPECT_EQ(t.code, 0) << t.out;
  EXPECT_NE(t.out.find("caf\\xe9.py"), std::string::npos) << t.out;

  ScriptedServer server({Answer("ok")}, "/v1/chat/completions");
  CliResult r = RunHearth(repo.root(), home,
                          "ask --file notes.py --backend " + server.url() + " 'latin_one_name'");
  EXPECT_EQ(r.code, 0) << r.out;
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 1u);
  ASSERT_FALSE(reqs[0].is_discarded());
  const std::string user = reqs[0]["messages"][1]["content"].get<std::string>();
  EXPECT_NE(user.find("r\xef\xbf\xbdsum\xef\xbf\xbd"), std::string::npos) << user;
}

}  // namespace
}  // namespace hearth::security
