// The request parser/validator: what each API accepts, and that malformed input of every kind
// becomes a 400 with the field named, never a crash.
#include <gtest/gtest.h>

#include <string>

#include "server/request.h"

namespace hearth::server {
namespace {

RequestError ErrorOf(Api api, const std::string& body) {
  try {
    ParseRequest(api, body);
  } catch (const RequestError& e) {
    return e;
  }
  ADD_FAILURE() << "accepted: " << body;
  return RequestError(0, "");
}

TEST(ServerRequest, ChatFieldsAreParsed) {
  const ApiRequest r = ParseRequest(Api::kChat, R"({
    "model": "m", "stream": true, "stream_options": {"include_usage": true},
    "messages": [{"role": "developer", "content": "be brief"},
                 {"role": "user", "content": [{"type": "text", "text": "hi"}]},
                 {"role": "assistant", "content": null, "reasoning_content": "hm",
                  "tool_calls": [{"id": "c1", "type": "function",
                                  "function": {"name": "f", "arguments": "{\"a\":1}"}}]},
                 {"role": "tool", "tool_call_id": "c1", "content": "42"}],
    "max_completion_tokens": 7, "temperature": 0.5, "top_p": 0.9, "stop": ["x", "y"],
    "seed": 5, "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}],
    "tool_choice": "required", "response_format": {"type": "text"}})");
  EXPECT_EQ(r.model, "m");
  EXPECT_TRUE(r.stream);
  EXPECT_TRUE(r.include_usage);
  EXPECT_EQ(r.gen.max_tokens, 7);
  EXPECT_FLOAT_EQ(r.gen.sampling.temperature, 0.5f);
  EXPECT_FLOAT_EQ(r.gen.sampling.top_p, 0.9f);
  EXPECT_EQ(r.gen.stop, (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(r.gen.sampling.seed, 5u);
  EXPECT_TRUE(r.gen.seed_given);
  EXPECT_EQ(r.gen.tool_choice, text::ToolChoice::kRequired);
  ASSERT_EQ(r.gen.messages.size(), 4u);
  EXPECT_EQ(r.gen.messages[0]["role"], "system");  // developer is the system role
  EXPECT_EQ(r.gen.messages[2]["reasoning_content"], "hm");
  EXPECT_EQ(r.gen.messages[3]["tool_call_id"], "c1");
  EXPECT_FALSE(r.gen.raw);
}

TEST(ServerRequest, NamedToolChoiceKeepsOnlyThatTool) {
  const ApiRequest r = ParseRequest(Api::kChat, R"({"messages":[{"role":"user","content":"x"}],
    "tools":[{"type":"function","function":{"name":"a"}},{"type":"function","function":{"name":"b"}}],
    "tool_choice":{"type":"function","function":{"name":"b"}}})");
  ASSERT_EQ(r.gen.tools.size(), 1u);
  EXPECT_EQ(r.gen.tools[0]["function"]["name"], "b");
  EXPECT_EQ(r.gen.tool_choice, text::ToolChoice::kRequired);
  EXPECT_EQ(ErrorOf(Api::kChat, R"({"messages":[{"role":"user","content":"x"}],
    "tools":[{"type":"function","function":{"name":"a"}}],
    "tool_choice":{"type":"function","function":{"name":"zzz"}}})")
                .param,
            "tool_choice");
  EXPECT_EQ(ErrorOf(Api::kChat, R"({"messages":[{"role":"user","content":"x"}],
    "tool_choice":"required"})")
                .param,
            "tool_choice");
}

TEST(ServerRequest, CompletionDefaultsAndPrompt) {
  const ApiRequest r = ParseRequest(Api::kCompletion, R"({"prompt":["abc"]})");
  EXPECT_TRUE(r.gen.raw);
  EXPECT_EQ(r.gen.prompt, "abc");
  EXPECT_EQ(r.gen.max_tokens, 16);  // OpenAI's default for completions
  EXPECT_EQ(ErrorOf(Api::kCompletion, R"({"prompt":["a","b"]})").param, "prompt");
  EXPECT_EQ(ErrorOf(Api::kCompletion, R"({"max_tokens":3})").param, "prompt");
}

