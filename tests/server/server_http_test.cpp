// HTTP mechanics of `hearth serve` with the scripted generator: every endpoint's shape, SSE and
// NDJSON streaming, tool calls, errors, auth, CORS, body limits, disconnect cancellation and the
// FIFO slot queue.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <functional>
#include <future>

#include "base/error.h"
#include "scripted_generator.h"
#include "server_test_util.h"

namespace hearth::server::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

const char* kChat = R"({"messages":[{"role":"user","content":"hi"}]})";

text::ParseDelta Content(std::string s) {
  text::ParseDelta d;
  d.content = std::move(s);
  return d;
}
text::ParseDelta Reasoning(std::string s) {
  text::ParseDelta d;
  d.reasoning = std::move(s);
  return d;
}
text::ParseDelta Tool(size_t index, std::string name, std::string args) {
  text::ParseDelta d;
  d.tool_calls.push_back({index, std::move(name), std::move(args)});
  return d;
}

class ServerHttp : public ::testing::Test {
 protected:
  void SetUp() override { std::signal(SIGPIPE, SIG_IGN); }
  // Starts a server with a scripted generator already loaded.
  ScriptedGenerator* Start(ServerOptions opt = {}, int slots = 1) {
    server_ = std::make_unique<TestServer>(opt);
    auto gen = std::make_unique<ScriptedGenerator>(slots);
    ScriptedGenerator* raw = gen.get();
    gen->script = {Reasoning("think"), Content("Hel"), Content("lo")};
    server_->server().SetGenerator(std::move(gen));
    return raw;
  }
  httplib::Result Post(const std::string& path, const std::string& body,
                       const httplib::Headers& headers = {}) {
    auto c = server_->Client();
    return c.Post(path.c_str(), headers, body, "application/json");
  }
  void ExpectError(const httplib::Result& r, int status, const std::string& code) {
    ASSERT_TRUE(r) << "no response";
    EXPECT_EQ(r->status, status) << r->body;
    const json j = json::parse(r->body);
    EXPECT_EQ(j["error"]["code"], code) << r->body;
    EXPECT_TRUE(j["error"]["message"].is_string());
    EXPECT_TRUE(j["error"].contains("type"));
    EXPECT_TRUE(j["error"].contains("param"));
  }
  // /metrics once it contains `want` (request counts are recorded just after the response has
  // been sent, so a client can be a moment ahead of them); the last text otherwise.
  std::string MetricsWith(const std::string& want) {
    std::string text;
    for (int i = 0; i < 200; ++i) {
      auto r = server_->Client().Get("/metrics");
      if (r) text = r->body;
      if (text.find(want) != std::string::npos) break;
      std::this_thread::sleep_for(10ms);
    }
    return text;
  }
  std::unique_ptr<TestServer> server_;
};

TEST_F(ServerHttp, HealthIs503WhileLoadingThen200) {
  server_ = std::make_unique<TestServer>();
  auto c = server_->Client();
  auto r = c.Get("/health");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(json::parse(r->body)["status"], "loading");
  ExpectError(Post("/v1/chat/completions", kChat), 503, "model_loading");
  server_->server().SetGenerator(std::make_unique<ScriptedGenerator>());
  r = c.Get("/health");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(json::parse(r->body)["status"], "ok");
}

TEST_F(ServerHttp, LoadErrorIsReported) {
  server_ = std::make_unique<TestServer>();
  server_->server().SetLoadError("broken file");
  auto r = server_->Client().Get("/health");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 500);
  ExpectError(Post("/v1/chat/completions", kChat), 500, "model_load_failed");
}

