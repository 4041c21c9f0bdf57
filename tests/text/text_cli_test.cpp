// The four text commands as other tools call them (HEARTH_BINARY), against fixture cases.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

namespace {

using Json = nlohmann::ordered_json;
const std::string kShared = HEARTH_SHARED_DIR;
const std::string kVocab = kShared + "/fixtures/tokenizer/gemma-4-vocab.gguf";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string TempPath(const std::string& name) {
  return ::testing::TempDir() + "text_cli_" + std::to_string(::getpid()) + "_" + name;
}

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

struct Result {
  int exit_code;
  std::string out;
  std::string err;
};

Result RunHearth(const std::string& args) {
  std::string out = TempPath("out"), err = TempPath("err");
  std::string cmd = std::string(HEARTH_BINARY) + " " + args + " >" + out + " 2>" + err;
  int status = std::system(cmd.c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, ReadFile(out), ReadFile(err)};
}

std::string Join(const Json& ids) {
  std::string out;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i > 0) out += ' ';
    out += std::to_string(ids[i].get<int>());
  }
  return out;
}

TEST(TextCli, TokenizeFixtureCases) {
  Json doc = Json::parse(ReadFile(kShared + "/fixtures/tokenizer/tokenizer-cases.json"));
  int run = 0;
  for (const auto& c : doc["cases"]) {
    // Every fifteenth case through the binary keeps the test quick (each run loads the 262k
    // vocabulary); tokenizer_test checks all of them in-process.
    if (run++ % 15 != 0) continue;
    std::string file = TempPath("text.txt");
    WriteFile(file, c["text"].get<std::string>());
    std::string flags = std::string(c["add_bos"].get<bool>() ? " --bos" : "") +
                        (c["parse_special"].get<bool>() ? "" : " --no-special");
    Result r = RunHearth("tokenize -m " + kVocab + flags + " --file " + file);
    EXPECT_EQ(r.exit_code, 0) << c["name"] << r.err;
    EXPECT_EQ(r.out, Join(c["expected_ids"]) + "\n") << c["name"];
  }
}

TEST(TextCli, TokenizeTextArgumentAndFlags) {
  EXPECT_EQ(RunHearth("tokenize -m " + kVocab + " 'Hello world'").out, "9259 1902\n");
  EXPECT_EQ(RunHearth("tokenize -m " + kVocab + " --bos 'Hello'").out, "2 9259\n");
  EXPECT_EQ(RunHearth("tokenize -m " + kVocab + " '<turn|>'").out, "106\n");
  EXPECT_NE(RunHearth("tokenize -m " + kVocab + " --no-special '<turn|>'").out, "106\n");
  EXPECT_EQ(RunHearth("tokenize -m " + kVocab).exit_code, 2);
  EXPECT_EQ(RunHearth("tokenize -m /nonexistent.gguf x").exit_code, 4);
}

TEST(TextCli, DetokenizeRoundTrip) {
  Result r = RunHearth("detokenize -m " + kVocab + " 2 105 9259 1902");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "<bos><|turn>Hello world");
  EXPECT_EQ(RunHearth("detokenize -m " + kVocab + " 999999").exit_code, 3);
  EXPECT_EQ(RunHearth("detokenize -m " + kVocab + " abc").exit_code, 2);
}

TEST(TextCli, RenderChatFixtures) {
  for (const char* name : {"conv-05-multi_turn.json", "conv-12-tools_declared_nested_schemas.json",
                           "conv-21-parallel_tool_calls_two_results.json",
                           "conv-34-interleaved_schema_formatting.json"}) {
    Json doc = Json::parse(ReadFile(kShared + "/fixtures/chat/" + name));
    std::string input = TempPath("inputs.json");
    WriteFile(input, doc["inputs"].dump());
    std::string tmpl = doc["template"].get<std::string>().find("interleaved") != std::string::npos
                           ? "interleaved"
                           : "official";
    Result r = RunHearth("render-chat -m " + kVocab + " --input " + input + " --template " + tmpl);
    EXPECT_EQ(r.exit_code, 0) << name << r.err;
    EXPECT_EQ(r.out, doc["expected_prompt"].get<std::string>()) << name;
  }
  std::string bad = TempPath("bad.json");
  WriteFile(bad, R"({"messages":[{"role":"wizard","content":"x"}]})");
  Result r = RunHearth("render-chat -m " + kVocab + " --input " + bad);
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.err.find("wizard"), std::string::npos) << r.err;
}

TEST(TextCli, ParseOutputFixtureCases) {
  Json doc = Json::parse(ReadFile(kShared + "/fixtures/chat/parse-cases.json"));
  std::string tools = TempPath("tools.json");
  WriteFile(tools, doc["tools"].dump());
  int checked = 0;
  for (const auto& c : doc["cases"]) {
    const Json& ctx = doc["contexts"][c["context"].get<std::string>()];
    // The CLI form covers tool_choice auto, parallel calls and reasoning extraction.
    if (c["is_partial"].get<bool>() || !ctx["extract_reasoning"].get<bool>() ||
        ctx["tool_choice"] == "required" || !ctx["parallel_tool_calls"].get<bool>()) {
      continue;
    }
    std::string raw = TempPath("raw.txt");
    WriteFile(raw, c["model_output"].get<std::string>());
    std::string args = "parse-output --input " + raw +
                       (ctx["enable_thinking"].get<bool>() ? " --thinking" : "") +
                       (ctx["tools_declared"].get<bool>() ? " --tools " + tools : "");
    Result r = RunHearth(args);
    const Json& e = c["expected"];
    if (e["error"].get<bool>()) {
      EXPECT_EQ(r.exit_code, 3) << c["name"];
      continue;
    }
    ASSERT_EQ(r.exit_code, 0) << c["name"] << r.err;
    Json got = Json::parse(r.out);
    EXPECT_EQ(got["content"], e["content"]) << c["name"];
    EXPECT_EQ(got["reasoning"], e["reasoning"]) << c["name"];
    ASSERT_EQ(got["tool_calls"].size(), e["tool_calls"].size()) << c["name"];
    for (size_t i = 0; i < e["tool_calls"].size(); ++i) {
      EXPECT_EQ(got["tool_calls"][i]["name"], e["tool_calls"][i]["name"]) << c["name"];
      EXPECT_EQ(nlohmann::json(got["tool_calls"][i]["arguments"]),
                nlohmann::json(e["tool_calls"][i]["arguments"]))
          << c["name"];
    }
    ++checked;
  }
  EXPECT_GE(checked, 20);
}

TEST(TextCli, EveryTextCommandHasHelp) {
  for (const char* sub : {"tokenize", "detokenize", "render-chat", "parse-output"}) {
    Result r = RunHearth(std::string(sub) + " --help");
    EXPECT_EQ(r.exit_code, 0) << sub;
    EXPECT_NE(r.out.find("Usage"), std::string::npos) << sub << r.out;
  }
}

}  // namespace