TEST(ServerRequest, OllamaChatAndOptions) {
  const ApiRequest r = ParseRequest(Api::kOllamaChat, R"({"model":"m","think":true,
    "messages":[{"role":"user","content":"hi"},
                {"role":"assistant","content":"","thinking":"t",
                 "tool_calls":[{"function":{"name":"f","arguments":{"x":1}}}]},
                {"role":"tool","tool_name":"f","content":"1"}],
    "options":{"num_ctx":2048,"temperature":0,"top_k":5,"seed":9,"num_predict":12,"stop":"\n",
               "num_gpu":99}})");
  EXPECT_TRUE(r.stream);  // Ollama's default
  EXPECT_TRUE(r.gen.think);
  EXPECT_EQ(r.gen.num_ctx, 2048);
  EXPECT_EQ(r.gen.sampling.top_k, 5);
  EXPECT_EQ(r.gen.max_tokens, 12);
  EXPECT_EQ(r.gen.stop, (std::vector<std::string>{"\n"}));
  EXPECT_EQ(r.gen.messages[1]["reasoning_content"], "t");
  EXPECT_EQ(r.gen.messages[2]["name"], "f");
  const ApiRequest g =
      ParseRequest(Api::kOllamaGenerate, R"({"prompt":"p","system":"s","stream":false})");
  EXPECT_FALSE(g.stream);
  ASSERT_EQ(g.gen.messages.size(), 2u);
  EXPECT_EQ(g.gen.messages[0]["content"], "s");
  EXPECT_EQ(g.gen.messages[1]["content"], "p");
  EXPECT_TRUE(ParseRequest(Api::kOllamaGenerate, R"({"prompt":"p","raw":true})").gen.raw);
}

// Images: OpenAI image_url parts with data: URLs pass through; Ollama's base64 `images` become
// image_url parts in front of the text (/api/chat and /api/generate).
TEST(ServerRequest, ImagesBecomeImageUrlParts) {
  const ApiRequest chat = ParseRequest(
      Api::kChat,
      R"({"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,aGk=","detail":"low"}},{"type":"text","text":"what?"}]}]})");
  EXPECT_EQ(chat.gen.messages[0]["content"][0]["image_url"]["detail"], "low");
  const ApiRequest ollama = ParseRequest(
      Api::kOllamaChat, R"({"messages":[{"role":"user","content":"what?","images":["aGk="]}]})");
  const auto& parts = ollama.gen.messages[0]["content"];
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_EQ(parts[0]["type"], "image_url");
  EXPECT_EQ(parts[0]["image_url"]["url"], "data:image/*;base64,aGk=");
  EXPECT_EQ(parts[1]["text"], "what?");
  const ApiRequest gen =
      ParseRequest(Api::kOllamaGenerate, R"({"prompt":"what?","images":["aGk=","aGk="]})");
  EXPECT_EQ(gen.gen.messages.back()["content"].size(), 3u);
}

struct BadCase {
  Api api;
  const char* body;
  const char* param;  // expected param ("" = none)
  const char* code;
};

