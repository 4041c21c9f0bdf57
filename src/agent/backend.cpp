// GemmaBackend (render → generate → parse) and the remote OpenAI/Ollama backend over libcurl.
#include "agent/backend.h"

#include <curl/curl.h>

#include <mutex>

#include "base/error.h"
#include "text/chat_template.h"
#include "text/output_parser.h"

namespace hearth::agent {
using nlohmann::json;
using nlohmann::ordered_json;

// ---------------------------------------------------------------- GemmaBackend

ChatReply GemmaBackend::Chat(const ChatRequest& request) {
  ordered_json inputs;
  inputs["messages"] = request.messages;
  if (!request.tools.empty()) inputs["tools"] = request.tools;
  inputs["add_generation_prompt"] = true;
  inputs["enable_thinking"] = request.think;
  const std::string prompt = text::RenderChat(inputs);

  text::ParserConfig config;
  // The parser reads generation prompt + output. After tool results the model continues its open
  // turn, where it may think again, so the open-turn form is the right prefix there too.
  const std::string off = "<|turn>model\n<|channel>thought\n<channel|>";
  config.generation_prompt = prompt.ends_with(off) ? off : "<|turn>model\n";
  for (const auto& t : request.tools) config.tool_names.push_back(t["function"]["name"]);
  text::OutputParser parser(config);

  std::string streamed, raw_text;
  auto emit = [&](const text::ParseDelta& d) {
    if (!d.reasoning.empty() && request.on_reasoning) request.on_reasoning(d.reasoning);
    if (!d.content.empty() && request.on_content) request.on_content(d.content);
    streamed += d.content;
  };
  RawResult raw = Generate(
      prompt, request.max_tokens,
      [&](std::string_view piece) {
        raw_text += piece;
        emit(parser.Push(piece));
        return true;
      },
      request.cancel);
  text::ParseDelta last;
  text::ParsedOutput out = parser.Finish(&last);
  emit(last);
  // With tools declared the parser drops what does not match the format (llama.cpp's lenient
  // end) instead of failing; output that yielded nothing at all counts as malformed as well.
  const bool blank = raw_text.find_first_not_of(" \t\r\n") == std::string::npos;
  if (!out.error && !blank && out.content.empty() && out.reasoning.empty() &&
      out.tool_calls.empty()) {
    out.error = true;
  }
  if (out.error) {
    // Output that is not in Gemma 4's format is shown as it is (as the engine's ChatSession
    // does) rather than lost; the rest of what was streamed is delivered now.
    out.content = raw_text;
    out.reasoning.clear();
    out.tool_calls.clear();
    const bool prefix = raw_text.compare(0, streamed.size(), streamed) == 0;
    const size_t from = prefix ? streamed.size() : 0;
    if (request.on_content && raw_text.size() > from) {
      request.on_content(std::string_view(raw_text).substr(from));
    }
  }

  ChatReply reply;
  reply.content = out.content;
  reply.reasoning = out.reasoning;
  reply.malformed = out.error;
  reply.prompt_tokens = raw.prompt_tokens;
  reply.reused_tokens = raw.reused_tokens;
  reply.completion_tokens = raw.completion_tokens;
  int n = 0;
  for (const auto& c : out.tool_calls) {
    reply.tool_calls.push_back({"call_" + std::to_string(++n), c.name, c.arguments, c.complete});
  }
  reply.finish_reason = reply.tool_calls.empty() ? raw.finish_reason : "tool_calls";
  return reply;
}

// ---------------------------------------------------------------- remote

namespace {

struct Url {
  std::string scheme, host_port, path;
};

Url ParseUrl(const std::string& url) {
  Url u;
  size_t sep = url.find("://");
  if (sep == std::string::npos) {
    ThrowUsage("backend URL '" + url + "' has no scheme",
               "write it as http://HOST:PORT (OpenAI-compatible) or http://HOST:PORT/api/chat "
               "(Ollama)");
  }
  u.scheme = url.substr(0, sep);
  if (u.scheme != "http" && u.scheme != "https") {
    ThrowUsage("backend URL '" + url + "' is not http or https", "use an http(s):// URL");
  }
  std::string rest = url.substr(sep + 3);
  size_t slash = rest.find('/');
  u.host_port = rest.substr(0, slash);
  u.path = slash == std::string::npos ? "" : rest.substr(slash);
  if (u.host_port.empty() || u.host_port.find('@') != std::string::npos ||
      u.path.find_first_of("?#") != std::string::npos) {
    ThrowUsage("backend URL '" + url + "' is malformed",
               "write it as http(s)://HOST[:PORT][/path], without credentials or query");
  }
  while (!u.path.empty() && u.path.back() == '/') u.path.pop_back();
  return u;
}

size_t Collect(char* data, size_t size, size_t n, void* user) {
  auto* out = static_cast<std::string*>(user);
  if (out->size() > (64u << 20)) return 0;  // a reply past 64 MiB is not a chat reply
  out->append(data, size * n);
  return size * n;
}

class RemoteBackend : public Backend {
 public:
  RemoteBackend(const std::string& url, RemoteOptions options) : options_(std::move(options)) {
    Url u = ParseUrl(url);
    if (u.path.ends_with("/api/chat")) {
      ollama_ = true;
    } else if (u.path.ends_with("/chat/completions")) {
    } else if (u.path.ends_with("/v1")) {
      u.path += "/chat/completions";
    } else if (u.path.empty()) {
      u.path = "/v1/chat/completions";
    } else {
      ThrowUsage("backend URL path '" + u.path + "' is neither OpenAI's nor Ollama's",
                 "end it in /v1, /v1/chat/completions or /api/chat");
    }
    endpoint_ = u.scheme + "://" + u.host_port + u.path;
    static std::once_flag once;
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  }

