// `hearth serve` over the real engine with the tiny fixture model (random weights: these tests
// check mechanics — shapes, limits, prefix reuse, determinism — not the meaning of the text).
#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <future>
#include <thread>

#include "server_test_util.h"
#include "text/tokenizer.h"

namespace hearth::server::testing {
namespace {

using nlohmann::json;

const std::string kModel = std::string(HEARTH_SHARED_DIR) + "/fixtures/models/tiny-e.Q8_0.gguf";

class ServerModel : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::signal(SIGPIPE, SIG_IGN);
    server_ = new TestServer();
    EngineOptions eo;
    eo.model_path = kModel;
    eo.n_slots = 2;
    eo.n_ctx = 256;
    eo.n_threads = 1;
    server_->server().SetGenerator(MakeEngineGenerator(eo));
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  static json PostJson(const std::string& path, const json& body, int want_status = 200) {
    auto r = server_->Client().Post(path.c_str(), body.dump(), "application/json");
    EXPECT_TRUE(r);
    if (!r) return json();
    EXPECT_EQ(r->status, want_status) << r->body;
    return json::parse(r->body);
  }
  static TestServer* server_;
};
TestServer* ServerModel::server_ = nullptr;

json Chat(const std::string& text, int max_tokens) {
  return json{{"messages", json::array({{{"role", "user"}, {"content", text}}})},
              {"max_tokens", max_tokens},
              {"temperature", 0}};
}

TEST_F(ServerModel, ChatCompletionRespectsMaxTokens) {
  const json j = PostJson("/v1/chat/completions", Chat("Hello there", 6));
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_LE(j["usage"]["completion_tokens"].get<int>(), 6);
  EXPECT_GT(j["usage"]["prompt_tokens"].get<int>(), 3);
  const std::string finish = j["choices"][0]["finish_reason"];
  EXPECT_TRUE(finish == "length" || finish == "stop" || finish == "tool_calls") << finish;
  if (j["usage"]["completion_tokens"] == 6) {
    EXPECT_EQ(finish, "length");
  }
}

TEST_F(ServerModel, GreedyIsDeterministicAndPrefixIsReused) {
  const json a = PostJson("/v1/chat/completions", Chat("Same question", 5));
  const json b = PostJson("/v1/chat/completions", Chat("Same question", 5));
  EXPECT_EQ(a["choices"][0]["message"], b["choices"][0]["message"]);
  // The second request found its prompt in a slot's KV cache (all but the last token).
  EXPECT_EQ(b["usage"]["prompt_tokens_details"]["cached_tokens"].get<int>(),
            b["usage"]["prompt_tokens"].get<int>() - 1);
}

TEST_F(ServerModel, SeededSamplingRepeats) {
  json body = Chat("Tell me", 8);
  body["temperature"] = 1.0;
  body["seed"] = 1234;
  const json a = PostJson("/v1/chat/completions", body);
  const json b = PostJson("/v1/chat/completions", body);
  EXPECT_EQ(a["choices"][0]["message"], b["choices"][0]["message"]);
}

TEST_F(ServerModel, StreamingMatchesTokenCount) {
  json body = Chat("Stream please", 6);
  body["stream"] = true;
  body["stream_options"] = {{"include_usage", true}};
  auto r = server_->Client().Post("/v1/chat/completions", body.dump(), "application/json");
  ASSERT_EQ(r->status, 200);
  const auto data = SseData(r->body);
  ASSERT_GE(data.size(), 3u);
  EXPECT_EQ(data.back(), "[DONE]");
  const json usage = json::parse(data[data.size() - 2]);
  EXPECT_LE(usage["usage"]["completion_tokens"].get<int>(), 6);
}

TEST_F(ServerModel, RawCompletionAndOllamaGenerate) {
  json j =
      PostJson("/v1/completions", {{"prompt", "Once upon"}, {"max_tokens", 4}, {"temperature", 0}});
  EXPECT_EQ(j["object"], "text_completion");
  EXPECT_LE(j["usage"]["completion_tokens"].get<int>(), 4);
  j = PostJson("/api/generate", {{"prompt", "Once upon"},
                                 {"raw", true},
                                 {"stream", false},
                                 {"options", {{"num_predict", 3}, {"temperature", 0}}}});
  EXPECT_TRUE(j["done"].get<bool>());
  EXPECT_LE(j["eval_count"].get<int>(), 3);
  // raw: the prompt as the tokenizer encodes it, BOS first, nothing else around it.
  const auto tokens = text::Tokenizer::Load(kModel).Encode("Once upon", /*add_bos=*/true);
  EXPECT_EQ(j["prompt_eval_count"].get<size_t>(), tokens.size());
}

TEST_F(ServerModel, NumCtxIsHonouredNeverTruncated) {
  // Larger than the slot's context: refused, with the way out.
  json j = PostJson("/api/chat",
                    {{"messages", json::array({{{"role", "user"}, {"content", "hi"}}})},
                     {"options", {{"num_ctx", 4096}}}},
                    400);
  EXPECT_NE(j["error"]["message"].get<std::string>().find("-c 4096"), std::string::npos);
  // A prompt longer than num_ctx: refused, not cut.
  j = PostJson("/api/chat",
               {{"messages", json::array({{{"role", "user"}, {"content", "a b c d e f g h i j"}}})},
                {"options", {{"num_ctx", 8}}}},
               400);
  EXPECT_EQ(j["error"]["code"], "context_length_exceeded");
  // Generation stops at num_ctx: prompt + output never exceed it.
  j = PostJson("/api/chat", {{"messages", json::array({{{"role", "user"}, {"content", "hi"}}})},
                             {"stream", false},
                             {"options", {{"num_ctx", 40}, {"temperature", 0}}}});
  EXPECT_LE(j["prompt_eval_count"].get<int>() + j["eval_count"].get<int>(), 40);
}

TEST_F(ServerModel, HangingUpCancelsTheEngine) {
  auto metric = [] {
    auto r = server_->Client().Get("/metrics");
    const std::string key = "\nhearth_generations_cancelled_total ";
    const size_t at = r ? r->body.find(key) : std::string::npos;
    return at == std::string::npos ? -1 : std::stoi(r->body.substr(at + key.size()));
  };
  const int before = metric();
  json body = Chat("Write a long story", 200);
  body["stream"] = true;
  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/chat/completions";
  req.body = body.dump();
  req.set_header("Content-Type", "application/json");
  req.content_receiver = [](const char*, size_t, uint64_t, uint64_t) { return false; };
  server_->Client().send(req);  // hangs up at the first bytes (the role chunk)
  int after = before;
  for (int i = 0; i < 200 && after == before; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    after = metric();
  }
  EXPECT_EQ(after, before + 1);
  // The slot is free again and its cache usable: a normal request still works.
  const json j = PostJson("/v1/chat/completions", Chat("Hello there", 4));
  EXPECT_LE(j["usage"]["completion_tokens"].get<int>(), 4);
}

TEST_F(ServerModel, TwoConcurrentClientsBothFinish) {
  auto run = [](const std::string& text) {
    json body = Chat(text, 5);
    body["stream"] = true;
    auto r = server_->Client().Post("/v1/chat/completions", body.dump(), "application/json");
    return r && r->status == 200 && r->body.find("data: [DONE]") != std::string::npos;
  };
  auto a = std::async(std::launch::async, run, "first client");
  auto b = std::async(std::launch::async, run, "second client");
  EXPECT_TRUE(a.get());
  EXPECT_TRUE(b.get());
}

// Constrained decoding end to end: the tiny model's text is random, so output that parses as
// JSON (and validates) shows the constraint at work. Greedy and seeded sampling both.
std::vector<json> JsonBodies(json body) {
  std::vector<json> out;
  body["temperature"] = 0;
  out.push_back(body);
  for (int seed : {7, 8, 9}) {
    body["temperature"] = 1.0;
    body["seed"] = seed;
    out.push_back(body);
  }
  return out;
}

TEST_F(ServerModel, ResponseFormatJsonObjectParses) {
  json base = Chat("Give me JSON", 40);
  base["response_format"] = {{"type", "json_object"}};
  for (const json& body : JsonBodies(base)) {
    const json j = PostJson("/v1/chat/completions", body);
    const std::string content = j["choices"][0]["message"]["content"];
    const json v = json::parse(content, nullptr, false);
    ASSERT_FALSE(v.is_discarded()) << content;
    EXPECT_TRUE(v.is_object()) << content;
    EXPECT_EQ(j["choices"][0]["finish_reason"], "stop") << content;
  }
  // Streaming: the deltas put together are the same kind of object.
  json body = base;
  body["stream"] = true;
  auto r = server_->Client().Post("/v1/chat/completions", body.dump(), "application/json");
  ASSERT_TRUE(r);
  std::string content;
  for (const std::string& d : SseData(r->body)) {
    if (d == "[DONE]") continue;
    const json chunk = json::parse(d);
    if (!chunk["choices"].empty() && chunk["choices"][0]["delta"].contains("content")) {
      content += chunk["choices"][0]["delta"]["content"].get<std::string>();
    }
  }
  EXPECT_TRUE(json::parse(content, nullptr, false).is_object()) << content;
}

const char* kSchema = R"({"type":"object","properties":{
    "city":{"type":"string"},"days":{"type":"integer"},"unit":{"enum":["C","F"]},
    "tags":{"type":"array","items":{"type":"boolean"}}},
  "required":["city","days","unit"],"additionalProperties":false})";