TEST(ServerRequest, MalformedBodiesAreRefusedWithTheField) {
  const BadCase cases[] = {
      {Api::kChat, "", "", "empty_body"},
      {Api::kChat, "{", "", "invalid_json"},
      {Api::kChat, R"({"messages":[{"role":"user","content":"x"}])", "", "invalid_json"},
      {Api::kChat, "[]", "", "invalid_json"},
      {Api::kChat, "null", "", "invalid_json"},
      {Api::kChat, "{\"messages\":[{\"role\":\"user\",\"content\":\"\xff\"}]}", "", "invalid_utf8"},
      {Api::kChat, "{\"messages\":[{\"role\":\"user\",\"content\":\"\xed\xa0\x80\"}]}", "",
       "invalid_utf8"},  // a UTF-16 surrogate
      {Api::kChat, R"({})", "messages", "missing"},
      {Api::kChat, R"({"messages":[]})", "messages", "invalid_value"},
      {Api::kChat, R"({"messages":"hi"})", "messages", "invalid_type"},
      {Api::kChat, R"({"messages":[{"role":"wizard","content":"x"}]})", "messages[0].role",
       "invalid_value"},
      {Api::kChat, R"({"messages":[{"role":"user"}]})", "messages[0].content", "invalid_value"},
      {Api::kChat, R"({"messages":[{"role":"user","content":5}]})", "messages[0].content",
       "invalid_type"},
      {Api::kChat, R"({"messages":[{"role":"user","content":[{"type":"image_url"}]}]})",
       "messages[0].content[0].image_url.url", "invalid_value"},
      {Api::kChat,
       R"({"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://x.test/a.png"}}]}]})",
       "messages[0].content[0].image_url.url", "unsupported_content"},
      {Api::kChat,
       R"({"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"file:///etc/passwd"}}]}]})",
       "messages[0].content[0].image_url.url", "invalid_value"},
      {Api::kChat,
       R"({"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:x","detail":"max"}}]}]})",
       "messages[0].content[0].image_url.detail", "invalid_value"},
      {Api::kChat, R"({"messages":[{"role":"user","content":[{"type":"video"}]}]})",
       "messages[0].content[0].type", "unsupported_content"},
      {Api::kChat,
       R"({"messages":[{"role":"user","content":[{"type":"video_url","video_url":{"url":"https://x.test/a.mp4"}}]}]})",
       "messages[0].content[0].video_url.url", "unsupported_content"},
      {Api::kChat, R"({"messages":[{"role":"user","content":[{"type":"video_url"}]}]})",
       "messages[0].content[0].video_url.url", "invalid_value"},
      {Api::kChat,
       R"({"messages":[{"role":"user","content":[{"type":"video_url","video_url":{"url":"data:video/mp4;base64,AA=="},"video_fps":9}]}]})",
       "messages[0].content[0].video_fps", "invalid_value"},
      {Api::kChat, R"({"messages":[{"role":"user","content":"x","colour":1}]})",
       "messages[0].colour", "unknown_field"},
      {Api::kChat, R"({"messages":[{"role":"user","content":"x"}],"temperature":"hot"})",
       "temperature", "invalid_type"},
      {Api::kChat, R"({"messages":[{"role":"user","content":"x"}],"temperature":3})", "temperature",
       "invalid_value"},
      {Api::kChat, R"({"messages":[{"role":"user","content":"x"}],"max_tokens":0})", "max_tokens",
       "invalid_value"},
      {Api::kChat, R"({"messages":[{"role":"user","content":"x"}],"max_tokens":1.5})", "max_tokens",
       "invalid_type"},
      {Api::kChat, R"({"messages":[{"role":"user","content":"x"}],"stream":"yes"})", "stream",
       "invalid_type"},
      {Api::kChat, R"({"messages":[{"role":"user","content":"x"}],"n":2})", "n",
       "unsupported_parameter"},
      {Api::kChat, R"({"messages":[{"role":"user","content":"x"}],"frobnicate":true})",
       "frobnicate", "unknown_field"},
      {Api::kChat,
       R"({"messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_schema","json_schema":{"schema":{"type":"string","pattern":"a+"}}}})",
       "response_format.json_schema.schema", "unsupported_parameter"},
      {Api::kChat,
       R"({"messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_schema"}})",
       "response_format.json_schema", "invalid_value"},
      {Api::kChat,
       R"({"messages":[{"role":"user","content":"x"}],"response_format":{"type":"xml"}})",
       "response_format.type", "invalid_value"},
      {Api::kChat,
       R"({"messages":[{"role":"user","content":"x"}],"reasoning_effort":"high","response_format":{"type":"json_object"}})",
       "response_format", "unsupported_parameter"},
      {Api::kChat, R"({"messages":[{"role":"user","content":"x"}],"tools":[{"type":"function"}]})",
       "tools[0].function", "invalid_value"},
      {Api::kChat,
       R"({"messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"a b"}}]})",
       "tools[0].function.name", "invalid_value"},
      {Api::kChat, R"({"messages":[{"role":"user","content":"x"}],"stop":[1]})", "stop[0]",
       "invalid_type"},
      {Api::kChat, R"({"messages":[{"role":"user","content":"x"}],"logprobs":true})", "logprobs",
       "unsupported_parameter"},
      {Api::kOllamaChat,
       R"({"messages":[{"role":"user","content":"x"}],"options":{"frobnicate":1}})",
       "options.frobnicate", "unknown_field"},
      {Api::kOllamaChat, R"({"messages":[{"role":"user","content":"x"}],"options":{"num_ctx":0}})",
       "options.num_ctx", "invalid_value"},
      {Api::kOllamaChat, R"({"messages":[{"role":"user","content":"x"}],"format":"yaml"})",
       "format", "invalid_value"},
      {Api::kOllamaChat,
       R"({"messages":[{"role":"user","content":"x"}],"format":{"anyOf":[{"type":"string"}]}})",
       "format", "unsupported_parameter"},
      {Api::kOllamaChat,
       R"({"messages":[{"role":"user","content":"x"}],"think":true,"format":"json"})", "format",
       "unsupported_parameter"},
      {Api::kOllamaChat, R"({"messages":[{"role":"user","content":"x","images":[7]}]})",
       "messages[0].images[0]", "invalid_type"},
      {Api::kOllamaGenerate, R"({"prompt":"x","raw":true,"images":["aGk="]})", "images",
       "unsupported_content"},
      {Api::kOllamaGenerate, R"({"prompt":"x","context":[1,2]})", "context",
       "unsupported_parameter"},
      {Api::kOllamaGenerate, R"({"prompt":7})", "prompt", "invalid_type"},
  };
  for (const BadCase& c : cases) {
    SCOPED_TRACE(c.body);
    const RequestError e = ErrorOf(c.api, c.body);
    EXPECT_EQ(e.status, 400);
    EXPECT_EQ(e.param, c.param);
    EXPECT_EQ(e.code, c.code);
    EXPECT_EQ(e.type, "invalid_request_error");
    EXPECT_FALSE(std::string(e.what()).empty());
  }
}