TEST_F(ServerHttp, ModelListsAndVersion) {
  Start();
  auto c = server_->Client();
  auto r = c.Get("/v1/models");
  ASSERT_TRUE(r);
  json j = json::parse(r->body);
  EXPECT_EQ(j["object"], "list");
  EXPECT_EQ(j["data"][0]["id"], "scripted");
  EXPECT_EQ(j["data"][0]["object"], "model");
  r = c.Get("/api/tags");
  j = json::parse(r->body);
  EXPECT_EQ(j["models"][0]["name"], "scripted");
  EXPECT_EQ(j["models"][0]["size"], 1234);
  EXPECT_EQ(j["models"][0]["details"]["format"], "gguf");
  r = c.Post("/api/show", R"({"model":"scripted"})", "application/json");
  j = json::parse(r->body);
  EXPECT_EQ(j["details"]["family"], "gemma4");
  EXPECT_EQ(j["model_info"]["gemma4.context_length"], 1000);
  // No projector: no vision or audio claimed.
  EXPECT_EQ(j["capabilities"], json::array({"completion", "tools", "thinking"}));
  ExpectError(c.Post("/api/show", "{", "application/json"), 400, "invalid_json");
  r = c.Get("/api/version");
  EXPECT_TRUE(json::parse(r->body)["version"].is_string());
  r = c.Get("/");
  EXPECT_EQ(r->status, 200);
  EXPECT_NE(r->body.find("<html"), std::string::npos);
  EXPECT_EQ(r->get_header_value("Content-Type"), "text/html; charset=utf-8");
}

TEST_F(ServerHttp, ChatNonStreaming) {
  ScriptedGenerator* gen = Start();
  auto r = Post("/v1/chat/completions",
                R"({"messages":[{"role":"user","content":"hi"}],"max_tokens":5,"seed":3})");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const json j = json::parse(r->body);
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_EQ(j["id"].get<std::string>().rfind("chatcmpl-", 0), 0u);
  EXPECT_EQ(j["choices"][0]["message"]["role"], "assistant");
  EXPECT_EQ(j["choices"][0]["message"]["content"], "Hello");
  EXPECT_EQ(j["choices"][0]["message"]["reasoning_content"], "think");
  EXPECT_EQ(j["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(j["usage"]["completion_tokens"], 3);
  EXPECT_EQ(j["usage"]["total_tokens"],
            j["usage"]["prompt_tokens"].get<int>() + j["usage"]["completion_tokens"].get<int>());
  ASSERT_EQ(gen->calls().size(), 1u);
  EXPECT_EQ(gen->calls()[0].request.max_tokens, 5);
  EXPECT_EQ(gen->calls()[0].request.sampling.seed, 3u);
}

TEST_F(ServerHttp, ChatStreamingShape) {
  Start();
  auto r = Post("/v1/chat/completions",
                R"({"messages":[{"role":"user","content":"hi"}],"stream":true,
                    "stream_options":{"include_usage":true}})");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200);
  EXPECT_EQ(r->get_header_value("Content-Type"), "text/event-stream");
  const auto data = SseData(r->body);
  ASSERT_GE(data.size(), 5u);
  EXPECT_EQ(data.back(), "[DONE]");
  std::string content, reasoning;
  std::string id;
  bool finished = false, usage = false;
  for (size_t i = 0; i + 1 < data.size(); ++i) {
    const json j = json::parse(data[i]);
    EXPECT_EQ(j["object"], "chat.completion.chunk");
    if (id.empty()) id = j["id"];
    EXPECT_EQ(j["id"], id);  // one id for the whole stream
    if (j.contains("usage")) {
      usage = true;
      EXPECT_TRUE(j["choices"].empty());
      EXPECT_EQ(j["usage"]["completion_tokens"], 3);
      continue;
    }
    const json& c = j["choices"][0];
    if (i == 0) {
      EXPECT_EQ(c["delta"]["role"], "assistant");
    }
    content += c["delta"].value("content", "");
    reasoning += c["delta"].value("reasoning_content", "");
    if (!c["finish_reason"].is_null()) {
      EXPECT_EQ(c["finish_reason"], "stop");
      finished = true;
    }
  }
  EXPECT_EQ(content, "Hello");
  EXPECT_EQ(reasoning, "think");
  EXPECT_TRUE(finished);
  EXPECT_TRUE(usage);
}

TEST_F(ServerHttp, ToolCallsInOpenAIShape) {
  ScriptedGenerator* gen = Start();
  gen->script = {Tool(0, "get_weather", "{\"city\":"), Tool(0, "", "\"Paris\"}"),
                 Tool(1, "get_time", "{}")};
  gen->finish = FinishReason::kToolCalls;
  const std::string body = R"({"messages":[{"role":"user","content":"weather?"}],
    "tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}},
             {"type":"function","function":{"name":"get_time"}}]})";
  auto r = Post("/v1/chat/completions", body);
  ASSERT_EQ(r->status, 200) << r->body;
  json j = json::parse(r->body);
  const json& msg = j["choices"][0]["message"];
  EXPECT_TRUE(msg["content"].is_null());
  ASSERT_EQ(msg["tool_calls"].size(), 2u);
  EXPECT_EQ(msg["tool_calls"][0]["type"], "function");
  EXPECT_EQ(msg["tool_calls"][0]["id"].get<std::string>().rfind("call_", 0), 0u);
  EXPECT_NE(msg["tool_calls"][0]["id"], msg["tool_calls"][1]["id"]);
  EXPECT_EQ(msg["tool_calls"][0]["function"]["name"], "get_weather");
  EXPECT_EQ(msg["tool_calls"][0]["function"]["arguments"], "{\"city\":\"Paris\"}");
  EXPECT_EQ(j["choices"][0]["finish_reason"], "tool_calls");

  // Streaming: the first delta of a call has id, type and name; later ones only arguments.
  json stream_body = json::parse(body);
  stream_body["stream"] = true;
  r = Post("/v1/chat/completions", stream_body.dump());
  std::map<int, std::string> args, names, ids;
  for (const auto& d : SseData(r->body)) {
    if (d == "[DONE]") break;
    const json c = json::parse(d)["choices"][0];
    if (!c["delta"].contains("tool_calls")) continue;
    for (const auto& tc : c["delta"]["tool_calls"]) {
      const int idx = tc["index"];
      if (tc.contains("id")) {
        EXPECT_FALSE(ids.count(idx));
        ids[idx] = tc["id"];
        names[idx] = tc["function"]["name"];
        EXPECT_EQ(tc["type"], "function");
      }
      args[idx] += tc["function"]["arguments"].get<std::string>();
    }
  }
  EXPECT_EQ(names[0], "get_weather");
  EXPECT_EQ(args[0], "{\"city\":\"Paris\"}");
  EXPECT_EQ(names[1], "get_time");
  EXPECT_EQ(args[1], "{}");

  // The round trip: the tool result goes back in and reaches the generator as a tool message.
  gen->script = {Content("It is sunny.")};
  gen->finish = FinishReason::kStop;
  json next = json::parse(body);
  next["messages"].push_back(msg);
  next["messages"].push_back(
      {{"role", "tool"}, {"tool_call_id", msg["tool_calls"][0]["id"]}, {"content", "sunny"}});
  r = Post("/v1/chat/completions", next.dump());
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(json::parse(r->body)["choices"][0]["message"]["content"], "It is sunny.");
  const auto last = gen->calls().back().request.messages;
  ASSERT_EQ(last.size(), 3u);
  EXPECT_EQ(last[1]["tool_calls"][0]["function"]["name"], "get_weather");
  EXPECT_EQ(last[2]["role"], "tool");
  EXPECT_EQ(last[2]["content"], "sunny");
}