void ExpectValid(const json& v) {
  ASSERT_TRUE(v.is_object()) << v;
  EXPECT_TRUE(v.contains("city") && v["city"].is_string()) << v;
  EXPECT_TRUE(v.contains("days") && v["days"].is_number_integer()) << v;
  EXPECT_TRUE(v.contains("unit") && (v["unit"] == "C" || v["unit"] == "F")) << v;
  for (const auto& [k, x] : v.items()) {
    EXPECT_TRUE(k == "city" || k == "days" || k == "unit" || k == "tags") << k;
    if (k == "tags") {
      ASSERT_TRUE(x.is_array()) << v;
      for (const auto& t : x) EXPECT_TRUE(t.is_boolean()) << v;
    }
  }
}

TEST_F(ServerModel, ResponseFormatJsonSchemaValidates) {
  json base = Chat("Weather as JSON", 60);
  base["response_format"] = {{"type", "json_schema"},
                             {"json_schema", {{"name", "w"}, {"schema", json::parse(kSchema)}}}};
  for (const json& body : JsonBodies(base)) {
    const json j = PostJson("/v1/chat/completions", body);
    const std::string content = j["choices"][0]["message"]["content"];
    const json v = json::parse(content, nullptr, false);
    ASSERT_FALSE(v.is_discarded()) << content;
    ExpectValid(v);
  }
  // An unsupported keyword: 400 naming it, nothing generated.
  base["response_format"]["json_schema"]["schema"]["properties"]["city"]["maxLength"] = 3;
  const json e = PostJson("/v1/chat/completions", base, 400);
  EXPECT_NE(e["error"]["message"].get<std::string>().find("'maxLength'"), std::string::npos) << e;
}