// Harmless parameters that clients send by habit are accepted, each with one warning; null counts
// as absent; the request is otherwise what it would be without them.
TEST(ServerRequest, HarmlessUnknownParametersBecomeWarnings) {
  const std::string msgs = R"("messages":[{"role":"user","content":"x"}])";
  ApiRequest r = ParseRequest(Api::kChat, "{" + msgs + R"(,"cache_prompt":true,"typical_p":0.5,
      "n_probs":2,"top_logprobs":3,"mirostat":null,"temperature":0.25})");
  EXPECT_EQ(r.warnings, (std::vector<std::string>{
                            "'cache_prompt' is not supported by hearth and was ignored",
                            "'typical_p' is not supported by hearth and was ignored",
                            "'n_probs' is not supported by hearth and was ignored",
                            "'top_logprobs' is not supported by hearth and was ignored"}));
  EXPECT_FLOAT_EQ(r.gen.sampling.temperature, 0.25f);
  EXPECT_TRUE(
      ParseRequest(Api::kCompletion, R"({"prompt":"p","cache_prompt":false})").warnings.size() ==
      1);
  r = ParseRequest(Api::kOllamaChat, "{" + msgs + R"(,"options":{"mirostat":2,"mirostat_eta":0.1,
      "typical_p":0.7,"num_ctx":64},"top_logprobs":0})");
  EXPECT_EQ(r.warnings.size(), 4u);
  EXPECT_EQ(r.warnings[0], "'top_logprobs' is not supported by hearth and was ignored");
  EXPECT_EQ(r.warnings[1], "'options.mirostat' is not supported by hearth and was ignored");
  EXPECT_EQ(r.gen.num_ctx, 64);
  EXPECT_TRUE(ParseRequest(Api::kChat, "{" + msgs + "}").warnings.empty());
  // logprobs itself is still refused: the client asked for something it would not get.
  EXPECT_THROW(ParseRequest(Api::kChat, "{" + msgs + R"(,"logprobs":true})"), RequestError);
}