TEST_F(ServerHttp, Completions) {
  ScriptedGenerator* gen = Start();
  gen->script = {Content("abc"), Content("def")};
  auto r = Post("/v1/completions", R"({"prompt":"x","max_tokens":2})");
  ASSERT_EQ(r->status, 200) << r->body;
  json j = json::parse(r->body);
  EXPECT_EQ(j["object"], "text_completion");
  EXPECT_EQ(j["choices"][0]["text"], "abcdef");
  EXPECT_TRUE(gen->calls().back().request.raw);
  r = Post("/v1/completions", R"({"prompt":"x","stream":true})");
  const auto data = SseData(r->body);
  std::string text;
  for (size_t i = 0; i + 1 < data.size(); ++i) text += json::parse(data[i])["choices"][0]["text"];
  EXPECT_EQ(text, "abcdef");
  EXPECT_EQ(data.back(), "[DONE]");
}

TEST_F(ServerHttp, OllamaChatStreamsNdjsonWithThinkingAndTools) {
  ScriptedGenerator* gen = Start();
  gen->script = {Reasoning("hmm"), Content("A"), Content("B"), Tool(0, "f", "{\"x\":"),
                 Tool(0, "", "1}")};
  gen->finish = FinishReason::kToolCalls;
  auto r = Post("/api/chat", R"({"model":"scripted","think":true,
    "messages":[{"role":"user","content":"hi"}],
    "tools":[{"type":"function","function":{"name":"f"}}]})");
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(r->get_header_value("Content-Type"), "application/x-ndjson");
  const auto lines = NdjsonLines(r->body);
  ASSERT_GE(lines.size(), 4u);
  std::string content, thinking;
  json calls;
  for (size_t i = 0; i + 1 < lines.size(); ++i) {
    EXPECT_FALSE(lines[i]["done"].get<bool>());
    content += lines[i]["message"]["content"].get<std::string>();
    thinking += lines[i]["message"].value("thinking", "");
    if (lines[i]["message"].contains("tool_calls")) calls = lines[i]["message"]["tool_calls"];
  }
  EXPECT_EQ(content, "AB");
  EXPECT_EQ(thinking, "hmm");
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0]["function"]["name"], "f");
  EXPECT_EQ(calls[0]["function"]["arguments"], json({{"x", 1}}));  // an object, as Ollama sends
  const json& done = lines.back();
  EXPECT_TRUE(done["done"].get<bool>());
  EXPECT_EQ(done["done_reason"], "stop");
  EXPECT_EQ(done["eval_count"], 5);
  EXPECT_TRUE(done["total_duration"].is_number());
  EXPECT_TRUE(gen->calls().back().request.think);
}

