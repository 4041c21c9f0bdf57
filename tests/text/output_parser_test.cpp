// The output parser against llama.cpp's results in ../shared/fixtures/chat/parse-cases.json
// (final parses, streaming snapshots, errors, malformed calls), a prefix-streaming loop over
// every final case, and hand-written hostile inputs.
#include "text/output_parser.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

namespace hearth::text {
namespace {

using Json = nlohmann::json;

const Json& Cases() {
  static const Json doc = [] {
    std::ifstream in(std::string(HEARTH_SHARED_DIR) + "/fixtures/chat/parse-cases.json");
    std::ostringstream ss;
    ss << in.rdbuf();
    return Json::parse(ss.str());
  }();
  return doc;
}

ParserConfig ConfigFor(const Json& c) {
  const Json& ctx = Cases()["contexts"][c["context"].get<std::string>()];
  ParserConfig config;
  config.generation_prompt = c["generation_prompt"].get<std::string>();
  if (ctx["tools_declared"].get<bool>()) {
    for (const auto& t : Cases()["tools"]) config.tool_names.push_back(t["function"]["name"]);
  }
  std::string choice = ctx["tool_choice"];
  config.tool_choice = choice == "none"       ? ToolChoice::kNone
                       : choice == "required" ? ToolChoice::kRequired
                                              : ToolChoice::kAuto;
  config.parallel_tool_calls = ctx["parallel_tool_calls"].get<bool>();
  config.extract_reasoning = ctx["extract_reasoning"].get<bool>();
  return config;
}

void ExpectMatches(const ParsedOutput& got, const Json& expected, const std::string& name) {
  EXPECT_EQ(got.error, expected["error"].get<bool>()) << name;
  EXPECT_EQ(got.content, expected["content"].get<std::string>()) << name;
  EXPECT_EQ(got.reasoning, expected["reasoning"].get<std::string>()) << name;
  const Json& calls = expected["tool_calls"];
  ASSERT_EQ(got.tool_calls.size(), calls.size()) << name;
  for (size_t i = 0; i < calls.size(); ++i) {
    EXPECT_EQ(got.tool_calls[i].name, calls[i]["name"].get<std::string>()) << name;
    EXPECT_EQ(got.tool_calls[i].arguments, calls[i]["arguments_text"].get<std::string>()) << name;
    EXPECT_EQ(got.tool_calls[i].complete, calls[i]["arguments_complete"].get<bool>()) << name;
    if (got.tool_calls[i].complete) {
      EXPECT_EQ(Json::parse(got.tool_calls[i].arguments), calls[i]["arguments"]) << name;
    }
  }
}

TEST(OutputParser, EveryFixtureCase) {
  ASSERT_EQ(Cases()["cases"].size(), 51u);
  for (const auto& c : Cases()["cases"]) {
    std::string name = c["name"];
    ParsedOutput got =
        ParseOutput(c["model_output"].get<std::string>(), ConfigFor(c), c["is_partial"].get<bool>());
    ExpectMatches(got, c["expected"], name);
  }
}

// Feeding a final case one byte at a time: every snapshot is a parse of the prefix, and the
// deltas concatenate to the final result (llama.cpp's streaming invariant).
TEST(OutputParser, StreamingDeltasConcatenateToFinalResult) {
  int streamed = 0;
  for (const auto& c : Cases()["cases"]) {
    if (c["is_partial"].get<bool>() || c["expected"]["error"].get<bool>() ||
        c["llama_cpp_lenient_drop"].get<bool>()) {
      continue;
    }
    std::string name = c["name"];
    std::string output = c["model_output"];
    OutputParser parser(ConfigFor(c));
    std::string content, reasoning;
    std::vector<std::pair<std::string, std::string>> calls;
    auto apply = [&](const ParseDelta& d) {
      content += d.content;
      reasoning += d.reasoning;
      for (const auto& tc : d.tool_calls) {
        if (tc.index >= calls.size()) calls.resize(tc.index + 1);
        calls[tc.index].first += tc.name;
        calls[tc.index].second += tc.arguments;
      }
    };
    for (char ch : output) apply(parser.Push(std::string_view(&ch, 1)));
    ++streamed;
    ParseDelta last;
    ParsedOutput final_result = parser.Finish(&last);
    apply(last);
    ExpectMatches(final_result, c["expected"], name);
    EXPECT_EQ(content, final_result.content) << name;
    EXPECT_EQ(reasoning, final_result.reasoning) << name;
    ASSERT_EQ(calls.size(), final_result.tool_calls.size()) << name;
    for (size_t i = 0; i < calls.size(); ++i) {
      EXPECT_EQ(calls[i].first, final_result.tool_calls[i].name) << name;
      EXPECT_EQ(calls[i].second, final_result.tool_calls[i].arguments) << name;
    }
  }
  EXPECT_GE(streamed, 25);
}

TEST(OutputParser, HostileInputsNeverCrash) {
  ParserConfig config;
  config.tool_names = {"f", "ff"};
  for (const char* text :
       {"<|tool_call>call:f{", "<|tool_call>call:f{a:[[[[[[[[", "<|tool_call>call:ff{a:{b:{c:",
        "<|tool_call>call:f{:}", "<|tool_call>call:f{a:-}", "<|tool_call>call:f{a:1e}",
        "<|tool_call>call:f{a:<|\"|", "<|channel><|channel><|channel>", "<channel|><channel|>",
        "<|tool_call><|tool_call>call:call:", "\xff\xfe<|tool_call>call:f{a:<|\"|>x<|\"|>}",
        // Numbers beyond double's range are valid JSON grammar that no JSON reader here accepts
        // (found by output_parser_fuzz).
        "<|tool_call>call:f{a:1e400}<tool_call|>",
        "<|tool_call>call:f{n:[4,-4.5e3333333333333333,true]}<tool_call|>"}) {
    for (bool partial : {false, true}) {
      ParsedOutput out = ParseOutput(text, config, partial);
      for (const auto& call : out.tool_calls) {
        if (call.complete) {
          EXPECT_TRUE(Json::accept(call.arguments)) << text;
        }
      }
    }
  }
  // Nesting is capped (256 levels) so a hostile output cannot exhaust the stack: a partial
  // call 200 levels deep is still reported, a complete one 100,000 levels deep is dropped.
  std::string deep = "<|tool_call>call:f{a:" + std::string(200, '[');
  EXPECT_EQ(ParseOutput(deep, config).tool_calls.size(), 1u);
  std::string deeper = "<|tool_call>call:f{a:" + std::string(100000, '[') + "1" +
                       std::string(100000, ']') + "}<tool_call|>";
  EXPECT_EQ(ParseOutput(deeper, config).tool_calls.size(), 0u);
}

TEST(OutputParser, NumbersBeyondDoubleRangeMakeTheCallMalformed) {
  ParserConfig config;
  config.tool_names = {"f"};
  // In range, also when tiny (underflow reads back as 0) or a 30-digit integer: kept verbatim.
  ParsedOutput ok = ParseOutput(
      "<|tool_call>call:f{a:1e-400,b:123456789012345678901234567890,c:-2.5e300}"
      "<tool_call|>",
      config);
  ASSERT_EQ(ok.tool_calls.size(), 1u);
  EXPECT_EQ(ok.tool_calls[0].arguments,
            R"({"a":1e-400,"b":123456789012345678901234567890,"c":-2.5e300})");
  EXPECT_TRUE(Json::accept(ok.tool_calls[0].arguments));
  // Out of range: not a complete call with arguments nobody can parse.
  for (const char* text : {"<|tool_call>call:f{a:1e400}<tool_call|>",
                           "<|tool_call>call:f{a:[1,-4.5e3333]}<tool_call|>",
                           "<|tool_call>call:f{a:1e309}<tool_call|>"}) {
    ParsedOutput out = ParseOutput(text, config);
    for (const auto& call : out.tool_calls) EXPECT_FALSE(call.complete) << text;
  }
}

TEST(OutputParser, PrefixNamesAreDisambiguatedByTheBrace) {
  ParserConfig config;
  config.tool_names = {"get", "get_time"};
  ParsedOutput out = ParseOutput("<|tool_call>call:get_time{}<tool_call|>", config);
  ASSERT_EQ(out.tool_calls.size(), 1u);
  EXPECT_EQ(out.tool_calls[0].name, "get_time");
}

TEST(OutputParser, ArgumentStringsSurviveExactly) {
  ParserConfig config;
  config.tool_names = {"w"};
  std::string value = "quote \" brace } { newline \n tab \t backslash \\ unicode é 🚀 <|tool";
  ParsedOutput out =
      ParseOutput("<|tool_call>call:w{v:<|\"|>" + value + "<|\"|>}<tool_call|>", config);
  ASSERT_EQ(out.tool_calls.size(), 1u);
  EXPECT_EQ(Json::parse(out.tool_calls[0].arguments)["v"], value);
}

}  // namespace
}  // namespace hearth::text