TEST(ServerRequest, ResponseFormatAndOllamaFormatBecomeConstraints) {
  const std::string msgs = R"("messages":[{"role":"user","content":"x"}])";
  EXPECT_EQ(
      ParseRequest(Api::kChat, "{" + msgs + R"(,"response_format":{"type":"text"}})").gen.format,
      nullptr);
  auto r = ParseRequest(Api::kChat, "{" + msgs + R"(,"response_format":{"type":"json_object"}})");
  ASSERT_NE(r.gen.format, nullptr);
  EXPECT_EQ(r.gen.format->nodes().at(0).types, engine::JsonConstraint::kObject);
  r = ParseRequest(Api::kChat, "{" + msgs +
                                   R"(,"response_format":{"type":"json_schema","json_schema":{
      "name":"p","strict":true,"schema":{"type":"object","properties":{"a":{"type":"integer"}},
      "required":["a"],"additionalProperties":false}}}})");
  ASSERT_NE(r.gen.format, nullptr);
  engine::JsonAcceptor a(r.gen.format);
  EXPECT_TRUE(a.Push(std::string_view(R"({"a":12})")));
  EXPECT_TRUE(a.complete());
  EXPECT_NE(ParseRequest(Api::kOllamaChat, "{" + msgs + R"(,"format":"json"})").gen.format,
            nullptr);
  EXPECT_NE(
      ParseRequest(Api::kOllamaGenerate, R"({"prompt":"x","format":{"type":"array"}})").gen.format,
      nullptr);
  EXPECT_EQ(ParseRequest(Api::kOllamaChat, "{" + msgs + R"(,"format":""})").gen.format, nullptr);
  // The unsupported keyword is named in the message.
  const RequestError e = ErrorOf(Api::kOllamaChat, "{" + msgs + R"(,"format":{"type":"object",
      "properties":{"n":{"type":"integer","minimum":0}}}})");
  EXPECT_NE(std::string(e.what()).find("'minimum'"), std::string::npos) << e.what();
  EXPECT_NE(std::string(e.what()).find("properties.n"), std::string::npos) << e.what();
}

TEST(ServerRequest, DeepNestingIsRefusedWithoutRecursion) {
  const std::string deep =
      "{\"messages\":" + std::string(100000, '[') + std::string(100000, ']') + "}";
  EXPECT_EQ(ErrorOf(Api::kChat, deep).code, "too_deep");
}

TEST(ServerRequest, ErrorBodyHasOpenAIShape) {
  const auto j = nlohmann::json::parse(ErrorBody(RequestError(400, "bad \xff", "p", "c")));
  EXPECT_EQ(j["error"]["message"], "bad \xef\xbf\xbd");  // invalid UTF-8 replaced, not thrown
  EXPECT_EQ(j["error"]["type"], "invalid_request_error");
  EXPECT_EQ(j["error"]["param"], "p");
  EXPECT_EQ(j["error"]["code"], "c");
  const auto k = nlohmann::json::parse(ErrorBody(RequestError(400, "m")));
  EXPECT_TRUE(k["error"]["param"].is_null());
  EXPECT_TRUE(k["error"]["code"].is_null());
}

TEST(ServerRequest, Utf8Validation) {
  EXPECT_TRUE(IsValidUtf8("plain ascii"));
  EXPECT_TRUE(IsValidUtf8("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"));  // é € 😀
  EXPECT_FALSE(IsValidUtf8("\xc3"));                                 // truncated
  EXPECT_FALSE(IsValidUtf8("\xc0\xaf"));                             // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xf4\x90\x80\x80"));                     // above U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\xe2\x82"));                             // truncated at the end
  EXPECT_FALSE(IsValidUtf8("\x80"));                                 // stray continuation byte
}

}  // namespace
}  // namespace hearth::server