TEST_F(ServerHttp, OllamaGenerateNonStreamingAndNumCtx) {
  ScriptedGenerator* gen = Start();
  auto r = Post("/api/generate", R"({"prompt":"hi","stream":false,
                                     "options":{"num_ctx":500,"num_predict":4,"temperature":0}})");
  ASSERT_EQ(r->status, 200) << r->body;
  const json j = json::parse(r->body);
  EXPECT_EQ(j["response"], "Hello");
  EXPECT_EQ(j["thinking"], "think");
  EXPECT_TRUE(j["done"].get<bool>());
  EXPECT_EQ(gen->calls().back().request.num_ctx, 500);
  EXPECT_EQ(gen->calls().back().request.max_tokens, 4);
  // A context the server does not have, or a prompt that does not fit: a clear 400.
  ExpectError(Post("/api/generate", R"({"prompt":"hi","options":{"num_ctx":5000}})"), 400,
              "context_length_exceeded");
  ExpectError(Post("/api/generate",
                   "{\"prompt\":\"" + std::string(100, 'x') + "\",\"options\":{\"num_ctx\":10}}"),
              400, "context_length_exceeded");
  ExpectError(Post("/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"" +
                                               std::string(5000, 'x') + "\"}]}"),
              400, "context_length_exceeded");
}

