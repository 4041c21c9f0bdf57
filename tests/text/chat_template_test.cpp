// Chat rendering against the Jinja2 renderings in ../shared/fixtures/chat/conv-*.json (text, then
// ids through the tokenizer), plus hand-checked value formatting and malformed input.
#include "text/chat_template.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "base/error.h"
#include "text/tokenizer.h"

namespace hearth::text {
namespace {

using Json = nlohmann::ordered_json;
const std::string kShared = HEARTH_SHARED_DIR;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> ConvFixtures() {
  std::vector<std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(kShared + "/fixtures/chat")) {
    std::string name = e.path().filename().string();
    if (name.rfind("conv-", 0) == 0) files.push_back(e.path().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

class ConvFixture : public ::testing::TestWithParam<std::string> {};

// The ids of every expected_prompt are checked in tokenizer_test (ChatFixtureIds); together with
// the byte-exact prompt here that is the end-to-end check, without loading the 262k vocabulary
// in each of these per-case test processes.
TEST_P(ConvFixture, RendersByteExact) {
  Json doc = Json::parse(ReadFile(GetParam()));
  ChatTemplate tmpl = ParseChatTemplate(doc["template"].get<std::string>());
  std::string prompt = RenderChat(doc["inputs"], tmpl);
  EXPECT_EQ(prompt, doc["expected_prompt"].get<std::string>()) << doc["name"];
}

// One end-to-end pass in a single process: render, then tokenize, against expected_ids.
TEST(ChatTemplate, RenderedPromptsTokenizeToExpectedIds) {
  Tokenizer tokenizer = Tokenizer::Load(kShared + "/fixtures/tokenizer/gemma-4-vocab.gguf");
  for (const std::string& file : ConvFixtures()) {
    Json doc = Json::parse(ReadFile(file));
    std::string prompt =
        RenderChat(doc["inputs"], ParseChatTemplate(doc["template"].get<std::string>()));
    EXPECT_EQ(tokenizer.Encode(prompt, false, true),
              doc["expected_ids"].get<std::vector<TokenId>>())
        << file;
  }
}

INSTANTIATE_TEST_SUITE_P(AllConversations, ConvFixture, ::testing::ValuesIn(ConvFixtures()),
                         [](const auto& param_info) {
                           std::string name = std::filesystem::path(param_info.param).stem().string();
                           for (char& c : name) {
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           }
                           return name;
                         });

TEST(ChatTemplate, FixtureCount) { EXPECT_EQ(ConvFixtures().size(), 34u); }

// Python repr() values, written down by hand from CPython's float_repr rules.
TEST(ChatTemplate, PythonFloatRepr) {
  EXPECT_EQ(PythonFloatRepr(3.0), "3.0");
  EXPECT_EQ(PythonFloatRepr(0.5), "0.5");
  EXPECT_EQ(PythonFloatRepr(12345678.9), "12345678.9");
  EXPECT_EQ(PythonFloatRepr(1e-7), "1e-07");
  EXPECT_EQ(PythonFloatRepr(2.5e-5), "2.5e-05");
  EXPECT_EQ(PythonFloatRepr(1e16), "1e+16");
  EXPECT_EQ(PythonFloatRepr(1.5e300), "1.5e+300");
  EXPECT_EQ(PythonFloatRepr(-0.0), "-0.0");
  EXPECT_EQ(PythonFloatRepr(0.0001), "0.0001");
  EXPECT_EQ(PythonFloatRepr(1e15), "1000000000000000.0");
  EXPECT_EQ(PythonFloatRepr(0.1), "0.1");
  EXPECT_EQ(PythonFloatRepr(-12.5), "-12.5");
}

Json Inputs(const char* messages_json) {
  Json in;
  in["messages"] = Json::parse(messages_json);
  in["add_generation_prompt"] = true;
  in["bos_token"] = "<bos>";
  return in;
}

TEST(ChatTemplate, SpecWorkedExamples) {
  EXPECT_EQ(RenderChat(Inputs(R"([{"role":"user","content":"Hello!"}])")),
            "<bos><|turn>user\nHello!<turn|>\n<|turn>model\n<|channel>thought\n<channel|>");
  Json in = Inputs(R"([{"role":"system","content":"You are a math tutor."},
                       {"role":"user","content":"Is 91 prime?"},
                       {"role":"assistant","content":"No: 91 = 7 x 13."},
                       {"role":"user","content":"And 97?"}])");
  in["enable_thinking"] = true;
  EXPECT_EQ(RenderChat(in),
            "<bos><|turn>system\n<|think|>\nYou are a math tutor.<turn|>\n<|turn>user\nIs 91 "
            "prime?<turn|>\n<|turn>model\nNo: 91 = 7 x 13.<turn|>\n<|turn>user\nAnd "
            "97?<turn|>\n<|turn>model\n");
}

TEST(ChatTemplate, TrimIsPythonStrip) {
  // NBSP, ideographic space and NEL are whitespace for Python; the thought block is stripped.
  EXPECT_EQ(RenderChat(Inputs(R"([{"role":"user","content":"\u00a0\u3000 hi \u0085"},
                                  {"role":"assistant","content":"A<|channel>thought\nx<channel|>B "}])"),
                       ChatTemplate::kOfficial),
            "<bos><|turn>user\nhi<turn|>\n<|turn>model\nAB<turn|>\n<|turn>model\n<|channel>"
            "thought\n<channel|>");
}

TEST(ChatTemplate, CaseInsensitiveStableKeySort) {
  Json in = Inputs(R"([{"role":"user","content":"x"},
     {"role":"assistant","tool_calls":[{"id":"1","type":"function","function":{"name":"f",
        "arguments":{"Zeta":1,"alpha":2.0,"_under":null,"Beta":"s"}}}]}])");
  EXPECT_EQ(RenderChat(in),
            "<bos><|turn>user\nx<turn|>\n<|turn>model\n<|tool_call>call:f{_under:None,alpha:2.0,"
            "Beta:<|\"|>s<|\"|>,Zeta:1}<tool_call|><|tool_response>");
}

TEST(ChatTemplate, StringArgumentsAreParsedAsJson) {
  Json in = Inputs(R"([{"role":"user","content":"x"},
     {"role":"assistant","tool_calls":[{"type":"function","function":{"name":"f",
        "arguments":"{\"b\":1,\"a\":\"q\"}"}}]}])");
  EXPECT_NE(RenderChat(in).find("call:f{a:<|\"|>q<|\"|>,b:1}"), std::string::npos);
}

