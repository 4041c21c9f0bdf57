// GemmaBackend (render → generate → parse) and the remote OpenAI/Ollama backend over libcurl.
#include "agent/backend.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>

#include "agent/config.h"
#include "base/base64.h"
#include "base/error.h"
#include "base/json_depth.h"
#include "base/read_file.h"
#include "text/output_parser.h"

namespace hearth::agent {
using nlohmann::json;
using nlohmann::ordered_json;

// ---------------------------------------------------------------- GemmaBackend

ChatReply GemmaBackend::Chat(const ChatRequest& request) {
  engine::TurnRequest turn;
  turn.messages = request.messages;
  turn.tools = request.tools;
  turn.thinking = request.think;
  // With tools declared the parser drops what does not match the format (llama.cpp's lenient
  // end) instead of failing; output that yielded nothing at all counts as malformed as well, so
  // it is shown as it is rather than lost.
  turn.malformed_if_nothing_parsed = true;
  turn.media = EncodeMedia(request.messages);
  const engine::ChatReply out = Turn(turn, request, [&](const text::ParseDelta& d) {
    if (!d.reasoning.empty() && request.on_reasoning) request.on_reasoning(d.reasoning);
    if (!d.content.empty() && request.on_content) request.on_content(d.content);
  });
  if (!out.unstreamed.empty() && request.on_content) request.on_content(out.unstreamed);

  ChatReply reply;
  reply.content = out.parsed.content;
  reply.reasoning = out.parsed.reasoning;
  reply.malformed = out.parsed.error;
  reply.prompt_tokens = out.stats.prompt_tokens;
  reply.reused_tokens = out.stats.reused_tokens;
  reply.completion_tokens = out.stats.generated_tokens;
  reply.prompt_seconds = out.stats.prompt_seconds;
  reply.generate_seconds = out.stats.generate_seconds;
  int n = 0;
  for (const auto& c : out.parsed.tool_calls) {
    reply.tool_calls.push_back({"call_" + std::to_string(++n), c.name, c.arguments, c.complete});
  }
  // Tool calls the model completed are run even when the turn was stopped after them.
  reply.finish_reason =
      reply.tool_calls.empty() ? engine::FinishReasonName(out.finish) : "tool_calls";
  return reply;
}

engine::ChatReply GemmaBackend::Turn(const engine::TurnRequest& turn, const ChatRequest& request,
                                     const engine::TurnReader::DeltaFn& on_delta) {
  const engine::PreparedTurn prepared = engine::PrepareTurn(turn, nullptr);
  engine::TurnReader reader(prepared, on_delta);
  const engine::GenerateStats stats = Generate(
      prepared.prompt, request.max_tokens,
      [&](std::string_view piece) {
        reader.Push(piece);
        return true;
      },
      request.cancel);
  return reader.Finish(stats);
}

std::vector<engine::MediaPtr> GemmaBackend::EncodeMedia(const ordered_json& messages) {
  if (!engine::MediaParts(messages).empty()) {
    ThrowUsage("this backend takes no images or audio", "ask without --image / --audio");
  }
  return {};
}

int GemmaBackend::MediaTokens(const ordered_json& messages) {
  int n = 0;
  for (const engine::MediaPtr& m : EncodeMedia(messages)) n += engine::PromptPositions(*m);
  return n;
}

engine::GenerateStats GemmaBackend::Generate(const std::string&, int,
                                             const std::function<bool(std::string_view)>&,
                                             const std::atomic<bool>*) {
  throw Error(ErrorClass::kInternal, "this backend does not generate text");
}

// ---------------------------------------------------------------- remote

namespace {

// A media file named on the command line, whole (at most 64 MiB: what the servers accept).
std::string ReadMediaFile(const std::string& path) {
  return ReadWholeFile(path, "a media file", 64u << 20,
                       "media sent to a server may be 64 MiB at most");
}

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

// Reads a streamed reply as it arrives: OpenAI's server-sent events ("data: {chunk}" lines, then
// "data: [DONE]") or Ollama's NDJSON (one JSON object a line), delivering content and thoughts
// through the request's callbacks and accumulating tool calls. A server that ignores "stream"
// and answers one JSON document is handled too (Finish parses what was collected).
class StreamReader {
 public:
  StreamReader(bool ollama, const ChatRequest& request, std::string endpoint)
      : ollama_(ollama), request_(request), endpoint_(std::move(endpoint)) {}