TEST_F(ServerHttp, MalformedRequestsGet4xxJson) {
  ServerOptions opt;
  opt.max_body = 4096;
  Start(opt);
  ExpectError(Post("/v1/chat/completions", "{\"messages\":"), 400, "invalid_json");
  ExpectError(
      Post("/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"\xc3\"}]}"),
      400, "invalid_utf8");
  ExpectError(
      Post("/v1/chat/completions", R"({"messages":[{"role":"user","content":"x"}],"bogus":1})"),
      400, "unknown_field");
  ExpectError(Post("/api/chat", R"({"messages":[{"role":"user","content":1}]})"), 400,
              "invalid_type");
  ExpectError(Post("/v1/chat/completions", std::string(10000, ' ')), 413, "body_too_large");
  ExpectError(server_->Client().Get("/v1/nothing"), 404, "not_found");
  // A body shorter than its Content-Length, then the client hangs up: no response needed, but
  // the server must stay up.
  {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(server_->port()));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    const std::string partial =
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Content-Length: 100\r\n\r\n{\"messages\":[";
    ASSERT_EQ(write(fd, partial.data(), partial.size()), static_cast<ssize_t>(partial.size()));
    shutdown(fd, SHUT_WR);
    char buf[512];
    while (read(fd, buf, sizeof buf) > 0) {
    }
    close(fd);
  }
  auto r = server_->Client().Get("/health");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

TEST_F(ServerHttp, ApiKeyIsRequiredExceptForPageAndHealth) {
  ServerOptions opt;
  opt.api_key = "sekrit";
  Start(opt);
  ExpectError(Post("/v1/chat/completions", kChat), 401, "invalid_api_key");
  ExpectError(Post("/v1/chat/completions", kChat, {{"Authorization", "Bearer wrong"}}), 401,
              "invalid_api_key");
  ExpectError(Post("/v1/chat/completions", kChat, {{"Authorization", "Bearer sekri"}}), 401,
              "invalid_api_key");
  auto r = Post("/v1/chat/completions", kChat, {{"Authorization", "Bearer sekrit"}});
  EXPECT_EQ(r->status, 200);
  auto c = server_->Client();
  EXPECT_EQ(c.Get("/v1/models")->status, 401);
  EXPECT_EQ(c.Get("/metrics")->status, 401);
  EXPECT_EQ(c.Get("/health")->status, 200);
  EXPECT_EQ(c.Get("/")->status, 200);
}

TEST_F(ServerHttp, CorsHeadersOnlyWhenAsked) {
  Start();
  auto r = server_->Client().Get("/v1/models", {{"Origin", "http://evil.example"}});
  EXPECT_FALSE(r->has_header("Access-Control-Allow-Origin"));
  ServerOptions opt;
  opt.cors_origins = {"http://localhost:3000"};
  Start(opt);
  auto c = server_->Client();
  r = c.Get("/v1/models", {{"Origin", "http://localhost:3000"}});
  EXPECT_EQ(r->get_header_value("Access-Control-Allow-Origin"), "http://localhost:3000");
  r = c.Options("/v1/chat/completions",
                {{"Origin", "http://localhost:3000"}, {"Access-Control-Request-Method", "POST"}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 204);
  EXPECT_NE(r->get_header_value("Access-Control-Allow-Headers").find("Authorization"),
            std::string::npos);
}

TEST_F(ServerHttp, ClientDisconnectCancelsGeneration) {
  ScriptedGenerator* gen = Start();
  gen->script.assign(400, Content("tok "));
  gen->delay = 10ms;
  for (const bool stream : {true, false}) {
    SCOPED_TRACE(stream ? "streaming" : "non-streaming");
    const size_t before = gen->calls().size();
    auto c = server_->Client();
    httplib::Request req;
    req.method = "POST";
    req.path = "/v1/chat/completions";
    req.body = json{
        {"messages", json::array({{{"role", "user"}, {"content", "hi"}}})},
        {"stream",
         stream}}.dump();
    req.set_header("Content-Type", "application/json");
    size_t received = 0;
    req.content_receiver = [&](const char*, size_t n, uint64_t, uint64_t) {
      received += n;
      return received < 3;  // hang up after the first bytes
    };
    const auto start = std::chrono::steady_clock::now();
    c.send(req);
    // The generation (400 × 10 ms = 4 s if it ran to the end) stops soon after the hang-up.
    while (gen->calls().size() == before && std::chrono::steady_clock::now() - start < 10s) {
      std::this_thread::sleep_for(10ms);
    }
    ASSERT_EQ(gen->calls().size(), before + 1);
    EXPECT_TRUE(gen->calls().back().cancelled);
    EXPECT_LT(gen->calls().back().end - start, 2500ms);
  }
  const std::string m = MetricsWith("hearth_generations_cancelled_total 2");
  EXPECT_NE(m.find("hearth_generations_cancelled_total 2"), std::string::npos) << m;
}

TEST_F(ServerHttp, TwoClientsAreQueuedFifoOnOneSlot) {
  ScriptedGenerator* gen = Start({}, /*slots=*/1);
  gen->script.assign(20, Content("x"));
  gen->hold = true;  // the first generation waits in its slot until the second is queued
  auto run = [&](const std::string& who) {
    auto c = server_->Client();
    json body = {{"messages", json::array({{{"role", "user"}, {"content", who}}})},
                 {"stream", true}};
    auto r = c.Post("/v1/chat/completions", body.dump(), "application/json");
    return r && r->status == 200 && r->body.find("[DONE]") != std::string::npos;
  };
  const auto within = [](const std::function<bool()>& done) {
    for (auto end = std::chrono::steady_clock::now() + 20s; std::chrono::steady_clock::now() < end;
         std::this_thread::sleep_for(5ms)) {
      if (done()) return true;
    }
    return false;
  };
  auto first = std::async(std::launch::async, run, "first");
  ASSERT_TRUE(within([&] { return gen->started == 1; }));
  auto second = std::async(std::launch::async, run, "second");
  // While the first runs, the second waits: the queue depth shows it.
  const bool saw_queue = within([&] {
    auto m = server_->Client().Get("/metrics");
    return m && m->body.find("hearth_queue_depth 1") != std::string::npos;
  });
  EXPECT_EQ(gen->started, 1);
  gen->hold = false;
  EXPECT_TRUE(first.get());
  EXPECT_TRUE(second.get());
  EXPECT_TRUE(saw_queue);
  const auto calls = gen->calls();
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0].request.messages[0]["content"], "first");
  EXPECT_EQ(calls[1].request.messages[0]["content"], "second");
  EXPECT_GE(calls[1].start, calls[0].end);  // never both in the one slot
}