  std::string Describe() const override {
    return std::string(ollama_ ? "Ollama" : "OpenAI-compatible") + " server " + endpoint_;
  }
  int CountTokens(std::string_view text) const override {
    return static_cast<int>((text.size() + 3) / 4);  // no tokenizer here: ~4 bytes a token
  }
  bool exact_tokens() const override { return false; }
  int context_size() const override { return options_.context_size; }

  ChatReply Chat(const ChatRequest& request) override {
    ordered_json body;
    body["model"] = options_.model.empty() ? "default" : options_.model;
    body["messages"] = ollama_ ? ToOllama(request.messages) : request.messages;
    if (!request.tools.empty()) body["tools"] = request.tools;
    body["stream"] = false;
    if (ollama_) {
      body["options"] = {{"num_predict", request.max_tokens}};
      body["think"] = request.think;
    } else {
      body["max_tokens"] = request.max_tokens;
      if (request.think) body["chat_template_kwargs"] = {{"enable_thinking", true}};
    }
    std::string response = Post(body.dump());
    json r;
    try {
      r = json::parse(response);
    } catch (const json::exception&) {
      ThrowInvalidInput(
          "the backend " + endpoint_ + " did not answer JSON: " + response.substr(0, 200),
          "check that the URL points at an OpenAI or Ollama chat endpoint");
    }
    ChatReply reply;
    try {
      const json& msg = ollama_ ? r.at("message") : r.at("choices").at(0).at("message");
      if (msg.contains("content") && msg["content"].is_string()) reply.content = msg["content"];
      for (const char* key : {"reasoning_content", "reasoning", "thinking"}) {
        if (msg.contains(key) && msg[key].is_string()) reply.reasoning = msg[key];
      }
      if (msg.contains("tool_calls") && msg["tool_calls"].is_array()) {
        int n = 0;
        for (const auto& c : msg["tool_calls"]) {
          ToolCall call;
          call.id = c.contains("id") && c["id"].is_string() ? c["id"].get<std::string>()
                                                            : "call_" + std::to_string(n + 1);
          ++n;
          const json& f = c.at("function");
          call.name = f.at("name").get<std::string>();
          const json& a = f.contains("arguments") ? f["arguments"] : json::object();
          if (a.is_string()) {
            call.arguments = a.get<std::string>();
            call.complete = json::accept(call.arguments);
          } else {
            call.arguments = a.dump();
          }
          reply.tool_calls.push_back(std::move(call));
        }
      }
      if (ollama_) {
        reply.finish_reason = r.value("done_reason", "stop");
        reply.prompt_tokens = r.value("prompt_eval_count", 0);
        reply.completion_tokens = r.value("eval_count", 0);
      } else {
        const json& choice = r["choices"][0];
        if (choice.contains("finish_reason") && choice["finish_reason"].is_string()) {
          reply.finish_reason = choice["finish_reason"];
        }
        if (r.contains("usage") && r["usage"].is_object()) {
          reply.prompt_tokens = r["usage"].value("prompt_tokens", 0);
          reply.completion_tokens = r["usage"].value("completion_tokens", 0);
        }
      }
    } catch (const json::exception& e) {
      ThrowInvalidInput("unexpected reply from " + endpoint_ + ": " + e.what(),
                        "check that the URL points at an OpenAI or Ollama chat endpoint");
    }
    if (!reply.tool_calls.empty()) reply.finish_reason = "tool_calls";
    if (!reply.reasoning.empty() && request.on_reasoning) request.on_reasoning(reply.reasoning);
    if (!reply.content.empty() && request.on_content) request.on_content(reply.content);
    return reply;
  }

 private:
  // Ollama wants tool-call arguments as objects and names tool results by tool_name.
  static ordered_json ToOllama(const ordered_json& messages) {
    ordered_json out = messages;
    for (auto& m : out) {
      if (m.contains("tool_calls")) {
        for (auto& c : m["tool_calls"]) {
          auto& a = c["function"]["arguments"];
          if (a.is_string()) a = ordered_json::parse(a.get<std::string>(), nullptr, false);
        }
      }
      if (m.value("role", "") == "tool" && m.contains("name")) m["tool_name"] = m["name"];
    }
    return out;
  }

  std::string Post(const std::string& body) {
    CURL* curl = curl_easy_init();
    if (!curl) throw Error(ErrorClass::kInternal, "libcurl could not be initialised");
    std::string response;
    curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
    curl_easy_setopt(curl, CURLOPT_URL, endpoint_.c_str());
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, Collect);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &response);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, static_cast<long>(options_.timeout_seconds));
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    // Only the configured host: no redirects, no proxies from the environment, http(s) only.
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(curl, CURLOPT_PROXY, "");
    curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    CURLcode rc = curl_easy_perform(curl);
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    if (rc != CURLE_OK) {
      ThrowIo("cannot reach the backend " + endpoint_ + ": " + curl_easy_strerror(rc),
              "check that the server is running and the URL is right");
    }
    if (status < 200 || status >= 300) {
      ThrowIo("the backend " + endpoint_ + " answered HTTP " + std::to_string(status) + ": " +
                  response.substr(0, 300),
              "check the model name (-m) and the server's log");
    }
    return response;
  }

  RemoteOptions options_;
  std::string endpoint_;
  bool ollama_ = false;
};

}  // namespace

std::unique_ptr<Backend> MakeRemoteBackend(const std::string& url, const RemoteOptions& options) {
  return std::make_unique<RemoteBackend>(url, options);
}

}  // namespace hearth::agent