  // Bytes from the wire; false stops the transfer (cancelled, or a reply past 64 MiB).
  bool Push(std::string_view data) {
    if (raw_.size() > (64u << 20)) return false;
    raw_.append(data);
    if (!http_ok_) return true;  // an error body: kept whole for the message
    pending_.append(data);
    size_t start = 0;
    for (size_t nl; (nl = pending_.find('\n', start)) != std::string::npos; start = nl + 1) {
      Line(std::string_view(pending_).substr(start, nl - start));
    }
    pending_.erase(0, start);
    return !(request_.cancel && request_.cancel->load());
  }
  void set_http_ok(bool ok) { http_ok_ = ok; }
  const std::string& raw() const { return raw_; }

  // After the transfer: the whole reply. `cancelled`: the transfer was stopped by the user.
  ChatReply Finish(bool cancelled) {
    // A stopped transfer can end mid-line; only a reply that ran to its end has a last line
    // worth parsing (a server may omit the final newline).
    if (!pending_.empty() && !cancelled) Line(pending_);
    pending_.clear();
    if (!streamed_) {
      if (cancelled) {
        reply_.finish_reason = "cancelled";
        return reply_;
      }
      ParseWhole();
    }
    for (auto& [index, call] : calls_) {
      if (call.id.empty()) call.id = "call_" + std::to_string(index + 1);
      call.complete = json::accept(call.arguments);
      reply_.tool_calls.push_back(std::move(call));
    }
    if (cancelled) {
      reply_.finish_reason = "cancelled";
    } else if (!reply_.tool_calls.empty()) {
      reply_.finish_reason = "tool_calls";
    } else if (reply_.finish_reason.empty()) {
      reply_.finish_reason = "stop";
    }
    return reply_;
  }

 private:
  [[noreturn]] void Unexpected(const std::string& what) const {
    ThrowInvalidInput("unexpected reply from " + endpoint_ + ": " + what,
                      "check that the URL points at an OpenAI or Ollama chat endpoint");
  }

  void Line(std::string_view line) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
    if (line.empty()) return;
    if (!ollama_) {
      if (!line.starts_with("data:")) return;  // event:, id:, ": keep-alive" comments
      line.remove_prefix(5);
      while (!line.empty() && line.front() == ' ') line.remove_prefix(1);
      streamed_ = true;
      if (line == "[DONE]") return;
    } else if (line.front() != '{') {
      return;
    }
    RefuseDeep(line);
    json chunk = json::parse(line, nullptr, false);
    if (chunk.is_discarded() || !chunk.is_object()) {
      if (ollama_ && !streamed_) return;  // maybe one pretty-printed document: ParseWhole
      Unexpected("a streamed piece is not JSON: " + std::string(line.substr(0, 200)));
    }
    if (chunk.contains("error")) Unexpected("the server reported an error: " + chunk.dump());
    if (ollama_) {
      streamed_ = true;
      Message(chunk.value("message", json::object()), /*delta=*/false);
      if (chunk.value("done", false)) Totals(chunk);
    } else {
      OpenAiChunk(chunk);
    }
  }

  // A reply nested deeper than any chat reply needs (tool arguments included) is refused before
  // it is parsed: writing it back out (a.dump() below, the next request) would recurse that deep.
  void RefuseDeep(std::string_view text) {
    constexpr int kEnvelope = 8;  // choices[0].delta.tool_calls[0].function.arguments
    if (JsonDeeperThan(text, kMaxJsonDepth + kEnvelope)) {
      Unexpected("the reply nests deeper than " + std::to_string(kMaxJsonDepth + kEnvelope) +
                 " levels");
    }
  }

  void OpenAiChunk(const json& chunk) {
    if (chunk.contains("usage") && chunk["usage"].is_object()) Totals(chunk);
    if (!chunk.contains("choices") || !chunk["choices"].is_array() || chunk["choices"].empty()) {
      return;  // the usage-only chunk at the end
    }
    const json& choice = chunk["choices"][0];
    if (choice.contains("delta") && choice["delta"].is_object()) {
      Message(choice["delta"], /*delta=*/true);
    } else if (choice.contains("message") && choice["message"].is_object()) {
      Message(choice["message"], /*delta=*/false);
    }
    if (choice.contains("finish_reason") && choice["finish_reason"].is_string()) {
      reply_.finish_reason = choice["finish_reason"];
    }
  }