TEST_F(ServerHttp, FullQueueGets503) {
  ServerOptions opt;
  opt.max_queue = 1;
  ScriptedGenerator* gen = Start(opt, /*slots=*/1);
  gen->script.assign(40, Content("x"));
  gen->delay = 10ms;
  auto run = [&] {
    return server_->Client().Post("/v1/chat/completions", kChat, "application/json")->status;
  };
  auto running = std::async(std::launch::async, run);
  std::this_thread::sleep_for(100ms);
  auto waiting = std::async(std::launch::async, run);
  const std::string m = MetricsWith("hearth_queue_depth 1");
  ASSERT_NE(m.find("hearth_queue_depth 1"), std::string::npos);
  ExpectError(Post("/v1/chat/completions", kChat), 503, "server_busy");
  EXPECT_EQ(running.get(), 200);
  EXPECT_EQ(waiting.get(), 200);
}

TEST_F(ServerHttp, RequestTimeoutEndsTheStreamWithAnError) {
  ServerOptions opt;
  opt.request_timeout_s = 1;
  ScriptedGenerator* gen = Start(opt);
  // 30 s of script: the generation must end long before, at the 1 s timeout (the bound below
  // leaves room for a loaded CI machine; a missed timeout would take the whole 30 s).
  gen->script.assign(3000, Content("x"));
  gen->delay = 10ms;
  auto r = Post("/v1/chat/completions", R"({"messages":[{"role":"user","content":"hi"}],
                                            "stream":true})");
  ASSERT_TRUE(r);
  const auto data = SseData(r->body);
  ASSERT_FALSE(data.empty());
  const json last = json::parse(data.back());
  EXPECT_EQ(last["error"]["code"], "timeout");
  ASSERT_EQ(gen->calls().size(), 1u);
  EXPECT_TRUE(gen->calls()[0].cancelled);
  EXPECT_LT(gen->calls()[0].end - gen->calls()[0].start, 15s);
}

TEST_F(ServerHttp, SilentClientIsDropped) {
  ServerOptions opt;
  opt.read_timeout_s = 1;
  Start(opt);
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(server_->port()));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  const std::string partial = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n";
  ASSERT_EQ(write(fd, partial.data(), partial.size()), static_cast<ssize_t>(partial.size()));
  // Then nothing: the server gives up after its read timeout and closes the connection.
  const auto start = std::chrono::steady_clock::now();
  char buf[256];
  while (read(fd, buf, sizeof buf) > 0) {
  }
  // Keep-alive wait (capped at the read timeout) plus the read timeout, with some slack.
  EXPECT_LT(std::chrono::steady_clock::now() - start, 4s);
  close(fd);
}

TEST_F(ServerHttp, TwoSlotsRunConcurrently) {
  ScriptedGenerator* gen = Start({}, /*slots=*/2);
  gen->script.assign(30, Content("x"));
  gen->delay = 10ms;
  auto run = [&] {
    return server_->Client().Post("/v1/chat/completions", kChat, "application/json")->status;
  };
  auto a = std::async(std::launch::async, run);
  auto b = std::async(std::launch::async, run);
  EXPECT_EQ(a.get(), 200);
  EXPECT_EQ(b.get(), 200);
  const auto calls = gen->calls();
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_NE(calls[0].slot, calls[1].slot);
  EXPECT_LT(calls[1].start, calls[0].end);  // overlapped
}