void ExpectBad(const Json& in, const std::string& needle) {
  try {
    RenderChat(in);
    ADD_FAILURE() << "expected an error mentioning " << needle;
  } catch (const Error& e) {
    EXPECT_EQ(e.error_class(), ErrorClass::kInvalidInput);
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(ChatTemplate, MalformedInputs) {
  ExpectBad(Inputs(R"([{"role":"wizard","content":"x"}])"), "wizard");
  ExpectBad(Inputs(R"([])"), "empty");
  ExpectBad(Inputs(R"([{"content":"x"}])"), "role");
  ExpectBad(Inputs(R"(["just a string"])"), "messages[0]");
  ExpectBad(Inputs(R"([{"role":"user","content":42}])"), "content");
  ExpectBad(Inputs(R"([{"role":"user","content":[{"type":"hologram"}]}])"), "hologram");
  ExpectBad(Inputs(R"([{"role":"assistant","tool_calls":[{"function":{}}]}])"), "name");
  ExpectBad(Inputs(R"([{"role":"assistant","tool_calls":{"a":1}}])"), "tool_calls");
  ExpectBad(Json::parse(R"({"tools":[]})"), "messages");
  ExpectBad(Json::array(), "object");
  Json in = Inputs(R"([{"role":"user","content":"x"}])");
  in["tools"] = Json::parse(R"([{"type":"function"}])");
  ExpectBad(in, "tools[0].function");
  in["tools"] = Json::parse(R"({"a":1})");
  ExpectBad(in, "tools");
  // Deeply nested arguments are refused before the renderer recurses into them. Built from text
  // because nlohmann's parser is iterative while copying a deep value would recurse.
  const int depth = 100000;
  Json deep = Json::parse(R"({"messages":[{"role":"user","content":"x"},{"role":"assistant",)"
                          R"("tool_calls":[{"function":{"name":"f","arguments":{"a":)" +
                          std::string(depth, '[') + std::string(depth, ']') + "}}}]}]}");
  ExpectBad(deep, "nested");
}

TEST(ChatTemplate, TemplateNames) {
  EXPECT_EQ(ParseChatTemplate("official"), ChatTemplate::kOfficial);
  EXPECT_EQ(ParseChatTemplate("interleaved"), ChatTemplate::kInterleaved);
  EXPECT_THROW(ParseChatTemplate("chatml"), Error);
}

}  // namespace
}  // namespace hearth::text