  // A message (or an OpenAI delta) of the reply: text pieces go out at once; tool calls are
  // accumulated by index (OpenAI sends the id and name first, then the arguments in pieces).
  void Message(const json& msg, bool delta) {
    for (const char* key : {"reasoning_content", "reasoning", "thinking"}) {
      if (msg.contains(key) && msg[key].is_string()) {
        const std::string& s = msg[key].get_ref<const std::string&>();
        reply_.reasoning += s;
        if (!s.empty() && request_.on_reasoning) request_.on_reasoning(s);
      }
    }
    if (msg.contains("content") && msg["content"].is_string()) {
      const std::string& s = msg["content"].get_ref<const std::string&>();
      reply_.content += s;
      if (!s.empty() && request_.on_content) request_.on_content(s);
    }
    if (!msg.contains("tool_calls") || !msg["tool_calls"].is_array()) return;
    for (const auto& c : msg["tool_calls"]) {
      if (!c.is_object()) Unexpected("a tool call is not an object");
      const int index = delta && c.contains("index") && c["index"].is_number_integer()
                            ? c["index"].get<int>()
                            : static_cast<int>(calls_.size());
      ToolCall& call = calls_[index];
      if (c.contains("id") && c["id"].is_string()) call.id = c["id"];
      if (!c.contains("function") || !c["function"].is_object()) continue;
      const json& f = c["function"];
      if (f.contains("name") && f["name"].is_string()) call.name += f["name"].get<std::string>();
      if (f.contains("arguments")) {
        const json& a = f["arguments"];
        call.arguments += a.is_string() ? a.get<std::string>() : a.dump();
      } else if (!delta && call.arguments.empty()) {
        call.arguments = "{}";
      }
    }
  }

  void Totals(const json& r) {
    if (ollama_) {
      if (r.contains("done_reason") && r["done_reason"].is_string()) {
        reply_.finish_reason = r["done_reason"];
      }
      reply_.prompt_tokens = r.value("prompt_eval_count", 0);
      reply_.completion_tokens = r.value("eval_count", 0);
    } else {
      reply_.prompt_tokens = r["usage"].value("prompt_tokens", 0);
      reply_.completion_tokens = r["usage"].value("completion_tokens", 0);
    }
  }

  // A reply that was not streamed: one JSON document.
  void ParseWhole() {
    RefuseDeep(raw_);
    json r = json::parse(raw_, nullptr, false);
    if (r.is_discarded()) {
      ThrowInvalidInput("the backend " + endpoint_ + " did not answer JSON: " + raw_.substr(0, 200),
                        "check that the URL points at an OpenAI or Ollama chat endpoint");
    }
    if (!r.is_object()) Unexpected("not a JSON object");
    if (r.contains("error")) Unexpected("the server reported an error: " + r.dump());
    if (ollama_) {
      if (!r.contains("message") || !r["message"].is_object()) Unexpected("no message");
      Message(r["message"], /*delta=*/false);
      Totals(r);
    } else {
      if (!r.contains("choices") || !r["choices"].is_array() || r["choices"].empty() ||
          !r["choices"][0].is_object() || !r["choices"][0].contains("message")) {
        Unexpected("no choices[0].message");
      }
      OpenAiChunk(r);
    }
  }

  bool ollama_;
  const ChatRequest& request_;
  std::string endpoint_;
  std::string raw_, pending_;
  bool http_ok_ = true;
  bool streamed_ = false;
  ChatReply reply_;
  std::map<int, ToolCall> calls_;
};

size_t OnBytes(char* data, size_t size, size_t n, void* user) {
  auto* reader = static_cast<StreamReader*>(user);
  return reader->Push(std::string_view(data, size * n)) ? size * n : 0;
}

int OnProgress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  const auto* cancel = static_cast<const std::atomic<bool>*>(user);
  return cancel && cancel->load() ? 1 : 0;  // non-zero aborts a transfer still waiting
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
  // An estimate: the server encodes. An image takes its budget (the largest, 1120, when not
  // given: servers default to it), a clip 25 tokens a second; a clip's length is not known
  // here, so 30 s.
  int MediaTokens(const ordered_json& messages) override {
    int n = 0;
    for (const ordered_json* part : engine::MediaParts(messages)) {
      engine::MediaKind kind = engine::MediaKind::kImage;
      engine::IsMediaPart(*part, &kind);
      if (kind == engine::MediaKind::kVideo) {
        // 60 s at the part's rate, each frame its budget plus markers and a timestamp.
        n += static_cast<int>(60 * part->value("video_fps", 1.0)) *
             (part->value("image_tokens", 70) + 6);
        continue;
      }
      n += kind == engine::MediaKind::kAudio ? 750 : part->value("image_tokens", 1120);
    }
    return n;
  }
  // -c when given; else what the server says, asked once; else kAssumedContext.
  int context_size() const override {
    if (options_.context_size > 0) return options_.context_size;
    if (!asked_context_) {
      asked_context_ = true;
      try {
        server_context_ = ollama_ ? OllamaContext() : OpenAiContext();
      } catch (const std::exception&) {
        server_context_ = 0;  // the server does not say (or not in a form we know)
      }
    }
    return server_context_ > 0 ? server_context_ : kAssumedContext;
  }