TEST_F(ServerHttp, MetricsCountRequestsAndTokens) {
  Start();
  Post("/v1/chat/completions", kChat);
  Post("/v1/chat/completions", "{");
  const std::string m =
      MetricsWith("hearth_requests_total{endpoint=\"/v1/chat/completions\",status=\"400\"} 1");
  EXPECT_NE(m.find("hearth_requests_total{endpoint=\"/v1/chat/completions\",status=\"200\"} 1"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("hearth_requests_total{endpoint=\"/v1/chat/completions\",status=\"400\"} 1"),
            std::string::npos);
  EXPECT_NE(m.find("hearth_completion_tokens_total 3"), std::string::npos);
  EXPECT_NE(m.find("hearth_generation_seconds_count 1"), std::string::npos);
  EXPECT_NE(m.find("# TYPE hearth_queue_depth gauge"), std::string::npos);
}

TEST_F(ServerHttp, StopCancelsRunningGenerations) {
  ScriptedGenerator* gen = Start();
  gen->script.assign(1000, Content("x"));
  gen->delay = 10ms;
  auto pending = std::async(std::launch::async, [&] {
    return server_->Client().Post("/v1/chat/completions", kChat, "application/json");
  });
  std::this_thread::sleep_for(100ms);
  const auto start = std::chrono::steady_clock::now();
  server_.reset();  // Stop + join
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
  pending.get();  // answered or cut, but not hanging
  (void)gen;      // owned by the stopped server: not to be read any more
}

// A stream that the server's own stop (Ctrl-C) cuts ends properly for the client that is still
// there: a last chunk whose finish_reason says "cancelled", then [DONE] (not "stop").
TEST_F(ServerHttp, StopEndsAStreamAsCancelled) {
  ScriptedGenerator* gen = Start();
  gen->script.assign(1000, Content("x"));
  gen->delay = 10ms;
  auto pending = std::async(std::launch::async, [&] {
    return server_->Client().Post("/v1/chat/completions",
                                  R"({"messages":[{"role":"user","content":"hi"}],"stream":true})",
                                  "application/json");
  });
  std::this_thread::sleep_for(200ms);
  server_->server().Stop();
  auto r = pending.get();
  ASSERT_TRUE(r);
  const auto data = SseData(r->body);
  ASSERT_GE(data.size(), 2u) << r->body;
  EXPECT_EQ(data.back(), "[DONE]");
  const json last = json::parse(data[data.size() - 2]);
  EXPECT_EQ(last["choices"][0]["finish_reason"], "cancelled") << r->body;
  (void)gen;
}

// Parameters that clients send by habit and that are harmless to ignore: 200 with a "warnings"
// note naming each (OpenAI non-streaming and streaming, Ollama); a truly unknown one is still 400.
TEST_F(ServerHttp, HarmlessUnknownParametersAreWarnings) {
  Start();
  auto r = Post("/v1/chat/completions", R"({"messages":[{"role":"user","content":"hi"}],
      "cache_prompt":true,"typical_p":0.9,"n_probs":3,"top_logprobs":2})");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  json j = json::parse(r->body);
  ASSERT_EQ(j["warnings"].size(), 4u) << r->body;
  EXPECT_EQ(j["warnings"][0], "'cache_prompt' is not supported by hearth and was ignored");
  EXPECT_EQ(j["choices"][0]["message"]["content"], "Hello");

  r = Post("/v1/chat/completions", R"({"messages":[{"role":"user","content":"hi"}],
      "stream":true,"mirostat":2})");
  ASSERT_TRUE(r);
  const auto data = SseData(r->body);
  ASSERT_GE(data.size(), 2u);
  j = json::parse(data[data.size() - 2]);
  EXPECT_EQ(j["warnings"][0], "'mirostat' is not supported by hearth and was ignored") << r->body;

  r = Post("/api/chat", R"({"messages":[{"role":"user","content":"hi"}],"stream":false,
      "options":{"mirostat":1,"temperature":0}})");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  j = json::parse(r->body);
  EXPECT_EQ(j["warnings"][0], "'options.mirostat' is not supported by hearth and was ignored");

  // Without any, no "warnings" key at all.
  r = Post("/v1/chat/completions", kChat);
  ASSERT_TRUE(r);
  EXPECT_FALSE(json::parse(r->body).contains("warnings"));
  ExpectError(Post("/v1/chat/completions",
                   R"({"messages":[{"role":"user","content":"hi"}],"frobnicate":1})"),
              400, "unknown_field");
}