TEST_F(ServerModel, OllamaFormatJsonAndSchema) {
  const json msgs = json::array({{{"role", "user"}, {"content", "JSON please"}}});
  json j = PostJson("/api/chat", {{"messages", msgs},
                                  {"stream", false},
                                  {"format", "json"},
                                  {"options", {{"num_predict", 40}, {"temperature", 0}}}});
  const std::string content = j["message"]["content"];
  EXPECT_TRUE(json::parse(content, nullptr, false).is_object()) << content;
  j = PostJson("/api/generate", {{"prompt", "Weather"},
                                 {"stream", false},
                                 {"format", json::parse(kSchema)},
                                 {"options", {{"num_predict", 60}, {"seed", 3}}}});
  const std::string response = j["response"];
  const json v = json::parse(response, nullptr, false);
  ASSERT_FALSE(v.is_discarded()) << response;
  ExpectValid(v);
}

// Short: the tiny model's 4k-token vocabulary makes tool declarations long, and slots hold 256.
json WeatherTools() {
  return json::parse(R"([
    {"type":"function","function":{"name":"weather","parameters":{"type":"object",
      "properties":{"city":{"type":"string"}},"required":["city"]}}},
    {"type":"function","function":{"name":"time"}}])");
}

TEST_F(ServerModel, ToolChoiceRequiredAlwaysCallsATool) {
  for (const json& choice :
       {json("required"), json{{"type", "function"}, {"function", {{"name", "weather"}}}}}) {
    json base = Chat("Hi", 30);
    base["tools"] = WeatherTools();
    base["tool_choice"] = choice;
    for (const json& body : JsonBodies(base)) {
      const json j = PostJson("/v1/chat/completions", body);
      const json& choice0 = j["choices"][0];
      ASSERT_EQ(choice0["finish_reason"], "tool_calls") << j;
      ASSERT_EQ(choice0["message"]["tool_calls"].size(), 1u) << j;
      const json& call = choice0["message"]["tool_calls"][0];
      EXPECT_EQ(call["type"], "function");
      EXPECT_TRUE(call["id"].is_string());
      const std::string name = call["function"]["name"];
      if (choice.is_object()) {
        EXPECT_EQ(name, "weather");
      } else {
        EXPECT_TRUE(name == "weather" || name == "time") << name;
      }
      const json args =
          json::parse(call["function"]["arguments"].get<std::string>(), nullptr, false);
      ASSERT_TRUE(args.is_object()) << j;
      if (name == "weather") {
        EXPECT_TRUE(args.contains("city") && args["city"].is_string()) << args;
      }
    }
  }
}