  ChatReply Chat(const ChatRequest& request) override {
    ordered_json body;
    body["model"] = options_.model.empty() ? "default" : options_.model;
    body["messages"] = ollama_ ? ToOllama(WithInlineMedia(request.messages, true))
                               : WithInlineMedia(request.messages, false);
    if (!request.tools.empty()) body["tools"] = request.tools;
    body["stream"] = true;  // pieces are shown as they arrive
    if (ollama_) {
      // The window the conversation was budgeted for: Ollama's own default may be smaller, and
      // it would cut the prompt silently.
      body["options"] = {{"num_predict", request.max_tokens}, {"num_ctx", context_size()}};
      body["think"] = request.think;
    } else {
      body["max_tokens"] = request.max_tokens;
      body["stream_options"] = {{"include_usage", true}};
      if (request.think) body["chat_template_kwargs"] = {{"enable_thinking", true}};
    }
    StreamReader reader(ollama_, request, endpoint_);
    // The conversation is valid UTF-8 (the agent sees to it); replace, not throw, all the same.
    const bool cancelled = Post(body.dump(-1, ' ', false, ordered_json::error_handler_t::replace),
                                reader, request.cancel);
    ChatReply reply = reader.Finish(cancelled);
    return reply;
  }

 private:
  // The conversation with the command line's file parts ({"type":"image"|"audio","path":F})
  // replaced by their bytes, inline, as the APIs take them: OpenAI's image_url (a data: URL;
  // budgets of 140 tokens or less ask for detail "low") and input_audio parts; for Ollama each
  // user message's images go to its "images" list (base64) and its text parts become the
  // content string. Ollama's chat API takes no audio: refused.
  static ordered_json WithInlineMedia(const ordered_json& messages, bool ollama) {
    if (engine::MediaParts(messages).empty()) return messages;
    ordered_json out = messages;
    for (auto& m : out) {
      if (m.is_object()) m.erase(kToolMediaKey);
      if (!m.contains("content") || !m["content"].is_array()) continue;
      ordered_json parts = ordered_json::array(), images = ordered_json::array();
      std::string text;
      for (const auto& part : m["content"]) {
        engine::MediaKind kind = engine::MediaKind::kImage;
        if (!engine::IsMediaPart(part, &kind)) {
          parts.push_back(part);
          if (part.value("type", "") == "text") text += part.value("text", "");
          continue;
        }
        const std::string type = part.value("type", "");
        if (kind == engine::MediaKind::kVideo) {
          // OpenAI's API has no video part; hearth serve takes video_url with a data: URL.
          if (ollama) {
            ThrowUsage("Ollama's chat API takes no video",
                       "use hearth serve or the local engine for --video");
          }
          if (type == "video_url") {
            parts.push_back(part);
            continue;
          }
          ordered_json video_url = {{"url", "data:video/*;base64," + EncodeBase64(ReadMediaFile(
                                                                         part.value("path", "")))}};
          ordered_json out_part = {{"type", "video_url"}, {"video_url", video_url}};
          if (part.contains("video_fps")) out_part["video_fps"] = part["video_fps"];
          if (part.contains("image_tokens")) out_part["image_tokens"] = part["image_tokens"];
          parts.push_back(out_part);
          continue;
        }
        if (kind == engine::MediaKind::kAudio) {
          if (ollama) {
            ThrowUsage("Ollama's chat API takes no audio",
                       "use an OpenAI-compatible server (hearth serve) or the local engine");
          }
          if (type == "input_audio") {
            parts.push_back(part);
            continue;
          }
          const std::string path = part.value("path", "");
          std::string format = std::filesystem::path(path).extension().string();
          if (!format.empty()) format.erase(0, 1);
          for (char& c : format) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
          parts.push_back({{"type", "input_audio"},
                           {"input_audio",
                            {{"data", EncodeBase64(ReadMediaFile(path))},
                             {"format", format.empty() ? "wav" : format}}}});
          continue;
        }
        std::string url;
        if (type == "image_url") {
          const auto& iu = part["image_url"];
          url = iu.is_string() ? iu.get<std::string>() : iu.value("url", "");
        } else {
          const std::string bytes = ReadMediaFile(part.value("path", ""));
          std::string_view mime = ImageMimeType(bytes);
          if (mime.empty()) mime = "application/octet-stream";  // the server says what it is not
          url = "data:" + std::string(mime) + ";base64," + EncodeBase64(bytes);
        }
        if (ollama) {
          const size_t comma = url.find(',');
          images.push_back(comma == std::string::npos ? url : url.substr(comma + 1));
          continue;
        }
        ordered_json image_url = {{"url", url}};
        const int budget = part.value("image_tokens", 0);
        if (budget > 0 && budget <= 140) image_url["detail"] = "low";
        parts.push_back({{"type", "image_url"}, {"image_url", image_url}});
      }
      if (ollama) {
        m["content"] = text;
        if (!images.empty()) m["images"] = images;
      } else {
        m["content"] = parts;
      }
    }
    return out;
  }