// /api/ps lists the loaded model; /api/pull and /api/delete go to the hooks the serve command
// supplies (501 without them), streaming Ollama-style progress, with the usual auth.
TEST_F(ServerHttp, OllamaPsPullAndDelete) {
  ServerOptions opt;
  opt.api_key = "k";
  std::vector<std::string> pulled, deleted;
  opt.pull_model = [&](const std::string& name, const ServerOptions::Progress& progress,
                       const std::atomic<bool>&) -> std::string {
    if (name == "bad") throw Error(ErrorClass::kUsage, "unknown model 'bad'");
    progress(50, 100);
    progress(100, 100);
    pulled.push_back(name);
    return "/models/" + name + ".gguf";
  };
  opt.delete_model = [&](const std::string& name) -> std::string {
    if (name != "e2b") throw Error(ErrorClass::kUsage, "no model '" + name + "'");
    deleted.push_back(name);
    return "/models/e2b.gguf";
  };
  Start(opt);
  const httplib::Headers auth = {{"Authorization", "Bearer k"}};
  auto c = server_->Client();
  auto r = c.Get("/api/ps", auth);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  json j = json::parse(r->body);
  ASSERT_EQ(j["models"].size(), 1u);
  EXPECT_TRUE(j["models"][0]["name"].is_string());
  EXPECT_TRUE(j["models"][0].contains("expires_at"));

  // Without the key: 401, and the hook is never called.
  ExpectError(Post("/api/pull", R"({"model":"e2b"})"), 401, "invalid_api_key");
  EXPECT_TRUE(pulled.empty());

  r = Post("/api/pull", R"({"model":"e2b"})", auth);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200);
  const auto lines = NdjsonLines(r->body);
  ASSERT_GE(lines.size(), 4u) << r->body;
  EXPECT_EQ(lines.front()["status"], "pulling manifest");
  EXPECT_EQ(lines[1]["total"], 100);
  EXPECT_EQ(lines.back()["status"], "success");
  EXPECT_EQ(pulled, std::vector<std::string>{"e2b"});

  r = Post("/api/pull", R"({"name":"e2b","stream":false})", auth);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(json::parse(r->body)["status"], "success");
  ExpectError(Post("/api/pull", R"({"model":"bad","stream":false})", auth), 400, "invalid_value");
  r = Post("/api/pull", R"({"model":"bad"})", auth);
  ASSERT_TRUE(r);
  EXPECT_EQ(NdjsonLines(r->body).back()["error"], "unknown model 'bad'");
  ExpectError(Post("/api/pull", R"({"stream":false})", auth), 400, "missing");
  ExpectError(Post("/api/pull", "[1]", auth), 400, "invalid_json");

  r = c.Delete("/api/delete", auth, R"({"model":"e2b"})", "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(deleted, std::vector<std::string>{"e2b"});
  ExpectError(c.Delete("/api/delete", auth, R"({"model":"../etc"})", "application/json"), 404,
              "model_not_found");
  ExpectError(c.Delete("/api/delete", R"({"model":"e2b"})", "application/json"), 401,
              "invalid_api_key");
  EXPECT_EQ(deleted.size(), 1u);
}

TEST_F(ServerHttp, PullAndDeleteWithoutAFolderAre501) {
  Start();
  ExpectError(Post("/api/pull", R"({"model":"e2b"})"), 501, "not_implemented");
  auto c = server_->Client();
  ExpectError(c.Delete("/api/delete", R"({"model":"e2b"})", "application/json"), 501,
              "not_implemented");
}

// One access-log line per request on stderr (method, path, status, tokens, ms); none with quiet.
TEST_F(ServerHttp, AccessLogLinePerRequest) {
  Start();
  ::testing::internal::CaptureStderr();
  ASSERT_TRUE(Post("/v1/chat/completions", kChat));
  ASSERT_TRUE(server_->Client().Get("/nope%1b%5b31m"));
  server_.reset();  // the logger runs after the response; stopping waits for it
  const std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(log.find("hearth: POST /v1/chat/completions 200 "), std::string::npos) << log;
  const size_t at = log.find("hearth: POST /v1/chat/completions 200 ");
  const std::string line = log.substr(at, log.find('\n', at) - at);
  EXPECT_NE(line.find(" tokens "), std::string::npos) << line;
  EXPECT_TRUE(line.ends_with(" ms")) << line;
  EXPECT_NE(log.find("hearth: GET /nope"), std::string::npos) << log;
  EXPECT_EQ(log.find('\x1b'), std::string::npos) << "escape from the client's path printed";

  ServerOptions quiet;
  quiet.quiet = true;
  Start(quiet);
  ::testing::internal::CaptureStderr();
  ASSERT_TRUE(Post("/v1/chat/completions", kChat));
  server_.reset();
  EXPECT_EQ(::testing::internal::GetCapturedStderr().find("hearth: POST"), std::string::npos);
}

}  // namespace
}  // namespace hearth::server::testing