TEST_F(ServerModel, ToolChoiceNoneNeverCalls) {
  json base = Chat("Hi", 12);
  base["tools"] = WeatherTools();
  base["tool_choice"] = "none";
  for (const json& body : JsonBodies(base)) {
    const json j = PostJson("/v1/chat/completions", body);
    EXPECT_NE(j["choices"][0]["finish_reason"], "tool_calls") << j;
    EXPECT_FALSE(j["choices"][0]["message"].contains("tool_calls") &&
                 !j["choices"][0]["message"]["tool_calls"].empty())
        << j;
  }
}

TEST_F(ServerModel, RetrieveModelById) {
  auto list = server_->Client().Get("/v1/models");
  ASSERT_TRUE(list);
  const std::string id = json::parse(list->body)["data"][0]["id"];
  auto r = server_->Client().Get(("/v1/models/" + id).c_str());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  const json m = json::parse(r->body);
  EXPECT_EQ(m["id"], id);
  EXPECT_EQ(m["object"], "model");
  EXPECT_EQ(m["owned_by"], "hearth");
  r = server_->Client().Get("/v1/models/gpt-4o");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
  const json e = json::parse(r->body);
  EXPECT_EQ(e["error"]["code"], "model_not_found");
  EXPECT_EQ(e["error"]["type"], "invalid_request_error");
  EXPECT_EQ(e["error"]["param"], "model");
}

// Speculative decoding in a slot (prompt lookup here): the reply is the one the plain slot
// gives, and /metrics counts the drafted and accepted tokens.
TEST_F(ServerModel, SpeculativeSlotAnswersTheSameAndCountsDrafts) {
  TestServer spec_server;
  EngineOptions eo;
  eo.model_path = kModel;
  eo.n_ctx = 256;
  eo.n_threads = 1;
  eo.lookup = 2;
  spec_server.server().SetGenerator(MakeEngineGenerator(eo));
  const json body = Chat("one two three four one two three four one two three four one two", 24);
  auto r = spec_server.Client().Post("/v1/chat/completions", body.dump(), "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const json plain = PostJson("/v1/chat/completions", body);
  EXPECT_EQ(json::parse(r->body)["choices"][0]["message"], plain["choices"][0]["message"]);
  auto counter = [&](const std::string& name) {
    auto m = spec_server.Client().Get("/metrics");
    const std::string key = "\n" + name + " ";
    const size_t at = m ? m->body.find(key) : std::string::npos;
    return at == std::string::npos ? -1 : std::stoi(m->body.substr(at + key.size()));
  };
  EXPECT_GT(counter("hearth_draft_tokens_total"), 0);
  EXPECT_GE(counter("hearth_draft_tokens_accepted_total"), 0);
}

}  // namespace
}  // namespace hearth::server::testing