  // Ollama wants tool-call arguments as objects and names tool results by tool_name.
  static ordered_json ToOllama(const ordered_json& messages) {
    ordered_json out = messages;
    for (auto& m : out) {
      if (m.contains("tool_calls")) {
        for (auto& c : m["tool_calls"]) {
          auto& a = c["function"]["arguments"];
          if (a.is_string() && !JsonDeeperThan(a.get_ref<const std::string&>(), kMaxJsonDepth)) {
            a = ordered_json::parse(a.get<std::string>(), nullptr, false);
          }
        }
      }
      if (m.value("role", "") == "tool" && m.contains("name")) m["tool_name"] = m["name"];
    }
    return out;
  }

  static constexpr int kAssumedContext = 8192;

  // The body of a GET (empty `body`) or POST to `url` on the backend's host; throws on anything
  // but a 2xx within 10 s. For the context size only, so no cancel flag.
  std::string Fetch(const std::string& url, const std::string& body) const {
    CURL* curl = curl_easy_init();
    if (!curl) throw Error(ErrorClass::kInternal, "libcurl could not be initialised");
    curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
    if (!options_.api_key.empty()) {
      headers = curl_slist_append(headers, ("Authorization: Bearer " + options_.api_key).c_str());
    }
    std::string out;
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    if (!body.empty()) {
      curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.c_str());
      curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    }
    curl_easy_setopt(
        curl, CURLOPT_WRITEFUNCTION, +[](char* data, size_t size, size_t n, void* user) {
          auto* s = static_cast<std::string*>(user);
          if (s->size() > (4u << 20)) return size_t{0};  // no sane model list is this big
          s->append(data, size * n);
          return size * n;
        });
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &out);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 10L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(curl, CURLOPT_PROXY, "");
    curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    const CURLcode rc = curl_easy_perform(curl);
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    if (rc != CURLE_OK || status < 200 || status >= 300) ThrowIo("no answer");
    return out;
  }

  // Ollama's /api/show: the model's num_ctx parameter when it has one (what Ollama runs it
  // with), else its trained context_length, at most kAssumedContext (Ollama would allocate the
  // whole window for it).
  int OllamaContext() const {
    const std::string base = endpoint_.substr(0, endpoint_.size() - std::string("/chat").size());
    const ordered_json show = ordered_json::parse(
        Fetch(base + "/show",
              ordered_json{{"model", options_.model.empty() ? "default" : options_.model}}.dump()));
    if (show.contains("parameters") && show["parameters"].is_string()) {
      const std::string& p = show["parameters"].get_ref<const std::string&>();
      if (const size_t at = p.find("num_ctx"); at != std::string::npos) {
        const int n = std::atoi(p.c_str() + at + 7);
        if (n > 0) return n;
      }
    }
    if (show.contains("model_info") && show["model_info"].is_object()) {
      for (const auto& [key, value] : show["model_info"].items()) {
        if (key.ends_with(".context_length") && value.is_number_integer() &&
            value.get<int64_t>() > 0) {
          return static_cast<int>(std::min<int64_t>(value.get<int64_t>(), kAssumedContext));
        }
      }
    }
    return 0;
  }

  // An OpenAI-style /v1/models entry for the model (or the only one): the serving context as
  // hearth serve (meta.n_ctx), vLLM (max_model_len) and others (context_length, context_window)
  // report it. A trained maximum (llama-server's meta.n_ctx_train) is not the serving window.
  int OpenAiContext() const {
    const std::string base =
        endpoint_.substr(0, endpoint_.size() - std::string("/chat/completions").size());
    const ordered_json list = ordered_json::parse(Fetch(base + "/models", ""));
    if (!list.contains("data") || !list["data"].is_array()) return 0;
    const ordered_json* entry = nullptr;
    for (const auto& m : list["data"]) {
      if (m.is_object() && m.value("id", "") == options_.model) entry = &m;
    }
    if (entry == nullptr && list["data"].size() == 1 && list["data"][0].is_object()) {
      entry = &list["data"][0];
    }
    if (entry == nullptr) return 0;
    auto number = [](const ordered_json& v) {
      return v.is_number_integer() && v.get<int64_t>() > 0 && v.get<int64_t>() < (1 << 30)
                 ? static_cast<int>(v.get<int64_t>())
                 : 0;
    };
    if (entry->contains("meta") && (*entry)["meta"].is_object() &&
        (*entry)["meta"].contains("n_ctx")) {
      if (const int n = number((*entry)["meta"]["n_ctx"])) return n;
    }
    for (const char* key : {"max_model_len", "context_length", "context_window"}) {
      if (entry->contains(key)) {
        if (const int n = number((*entry)[key])) return n;
      }
    }
    return 0;
  }

  // POSTs `body`, feeding the reply to `reader` as it arrives. Returns true when the user
  // cancelled (what arrived until then stays in the reader).
  bool Post(const std::string& body, StreamReader& reader, const std::atomic<bool>* cancel) {
    CURL* curl = curl_easy_init();
    if (!curl) throw Error(ErrorClass::kInternal, "libcurl could not be initialised");
    curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
    if (!options_.api_key.empty()) {
      headers = curl_slist_append(headers, ("Authorization: Bearer " + options_.api_key).c_str());
    }
    curl_easy_setopt(curl, CURLOPT_URL, endpoint_.c_str());
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, OnBytes);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &reader);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, OnHeader);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &reader);
    // Ctrl-C also while the server is still thinking about the first byte.
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, OnProgress);
    curl_easy_setopt(curl, CURLOPT_XFERINFODATA, cancel);
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
    const bool cancelled = cancel && cancel->load();
    if (cancelled &&
        (rc == CURLE_WRITE_ERROR || rc == CURLE_ABORTED_BY_CALLBACK || rc == CURLE_OK)) {
      return true;
    }
    if (rc != CURLE_OK) {
      ThrowIo("cannot reach the backend " + endpoint_ + ": " + curl_easy_strerror(rc),
              "check that the server is running and the URL is right");
    }
    if (status == 401 || status == 403) {
      ThrowIo(
          "the backend " + endpoint_ + " answered HTTP " + std::to_string(status) +
              (options_.api_key.empty() ? " (it wants an API key)" : " (the API key was refused)"),
          "give the key with --api-key, $HEARTH_API_KEY or api_key in [agent] of " +
              UserConfigPath().string());
    }
    if (status < 200 || status >= 300) {
      ThrowIo("the backend " + endpoint_ + " answered HTTP " + std::to_string(status) + ": " +
                  reader.raw().substr(0, 300),
              "check the model name (-m) and the server's log");
    }
    return false;
  }

  // The status line of each response (a 100 Continue comes first): a non-2xx reply is collected
  // whole for the error message instead of being read as a stream.
  static size_t OnHeader(char* data, size_t size, size_t n, void* user) {
    std::string_view line(data, size * n);
    if (line.starts_with("HTTP/")) {
      size_t sp = line.find(' ');
      bool ok = sp != std::string_view::npos && sp + 1 < line.size() && line[sp + 1] == '2';
      static_cast<StreamReader*>(user)->set_http_ok(ok);
    }
    return size * n;
  }

  RemoteOptions options_;
  std::string endpoint_;
  bool ollama_ = false;
  mutable bool asked_context_ = false;
  mutable int server_context_ = 0;
};

}  // namespace

std::unique_ptr<Backend> MakeRemoteBackend(const std::string& url, const RemoteOptions& options) {
  return std::make_unique<RemoteBackend>(url, options);
}

}  // namespace hearth::agent
