// The HTTP side of `hearth serve`: routes, the slot queue, streaming, metrics, the Host and Origin
// checks. The only file that includes httplib.h (a big header), so the rest of the layer compiles
// fast. httplib parses and answers requests; the sockets are the listener's (listener.h), which
// reads each request whole under deadlines and limits before a worker thread sees it.
#include <arpa/inet.h>
#include <httplib.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <deque>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <sstream>

#include "audio/audio.h"
#include "base/display.h"
#include "base/error.h"
#include "base/version.h"
#include "server/listener.h"
#include "server/request.h"
#include "server/server.h"

namespace hearth::server {

extern const char* const kIndexHtml;  // web_assets.cpp, generated from web/index.html

namespace {

using Json = nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;

std::string Dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

int64_t UnixNow() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string Rfc3339Now() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[96];
  const auto us =
      std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count() %
      1000000;
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(us));
  return buf;
}

std::string RandomId(size_t n) {
  static const char kChars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::string s;
  for (size_t i = 0; i < n; ++i) s += kChars[rng() % (sizeof kChars - 1)];
  return s;
}

// ---- metrics (Prometheus text format) ----
class Metrics {
 public:
  static constexpr double kBuckets[] = {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120};

  void CountRequest(const std::string& endpoint, int status) {
    std::lock_guard lock(mu_);
    ++requests_[{endpoint, status}];
  }
  void RecordGeneration(const GenerationResult& r, double seconds) {
    std::lock_guard lock(mu_);
    tokens_in_ += r.prompt_tokens;
    tokens_out_ += r.completion_tokens;
    tokens_cached_ += r.cached_tokens;
    drafted_ += r.drafted_tokens;
    accepted_ += r.accepted_tokens;
    if (r.finish == FinishReason::kCancelled) ++cancelled_;
    for (size_t i = 0; i < std::size(kBuckets); ++i) {
      if (seconds <= kBuckets[i]) ++latency_buckets_[i];
    }
    latency_sum_ += seconds;
    ++latency_count_;
  }
  std::string Render(int queue_depth, int busy, int slots) const {
    std::lock_guard lock(mu_);
    std::ostringstream o;
    o << "# HELP hearth_requests_total HTTP requests by endpoint and status.\n"
      << "# TYPE hearth_requests_total counter\n";
    for (const auto& [key, n] : requests_) {
      o << "hearth_requests_total{endpoint=\"" << key.first << "\",status=\"" << key.second
        << "\"} " << n << "\n";
    }
    o << "# HELP hearth_prompt_tokens_total Prompt tokens of finished generations.\n"
      << "# TYPE hearth_prompt_tokens_total counter\nhearth_prompt_tokens_total " << tokens_in_
      << "\n# HELP hearth_prompt_tokens_cached_total Prompt tokens reused from a slot's cache.\n"
      << "# TYPE hearth_prompt_tokens_cached_total counter\nhearth_prompt_tokens_cached_total "
      << tokens_cached_ << "\n# HELP hearth_completion_tokens_total Generated tokens.\n"
      << "# TYPE hearth_completion_tokens_total counter\nhearth_completion_tokens_total "
      << tokens_out_
      << "\n# HELP hearth_generations_cancelled_total Generations stopped by a client going away "
         "or a timeout.\n# TYPE hearth_generations_cancelled_total counter\n"
      << "hearth_generations_cancelled_total " << cancelled_
      << "\n# HELP hearth_draft_tokens_total Tokens proposed by speculative decoding's draft "
         "source.\n# TYPE hearth_draft_tokens_total counter\nhearth_draft_tokens_total "
      << drafted_
      << "\n# HELP hearth_draft_tokens_accepted_total Drafted tokens the model agreed with.\n"
         "# TYPE hearth_draft_tokens_accepted_total counter\nhearth_draft_tokens_accepted_total "
      << accepted_
      << "\n# HELP hearth_generation_seconds Time from taking a slot to the last token.\n"
      << "# TYPE hearth_generation_seconds histogram\n";
    for (size_t i = 0; i < std::size(kBuckets); ++i) {
      o << "hearth_generation_seconds_bucket{le=\"" << kBuckets[i] << "\"} " << latency_buckets_[i]
        << "\n";
    }
    o << "hearth_generation_seconds_bucket{le=\"+Inf\"} " << latency_count_ << "\n"
      << "hearth_generation_seconds_sum " << latency_sum_ << "\n"
      << "hearth_generation_seconds_count " << latency_count_ << "\n"
      << "# HELP hearth_queue_depth Requests waiting for a slot.\n"
      << "# TYPE hearth_queue_depth gauge\nhearth_queue_depth " << queue_depth << "\n"
      << "# HELP hearth_slots_busy Slots generating now.\n"
      << "# TYPE hearth_slots_busy gauge\nhearth_slots_busy " << busy << "\n"
      << "# HELP hearth_slots Slots (--parallel).\n# TYPE hearth_slots gauge\nhearth_slots "
      << slots << "\n";
    return o.str();
  }

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;
  uint64_t tokens_in_ = 0, tokens_out_ = 0, tokens_cached_ = 0, cancelled_ = 0;
  uint64_t drafted_ = 0, accepted_ = 0;
  uint64_t latency_buckets_[std::size(kBuckets)] = {};
  double latency_sum_ = 0;
  uint64_t latency_count_ = 0;
};

// ---- the slot queue: strict FIFO, so a request is never overtaken by a later one ----
class SlotQueue {
 public:
  void Reset(int n_slots) {
    std::lock_guard lock(mu_);
    busy_.assign(static_cast<size_t>(n_slots), false);
  }
  enum class Outcome { kGot, kFull, kTimeout, kCancelled };
  // Waits until this request is at the head of the queue and a slot is free. `gone` is asked
  // every 100 ms whether the client is still there.
  Outcome Acquire(const Generator& gen, const PreparedPrompt& prompt, int max_queue,
                  Clock::time_point deadline, const std::function<bool()>& gone, int* slot) {
    std::unique_lock lock(mu_);
    if (static_cast<int>(waiting_.size()) >= max_queue) return Outcome::kFull;
    const uint64_t ticket = next_ticket_++;
    waiting_.push_back(ticket);
    Outcome outcome = Outcome::kGot;
    while (true) {
      if (waiting_.front() == ticket) {
        // The free slot that already holds the longest prefix of this prompt.
        int best = -1, best_len = -1;
        for (size_t i = 0; i < busy_.size(); ++i) {
          if (busy_[i]) continue;
          const int len = gen.CachedPrefix(static_cast<int>(i), prompt);
          if (len > best_len) best = static_cast<int>(i), best_len = len;
        }
        if (best >= 0) {
          busy_[static_cast<size_t>(best)] = true;
          *slot = best;
          break;
        }
      }
      if (Clock::now() >= deadline) {
        outcome = Outcome::kTimeout;
        break;
      }
      cv_.wait_for(lock, std::chrono::milliseconds(100));
      if (gone()) {
        outcome = Outcome::kCancelled;
        break;
      }
    }
    waiting_.erase(std::find(waiting_.begin(), waiting_.end(), ticket));
    cv_.notify_all();
    return outcome;
  }
  void Release(int slot) {
    {
      std::lock_guard lock(mu_);
      busy_[static_cast<size_t>(slot)] = false;
    }
    cv_.notify_all();
  }
  int depth() const {
    std::lock_guard lock(mu_);
    return static_cast<int>(waiting_.size());
  }
  int busy() const {
    std::lock_guard lock(mu_);
    return static_cast<int>(std::count(busy_.begin(), busy_.end(), true));
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<uint64_t> waiting_;
  std::vector<bool> busy_;
  uint64_t next_ticket_ = 0;
};

// What the access log line of the request this worker thread is answering says beyond the
// request and response: when the request arrived and the tokens a generation used (-1: none).
// httplib runs routing, the streaming content provider and the logger on the same thread.
struct AccessNote {
  Clock::time_point start{};
  int tokens = -1;
};
thread_local AccessNote t_access;

std::string EndpointLabel(const std::string& path) {
  static const char* kKnown[] = {"/",
                                 "/api/ps",
                                 "/api/pull",
                                 "/api/delete",
                                 "/health",
                                 "/metrics",
                                 "/v1/models",
                                 "/v1/chat/completions",
                                 "/v1/completions",
                                 "/api/chat",
                                 "/api/generate",
                                 "/api/tags",
                                 "/api/show",
                                 "/api/version",
                                 "/lora-adapters"};
  for (const char* k : kKnown) {
    if (path == k) return k;
  }
  if (path.rfind("/v1/models/", 0) == 0) return "/v1/models/{id}";
  return "other";
}

// Converts a parsed tool call's argument text into the object Ollama sends.
Json ArgumentsObject(const std::string& text) {
  Json j = Json::parse(text, nullptr, false);
  return j.is_object() ? j : Json::object();
}

std::string Lower(std::string s) {
  for (char& ch : s) {
    ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  }
  return s;
}

// The name in a Host header, lower-case, without port, brackets or a trailing dot
// ("[::1]:8080" -> "::1", "LocalHost.:80" -> "localhost"); empty when malformed.
std::string HostName(const std::string& host) {
  std::string name;
  if (!host.empty() && host.front() == '[') {
    const size_t close = host.find(']');
    if (close == std::string::npos) {
      return "";
    }
    const std::string rest = host.substr(close + 1);
    if (!rest.empty() && rest.front() != ':') {
      return "";
    }
    name = host.substr(1, close - 1);
  } else {
    const size_t colon = host.find(':');
    name = host.substr(0, colon);
    if (colon != std::string::npos && host.find(':', colon + 1) != std::string::npos) {
      return "";
    }
  }
  if (!name.empty() && name.back() == '.') {
    name.pop_back();
  }
  return Lower(name);
}

bool IsIpLiteral(const std::string& name) {
  unsigned char buf[sizeof(in6_addr)];
  return inet_pton(AF_INET, name.c_str(), buf) == 1 || inet_pton(AF_INET6, name.c_str(), buf) == 1;
}

// localhost, 127.0.0.0/8 and ::1 (also as ::ffff:127.x.y.z).
bool IsLoopbackName(const std::string& name) {
  if (name == "localhost") {
    return true;
  }
  in_addr v4{};
  if (inet_pton(AF_INET, name.c_str(), &v4) == 1) {
    return (ntohl(v4.s_addr) >> 24) == 127;
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, name.c_str(), &v6) != 1) {
    return false;
  }
  return IN6_IS_ADDR_LOOPBACK(&v6) || (IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127);
}

// httplib with the sockets taken away: the listener accepts and reads, and hands each complete
// request to Answer() on a worker thread.
class HttpServer : public httplib::Server {
 public:
  bool Answer(httplib::Stream& stream, bool close_connection, bool& connection_closed) {
    return process_request(stream, close_connection, connection_closed, {});
  }
  // httplib's streaming writers stop as soon as its listening socket is invalid (its test for
  // "shutting down"), so this marks the server as running or stopped. It is never used as a
  // socket.
  void SetRunning(bool running) { svr_sock_ = running ? 0 : INVALID_SOCKET; }
};

// One request for httplib: read from memory (the listener has read and checked it), the response
// written to the connection's non-blocking socket, waiting at most the write timeout each time.
class ConnectionStream final : public httplib::Stream {
 public:
  ConnectionStream(const ReadyRequest& request, int write_timeout_s)
      : r_(request), timeout_ms_(write_timeout_s * 1000) {}

  bool is_readable() const override { return pos_ < r_.bytes.size(); }
  // Whether the client can take more and is still there (a client that closed its side has
  // gone: its generation is cancelled).
  bool is_writable() const override {
    pollfd p{r_.fd, POLLOUT, 0};
    if (poll(&p, 1, timeout_ms_) <= 0 || (p.revents & (POLLERR | POLLHUP | POLLNVAL)) != 0) {
      return false;
    }
    return Alive();
  }
  ssize_t read(char* ptr, size_t size) override {
    const size_t n = std::min(size, r_.bytes.size() - pos_);
    std::memcpy(ptr, r_.bytes.data() + pos_, n);
    pos_ += n;
    return static_cast<ssize_t>(n);
  }
  ssize_t write(const char* ptr, size_t size) override {
    // Checked before every write, as httplib's own socket stream does: a client that has closed
    // its side is noticed at the next write (which cancels its generation), not a write later.
    if (!Alive()) {
      return -1;
    }
    size_t sent = 0;
    while (sent < size) {
      const ssize_t n = send(r_.fd, ptr + sent, size - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        sent += static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        pollfd p{r_.fd, POLLOUT, 0};
        if (poll(&p, 1, timeout_ms_) > 0 && (p.revents & POLLOUT) != 0) {
          continue;
        }
      }
      return -1;
    }
    return static_cast<ssize_t>(size);
  }
  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    ip = r_.peer_ip;
    port = r_.peer_port;
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    ip = r_.local_ip;
    port = r_.local_port;
  }
  socket_t socket() const override { return r_.fd; }

 private:
  // False once the client has closed or reset the connection (pipelined bytes count as alive).
  bool Alive() const {
    char ch;
    const ssize_t n = recv(r_.fd, &ch, 1, MSG_PEEK | MSG_DONTWAIT);
    return n > 0 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
  }

  const ReadyRequest& r_;
  int timeout_ms_;
  size_t pos_ = 0;
};

// Requests answered on one kept-alive connection before it is closed (httplib announces it).
constexpr int kMaxRequestsPerConnection = 100;

}  // namespace

struct Server::Impl {
  ServerOptions opt;
  HttpServer http;
  std::unique_ptr<Listener> listener;
  std::unique_ptr<httplib::ThreadPool> workers;
  bool loopback = true;
  Metrics metrics;
  SlotQueue queue;
  mutable std::mutex mu;
  std::shared_ptr<Generator> generator;
  std::string load_error;
  std::atomic<bool> stopping{false};
  std::set<std::atomic<bool>*> active;  // cancel flags of running generations

  std::shared_ptr<Generator> Gen() const {
    std::lock_guard lock(mu);
    return generator;
  }

  void SendError(httplib::Response& res, const RequestError& e) const {
    res.status = e.status;
    res.set_content(ErrorBody(e), "application/json");
  }

  // 503 while loading, 500 after a failed load; null when ready.
  std::shared_ptr<Generator> RequireModel(httplib::Response& res) const {
    std::lock_guard lock(mu);
    if (generator) return generator;
    if (!load_error.empty()) {
      SendError(res, RequestError(500, "the model failed to load: " + load_error, "",
                                  "model_load_failed", "server_error"));
    } else {
      SendError(res, RequestError(503, "the model is still loading; retry in a moment", "",
                                  "model_loading", "server_error"));
    }
    return nullptr;
  }

  void Routes();
  void HandleGenerate(Api api, const httplib::Request& req, httplib::Response& res);
  void HandleTranscription(const httplib::Request& req, httplib::Response& res);
  void HandlePull(const httplib::Request& req, httplib::Response& res);
  void HandleDelete(const httplib::Request& req, httplib::Response& res);
  // /api/pull and /api/delete: whether this server may change its model folder (an error
  // response when not).
  bool ModelFolderAllowed(bool supplied, httplib::Response& res) const;
  bool HostAllowed(const std::string& host) const;
  bool OriginAllowed(const httplib::Request& req, std::string* cors_allow) const;
  bool CheckHostAndOrigin(const httplib::Request& req, httplib::Response& res) const;

  // On a worker thread: answers one request the listener has read, then hands the connection
  // back (kept open for the next request, or closed).
  void Answer(const ReadyRequest& r) {
    ConnectionStream stream(r, opt.write_timeout_s);
    bool closed = false;
    const bool close = stopping || r.request_count >= kMaxRequestsPerConnection;
    const bool ok = http.Answer(stream, close, closed);
    listener->Done(r.id, ok && !close && !closed);
  }
};

namespace {

// Everything one generation request needs while its response streams, shared with the content
// provider (which outlives the handler).
struct Job {
  Api api;
  ApiRequest request;
  PreparedPrompt prompt;
  std::shared_ptr<Generator> gen;
  std::string id;
  std::string model;
  int64_t created = 0;
  std::atomic<bool> cancel{false};
  Clock::time_point received;
};

bool OpenAIApi(Api api) { return api == Api::kChat || api == Api::kCompletion; }

// Writes the response of one job to `sink`: queue wait, generation, the closing chunks.
class JobWriter {
 public:
  JobWriter(Server::Impl& server, Job& job, httplib::DataSink& sink)
      : s_(server), job_(job), sink_(sink) {}

  bool Write(const std::string& data) {
    if (failed_) return false;
    if (!sink_.write(data.data(), data.size())) {
      failed_ = true;
      job_.cancel = true;
    }
    last_write_ = Clock::now();
    return !failed_;
  }
  // Non-streaming responses are one JSON document; leading whitespace is valid JSON, so a space
  // now and then keeps slow generations alive and tells us when the client has gone.
  void Heartbeat() {
    if (Clock::now() - last_write_ < std::chrono::milliseconds(500)) return;
    if (!job_.request.stream) {
      Write(" ");
    } else if (OpenAIApi(job_.api)) {
      Write(": keep-alive\n\n");  // an SSE comment
    }
  }

  void Event(const Json& j) {
    if (OpenAIApi(job_.api)) {
      Write("data: " + Dump(j) + "\n\n");
    } else {
      Write(Dump(j) + "\n");
    }
  }

  void StreamError(const RequestError& e) {
    if (!job_.request.stream) {
      Write(ErrorBody(e));
    } else if (OpenAIApi(job_.api)) {
      Write("data: " + ErrorBody(e) + "\n\n");
    } else {
      Event(Json{{"error", e.what()}});
    }
  }

  Json ChunkBase() const {
    Json j;
    j["id"] = job_.id;
    j["object"] = job_.api == Api::kChat ? "chat.completion.chunk" : "text_completion";
    j["created"] = job_.created;
    j["model"] = job_.model;
    j["system_fingerprint"] = std::string("hearth-") + HEARTH_VERSION;
    return j;
  }

  void OnDelta(const text::ParseDelta& d) {
    if (!job_.request.stream) {
      Heartbeat();
      return;
    }
    switch (job_.api) {
      case Api::kChat: {
        auto send = [&](Json delta) {
          Json j = ChunkBase();
          j["choices"] = Json::array({Json{{"index", 0},
                                           {"delta", std::move(delta)},
                                           {"logprobs", nullptr},
                                           {"finish_reason", nullptr}}});
          Event(j);
        };
        if (!d.reasoning.empty()) send(Json{{"reasoning_content", d.reasoning}});
        if (!d.content.empty()) send(Json{{"content", d.content}});
        for (const auto& tc : d.tool_calls) {
          Json call{{"index", tc.index}};
          if (!tc.name.empty()) {
            while (tool_ids_.size() <= tc.index) tool_ids_.push_back("call_" + RandomId(24));
            call["id"] = tool_ids_[tc.index];
            call["type"] = "function";
            call["function"] = Json{{"name", tc.name}, {"arguments", tc.arguments}};
          } else {
            call["function"] = Json{{"arguments", tc.arguments}};
          }
          send(Json{{"tool_calls", Json::array({call})}});
        }
        break;
      }
      case Api::kCompletion: {
        if (d.content.empty()) break;
        Json j = ChunkBase();
        j["choices"] = Json::array({Json{
            {"text", d.content}, {"index", 0}, {"logprobs", nullptr}, {"finish_reason", nullptr}}});
        Event(j);
        break;
      }
      case Api::kOllamaChat:
      case Api::kOllamaGenerate: {
        // Ollama sends tool calls whole, at the end; text as it comes.
        if (d.content.empty() && d.reasoning.empty()) break;
        Json j{{"model", job_.model}, {"created_at", Rfc3339Now()}};
        if (job_.api == Api::kOllamaChat) {
          Json m{{"role", "assistant"}, {"content", d.content}};
          if (!d.reasoning.empty()) m["thinking"] = d.reasoning;
          j["message"] = m;
        } else {
          j["response"] = d.content;
          if (!d.reasoning.empty()) j["thinking"] = d.reasoning;
        }
        j["done"] = false;
        Event(j);
        break;
      }
    }
  }

  Json Usage(const GenerationResult& r) const {
    return Json{{"prompt_tokens", r.prompt_tokens},
                {"completion_tokens", r.completion_tokens},
                {"total_tokens", r.prompt_tokens + r.completion_tokens},
                {"prompt_tokens_details", Json{{"cached_tokens", r.cached_tokens}}}};
  }

  Json ToolCallsOpenAI(const GenerationResult& r) {
    Json calls = Json::array();
    for (size_t i = 0; i < r.tool_calls.size(); ++i) {
      while (tool_ids_.size() <= i) tool_ids_.push_back("call_" + RandomId(24));
      calls.push_back(Json{{"id", tool_ids_[i]},
                           {"type", "function"},
                           {"function", Json{{"name", r.tool_calls[i].name},
                                             {"arguments", r.tool_calls[i].arguments}}}});
    }
    return calls;
  }

  void Finish(const GenerationResult& r) {
    t_access.tokens = r.prompt_tokens + r.completion_tokens;
    const char* finish = engine::FinishReasonName(r.finish);
    const auto ns = [](double ms) { return static_cast<int64_t>(ms * 1e6); };
    // Parameters that were accepted but ignored, on the last (or only) object of the response.
    const auto warn = [this](Json& j) {
      if (!job_.request.warnings.empty()) j["warnings"] = job_.request.warnings;
    };
    switch (job_.api) {
      case Api::kChat: {
        if (job_.request.stream) {
          Json j = ChunkBase();
          j["choices"] = Json::array({Json{{"index", 0},
                                           {"delta", Json::object()},
                                           {"logprobs", nullptr},
                                           {"finish_reason", finish}}});
          if (!job_.request.include_usage) warn(j);
          Event(j);
          if (job_.request.include_usage) {
            Json u = ChunkBase();
            u["choices"] = Json::array();
            u["usage"] = Usage(r);
            warn(u);
            Event(u);
          }
          Write("data: [DONE]\n\n");
        } else {
          Json msg{{"role", "assistant"}};
          msg["content"] =
              r.content.empty() && !r.tool_calls.empty() ? Json(nullptr) : Json(r.content);
          if (!r.reasoning.empty()) msg["reasoning_content"] = r.reasoning;
          if (!r.tool_calls.empty()) msg["tool_calls"] = ToolCallsOpenAI(r);
          Json j{{"id", job_.id},
                 {"object", "chat.completion"},
                 {"created", job_.created},
                 {"model", job_.model},
                 {"system_fingerprint", std::string("hearth-") + HEARTH_VERSION},
                 {"choices", Json::array({Json{{"index", 0},
                                               {"message", msg},
                                               {"logprobs", nullptr},
                                               {"finish_reason", finish}}})},
                 {"usage", Usage(r)}};
          warn(j);
          Write(Dump(j));
        }
        break;
      }
      case Api::kCompletion: {
        if (job_.request.stream) {
          Json j = ChunkBase();
          j["choices"] = Json::array(
              {Json{{"text", ""}, {"index", 0}, {"logprobs", nullptr}, {"finish_reason", finish}}});
          if (job_.request.include_usage) j["usage"] = Usage(r);
          warn(j);
          Event(j);
          Write("data: [DONE]\n\n");
        } else {
          Json j{{"id", job_.id},
                 {"object", "text_completion"},
                 {"created", job_.created},
                 {"model", job_.model},
                 {"system_fingerprint", std::string("hearth-") + HEARTH_VERSION},
                 {"choices", Json::array({Json{{"text", r.content},
                                               {"index", 0},
                                               {"logprobs", nullptr},
                                               {"finish_reason", finish}}})},
                 {"usage", Usage(r)}};
          warn(j);
          Write(Dump(j));
        }
        break;
      }
      case Api::kOllamaChat:
      case Api::kOllamaGenerate: {
        const bool chat = job_.api == Api::kOllamaChat;
        Json calls = Json::array();
        for (const auto& tc : r.tool_calls) {
          calls.push_back(Json{
              {"function", Json{{"name", tc.name}, {"arguments", ArgumentsObject(tc.arguments)}}}});
        }
        if (job_.request.stream && chat && !calls.empty()) {
          Event(
              Json{{"model", job_.model},
                   {"created_at", Rfc3339Now()},
                   {"message", Json{{"role", "assistant"}, {"content", ""}, {"tool_calls", calls}}},
                   {"done", false}});
        }
        Json j{{"model", job_.model}, {"created_at", Rfc3339Now()}};
        if (chat) {
          Json m{{"role", "assistant"}, {"content", job_.request.stream ? "" : r.content}};
          if (!job_.request.stream && !r.reasoning.empty()) m["thinking"] = r.reasoning;
          if (!job_.request.stream && !calls.empty()) m["tool_calls"] = calls;
          j["message"] = m;
        } else {
          j["response"] = job_.request.stream ? "" : r.content;
          if (!job_.request.stream && !r.reasoning.empty()) j["thinking"] = r.reasoning;
        }
        j["done"] = true;
        j["done_reason"] = r.finish == FinishReason::kLength      ? "length"
                           : r.finish == FinishReason::kCancelled ? "cancelled"
                                                                  : "stop";
        j["total_duration"] =
            ns(std::chrono::duration<double, std::milli>(Clock::now() - job_.received).count());
        j["load_duration"] = 0;
        j["prompt_eval_count"] = r.prompt_tokens;
        j["prompt_eval_duration"] = ns(r.prompt_ms);
        j["eval_count"] = r.completion_tokens;
        j["eval_duration"] = ns(std::max(0.0, r.total_ms - r.prompt_ms));
        warn(j);
        Event(j);
        break;
      }
    }
  }

  // The whole response. Returns false when the connection should be dropped.
  bool Run() {
    last_write_ = Clock::now();
    if (job_.request.stream && job_.api == Api::kChat) {
      // The first chunk carries the role, as OpenAI's does.
      Json j = ChunkBase();
      j["choices"] = Json::array({Json{{"index", 0},
                                       {"delta", Json{{"role", "assistant"}, {"content", ""}}},
                                       {"logprobs", nullptr},
                                       {"finish_reason", nullptr}}});
      Event(j);
    }
    const auto queue_deadline = Clock::now() + std::chrono::seconds(s_.opt.queue_timeout_s);
    int slot = -1;
    const auto outcome = s_.queue.Acquire(
        *job_.gen, job_.prompt, s_.opt.max_queue, queue_deadline,
        [&] {
          Heartbeat();
          return failed_ || s_.stopping.load();
        },
        &slot);
    if (outcome == SlotQueue::Outcome::kFull || outcome == SlotQueue::Outcome::kTimeout) {
      StreamError(RequestError(503,
                               outcome == SlotQueue::Outcome::kFull
                                   ? "too many requests are waiting; retry later"
                                   : "no slot became free in time; retry later",
                               "", "server_busy", "server_error"));
      sink_.done();
      return true;
    }
    if (outcome == SlotQueue::Outcome::kCancelled) return false;

    {
      std::lock_guard lock(s_.mu);
      s_.active.insert(&job_.cancel);
    }
    if (s_.stopping) job_.cancel = true;
    const auto start = Clock::now();
    const auto deadline = start + std::chrono::seconds(s_.opt.request_timeout_s);
    GenerationResult result;
    bool ok = true;
    std::string error;
    try {
      result = job_.gen->Generate(
          slot, job_.request.gen, job_.prompt,
          [&](const text::ParseDelta& d) {
            if (Clock::now() > deadline) job_.cancel = true;
            OnDelta(d);
          },
          job_.cancel);
    } catch (const std::exception& e) {
      ok = false;
      error = e.what();
    }
    s_.queue.Release(slot);
    {
      std::lock_guard lock(s_.mu);
      s_.active.erase(&job_.cancel);
    }
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    if (!ok) {
      result.finish = FinishReason::kCancelled;
      s_.metrics.RecordGeneration(result, seconds);
      StreamError(RequestError(500, "generation failed: " + error, "", "generation_failed",
                               "server_error"));
      sink_.done();
      return true;
    }
    s_.metrics.RecordGeneration(result, seconds);
    if (result.finish == FinishReason::kCancelled) {
      if (failed_) return false;  // the client is gone
      if (s_.stopping) {
        // The server is stopping (Ctrl-C): the client is still there, so the response ends
        // properly, saying it was cancelled rather than that the model stopped.
        Finish(result);
        if (failed_) return false;
        sink_.done();
        return true;
      }
      // Cut by the request timeout: say so, and end the stream cleanly.
      StreamError(RequestError(504,
                               "the request took longer than the server's limit of " +
                                   std::to_string(s_.opt.request_timeout_s) + " s",
                               "", "timeout", "server_error"));
      sink_.done();
      return true;
    }
    Finish(result);
    if (failed_) return false;
    sink_.done();
    return true;
  }

 private:
  Server::Impl& s_;
  Job& job_;
  httplib::DataSink& sink_;
  bool failed_ = false;
  Clock::time_point last_write_;
  std::vector<std::string> tool_ids_;
};

}  // namespace

namespace {

std::string Base64(std::string_view bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (size_t i = 0; i < bytes.size(); i += 3) {
    const uint32_t b0 = static_cast<uint8_t>(bytes[i]);
    const uint32_t b1 = i + 1 < bytes.size() ? static_cast<uint8_t>(bytes[i + 1]) : 0;
    const uint32_t b2 = i + 2 < bytes.size() ? static_cast<uint8_t>(bytes[i + 2]) : 0;
    const uint32_t v = (b0 << 16) | (b1 << 8) | b2;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += i + 1 < bytes.size() ? kAlphabet[(v >> 6) & 63] : '=';
    out += i + 2 < bytes.size() ? kAlphabet[v & 63] : '=';
  }
  return out;
}

// "00:01:02,345" (SRT).
std::string SrtTime(double seconds) {
  const long long ms = static_cast<long long>(seconds * 1000.0 + 0.5);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%02lld:%02lld:%02lld,%03lld", ms / 3600000, ms / 60000 % 60,
                ms / 1000 % 60, ms % 1000);
  return buf;
}

}  // namespace

// POST /v1/audio/transcriptions (OpenAI's Whisper API): multipart/form-data with `file` (the
// audio), `model`, `language` (a hint), `response_format` (json, text, srt, verbose_json),
// `temperature`. The clip is cut at silence into segments of at most 30 s (as `hearth
// transcribe`); each segment is one chat turn [input_audio, instruction] through the same
// Prepare / slot queue / Generate path as a chat completion, so it waits its turn like one.
void Server::Impl::HandleTranscription(const httplib::Request& req, httplib::Response& res) {
  if (!req.is_multipart_form_data() || !req.has_file("file")) {
    SendError(res, RequestError(400, "send multipart/form-data with the audio in a 'file' field",
                                "file", "invalid_value"));
    return;
  }
  auto field = [&](const char* name, std::string fallback) {
    return req.has_file(name) ? req.get_file_value(name).content : fallback;
  };
  const std::string format = field("response_format", "json");
  if (format != "json" && format != "text" && format != "srt" && format != "verbose_json") {
    SendError(res, RequestError(400,
                                "response_format '" + format +
                                    "' is not supported (json, text, srt, verbose_json)",
                                "response_format", "invalid_value"));
    return;
  }
  const std::string language = field("language", "");
  if (language.size() > 32 || !IsValidUtf8(language)) {
    SendError(res, RequestError(400, "language must be a short language name or code", "language",
                                "invalid_value"));
    return;
  }
  float temperature = 0;
  if (req.has_file("temperature")) {
    const std::string t = req.get_file_value("temperature").content;
    char* end = nullptr;
    temperature = std::strtof(t.c_str(), &end);
    if (t.empty() || end != t.c_str() + t.size() || !(temperature >= 0 && temperature <= 2)) {
      SendError(res, RequestError(400, "temperature must be a number from 0 to 2", "temperature",
                                  "invalid_value"));
      return;
    }
  }
  const std::shared_ptr<Generator> gen = RequireModel(res);
  if (!gen) return;
  const std::string& bytes = req.get_file_value("file").content;
  std::vector<float> samples;
  try {
    samples = audio::DecodeBytes(
        std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()),
        "file");
  } catch (const Error& e) {
    SendError(res, RequestError(400, e.Describe(), "file", "invalid_value"));
    return;
  }
  std::string instruction = "Transcribe this audio.";
  if (!language.empty()) instruction += " The speech is in " + language + ".";

  struct Segment {
    double start, end;
    std::string text;
  };
  std::vector<Segment> segments;
  std::atomic<bool> cancel{false};
  {
    std::lock_guard lock(mu);
    active.insert(&cancel);
  }
  auto done = [&] {
    std::lock_guard lock(mu);
    active.erase(&cancel);
  };
  for (const audio::Piece& p : audio::SplitClip(samples, audio::Split::kAtSilence)) {
    GenerationRequest g;
    const std::string wav = audio::EncodeWav(
        std::span<const float>(samples.data() + p.begin, static_cast<size_t>(p.end - p.begin)));
    g.messages = Json::array({Json{
        {"role", "user"},
        {"content", Json::array({Json{{"type", "input_audio"},
                                      {"input_audio", {{"data", Base64(wav)}, {"format", "wav"}}}},
                                 Json{{"type", "text"}, {"text", instruction}}})}}});
    g.sampling.temperature = temperature;
    g.sampling.seed = std::random_device{}();
    g.max_tokens = 448;
    PreparedPrompt prompt;
    try {
      prompt = gen->Prepare(g);
    } catch (const Error& e) {
      done();
      SendError(res, RequestError(400, e.Describe(), "file", "invalid_value"));
      return;
    }
    int slot = -1;
    const auto outcome = queue.Acquire(
        *gen, prompt, opt.max_queue, Clock::now() + std::chrono::seconds(opt.queue_timeout_s),
        [&] { return stopping.load(); }, &slot);
    if (outcome != SlotQueue::Outcome::kGot) {
      done();
      SendError(res, RequestError(503, "no slot became free in time; retry later", "",
                                  "server_busy", "server_error"));
      return;
    }
    GenerationResult r;
    bool ok = true;
    std::string error;
    const auto start = Clock::now();
    try {
      r = gen->Generate(
          slot, g, prompt, [](const text::ParseDelta&) {}, cancel);
    } catch (const std::exception& e) {
      ok = false;
      error = e.what();
    }
    queue.Release(slot);
    metrics.RecordGeneration(r, std::chrono::duration<double>(Clock::now() - start).count());
    if (!ok || r.finish == FinishReason::kCancelled) {
      done();
      SendError(res, RequestError(500, "transcription failed: " + (ok ? "cancelled" : error), "",
                                  "generation_failed", "server_error"));
      return;
    }
    std::string text = r.content;
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
    size_t lead = 0;
    while (lead < text.size() && std::isspace(static_cast<unsigned char>(text[lead]))) ++lead;
    segments.push_back({static_cast<double>(p.begin) / audio::kSampleRate,
                        static_cast<double>(p.end) / audio::kSampleRate, text.substr(lead)});
  }
  done();

  std::string all;
  for (const Segment& s : segments) {
    if (!all.empty() && !s.text.empty()) all += " ";
    all += s.text;
  }
  if (format == "text") {
    res.set_content(all + "\n", "text/plain; charset=utf-8");
  } else if (format == "srt") {
    std::string out;
    for (size_t i = 0; i < segments.size(); ++i) {
      out += std::to_string(i + 1) + "\n" + SrtTime(segments[i].start) + " --> " +
             SrtTime(segments[i].end) + "\n" + segments[i].text + "\n\n";
    }
    res.set_content(out, "text/plain; charset=utf-8");
  } else {
    Json j = {{"text", all}};
    if (format == "verbose_json") {
      Json segs = Json::array();
      for (size_t i = 0; i < segments.size(); ++i) {
        segs.push_back({{"id", i},
                        {"start", segments[i].start},
                        {"end", segments[i].end},
                        {"text", segments[i].text}});
      }
      j = Json{{"task", "transcribe"},
               {"language", language.empty() ? "unknown" : language},
               {"duration", static_cast<double>(samples.size()) / audio::kSampleRate},
               {"text", all},
               {"segments", std::move(segs)}};
    }
    res.set_content(j.dump(-1, ' ', false, Json::error_handler_t::replace), "application/json");
  }
}

void Server::Impl::HandleGenerate(Api api, const httplib::Request& req, httplib::Response& res) {
  auto job = std::make_shared<Job>();
  job->received = Clock::now();
  try {
    job->request = ParseRequest(api, req.body);
  } catch (const RequestError& e) {
    SendError(res, e);
    return;
  }
  job->gen = RequireModel(res);
  if (!job->gen) return;
  job->api = api;
  GenerationRequest& g = job->request.gen;
  g.model = job->request.model;
  if (!g.seed_given) {
    // No seed given: a fresh one, as the APIs specify (the default would repeat answers).
    g.sampling.seed =
        std::random_device{}() ^ (static_cast<uint64_t>(std::random_device{}()) << 32);
  }
  try {
    job->prompt = job->gen->Prepare(g);
  } catch (const Error& e) {
    const bool too_long = e.error_class() == ErrorClass::kResource;
    SendError(res, RequestError(400, e.Describe(), too_long ? "messages" : "",
                                too_long ? "context_length_exceeded" : "invalid_value"));
    return;
  } catch (const std::exception& e) {
    SendError(res, RequestError(400, e.what(), "", "invalid_value"));
    return;
  }
  // A full queue is answered with a real 503 status while that is still possible (the queue
  // checks again when the request joins it, after the headers have gone out).
  if (queue.depth() >= opt.max_queue) {
    SendError(res, RequestError(503, "too many requests are waiting; retry later", "",
                                "server_busy", "server_error"));
    res.set_header("Retry-After", "1");
    return;
  }
  job->model = job->prompt.model_name.empty() ? job->gen->info().name : job->prompt.model_name;
  job->created = UnixNow();
  job->id = (api == Api::kChat ? "chatcmpl-" : "cmpl-") + RandomId(24);
  const char* type = !job->request.stream ? "application/json"
                     : OpenAIApi(api)     ? "text/event-stream"
                                          : "application/x-ndjson";
  if (job->request.stream) res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(type, [this, job](size_t, httplib::DataSink& sink) {
    JobWriter writer(*this, *job, sink);
    return writer.Run();
  });
}

namespace {

// {"model" (or Ollama's older "name"): NAME, "stream": bool} of /api/pull and /api/delete. Throws
// RequestError.
std::string ModelNameOf(const httplib::Request& req, bool* stream) {
  Json body = Json::parse(req.body, nullptr, false);
  if (!IsValidUtf8(req.body) || body.is_discarded() || !body.is_object()) {
    throw RequestError(400, "the request body must be a JSON object", "", "invalid_json");
  }
  std::string name;
  for (const char* key : {"model", "name"}) {
    if (body.contains(key) && body[key].is_string()) name = body[key].get<std::string>();
  }
  if (name.empty()) throw RequestError(400, "'model' is required", "model", "missing");
  if (stream != nullptr && body.contains("stream") && !body["stream"].is_null()) {
    if (!body["stream"].is_boolean()) {
      throw RequestError(400, "'stream' must be a boolean", "stream", "invalid_type");
    }
    *stream = body["stream"].get<bool>();
  }
  return name;
}

// hearth::Error from the model-folder hooks as an HTTP error: usage errors are the client's
// (unknown names: 404 for delete), the rest the server's or the download's.
RequestError FolderError(const Error& e, bool deleting) {
  if (e.error_class() == ErrorClass::kUsage) {
    return deleting ? RequestError(404, e.Describe(), "model", "model_not_found")
                    : RequestError(400, e.Describe(), "model", "invalid_value");
  }
  if (e.error_class() == ErrorClass::kInvalidInput) {
    return RequestError(deleting ? 400 : 502, e.Describe(), "", "invalid_value");
  }
  return RequestError(deleting ? 500 : 502, e.Describe(), "", "model_folder_error", "server_error");
}

}  // namespace

bool Server::Impl::ModelFolderAllowed(bool supplied, httplib::Response& res) const {
  if (!supplied) {
    SendError(res, RequestError(501, "this server does not manage a model folder", "",
                                "not_implemented", "server_error"));
    return false;
  }
  // They write to the user's disk: on an address others can reach, only with a key.
  if (!loopback && opt.api_key.empty()) {
    SendError(res, RequestError(403,
                                "/api/pull and /api/delete need --api-key on a server that "
                                "listens beyond loopback",
                                "", "forbidden", "permission_error"));
    return false;
  }
  return true;
}

// Ollama's /api/pull: a catalog model into the model folder. Streaming (the default) sends
// Ollama's progress objects as NDJSON; {"stream": false} answers once, when it is done.
void Server::Impl::HandlePull(const httplib::Request& req, httplib::Response& res) {
  bool stream = true;
  std::string name;
  try {
    name = ModelNameOf(req, &stream);
  } catch (const RequestError& e) {
    SendError(res, e);
    return;
  }
  if (!ModelFolderAllowed(static_cast<bool>(opt.pull_model), res)) return;
  // Runs the pull with a cancel flag that Stop() sets; `on_progress` sees the bytes.
  auto run = [this, name](const ServerOptions::Progress& on_progress, std::atomic<bool>& cancel) {
    {
      std::lock_guard lock(mu);
      active.insert(&cancel);
    }
    if (stopping) cancel = true;
    struct Unregister {
      Impl& s;
      std::atomic<bool>& c;
      ~Unregister() {
        std::lock_guard lock(s.mu);
        s.active.erase(&c);
      }
    } unregister{*this, cancel};
    return opt.pull_model(name, on_progress, cancel);
  };
  if (!stream) {
    std::atomic<bool> cancel{false};
    try {
      run([](uint64_t, uint64_t) {}, cancel);
    } catch (const Error& e) {
      SendError(res, FolderError(e, false));
      return;
    }
    res.set_content(Dump(Json{{"status", "success"}}), "application/json");
    return;
  }
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(
      "application/x-ndjson", [run, name](size_t, httplib::DataSink& sink) {
        std::atomic<bool> cancel{false};
        bool gone = false;
        auto write = [&](const Json& j) {
          const std::string line = Dump(j) + "\n";
          if (!gone && !sink.write(line.data(), line.size())) {
            gone = true;
            cancel = true;  // the client went away: stop downloading
          }
        };
        write(Json{{"status", "pulling manifest"}});
        Clock::time_point last{};
        try {
          run(
              [&](uint64_t done, uint64_t total) {
                const auto now = Clock::now();
                if (now - last < std::chrono::milliseconds(200) && done != total) return;
                last = now;
                write(Json{{"status", "pulling " + name},
                           {"digest", name},
                           {"total", total},
                           {"completed", done}});
              },
              cancel);
        } catch (const Error& e) {
          write(Json{{"error", e.Describe()}});
          if (gone) return false;
          sink.done();
          return true;
        }
        write(Json{{"status", "verifying sha256 digest"}});
        write(Json{{"status", "success"}});
        if (gone) return false;
        sink.done();
        return true;
      });
}

// Ollama's /api/delete: a model of the model folder, by name.
void Server::Impl::HandleDelete(const httplib::Request& req, httplib::Response& res) {
  std::string name;
  try {
    name = ModelNameOf(req, nullptr);
  } catch (const RequestError& e) {
    SendError(res, e);
    return;
  }
  if (!ModelFolderAllowed(static_cast<bool>(opt.delete_model), res)) return;
  try {
    opt.delete_model(name);
  } catch (const Error& e) {
    SendError(res, FolderError(e, true));
    return;
  }
  res.set_content(Dump(Json{{"status", "success"}}), "application/json");
}

// Longer than 150 lines on purpose: the route table, one registration per endpoint; the handlers
// it registers are short and call named functions.
void Server::Impl::Routes() {
  http.Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(kIndexHtml, "text/html; charset=utf-8");
  });
  http.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    std::lock_guard lock(mu);
    if (generator) {
      res.set_content(R"({"status":"ok"})", "application/json");
    } else if (!load_error.empty()) {
      res.status = 500;
      res.set_content(Dump(Json{{"status", "error"}, {"error", load_error}}), "application/json");
    } else {
      res.status = 503;
      res.set_content(R"({"status":"loading"})", "application/json");
    }
  });
  http.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    const auto gen = Gen();
    res.set_content(metrics.Render(queue.depth(), queue.busy(), gen ? gen->n_slots() : 0),
                    "text/plain; version=0.0.4");
  });
  http.Get("/api/version", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(Dump(Json{{"version", HEARTH_VERSION}}), "application/json");
  });
  // Ollama's capability names; "vision" and "audio" only with a projector that has the encoder.
  auto capabilities = [](const ModelInfo& m) {
    Json c = Json::array({"completion", "tools", "thinking"});
    if (m.vision) c.push_back("vision");
    if (m.audio) c.push_back("audio");
    return c;
  };
  auto model_json = [capabilities](const ModelInfo& m) {
    return Json{{"id", m.name},
                {"object", "model"},
                {"created", UnixNow()},
                {"owned_by", "hearth"},
                {"meta", Json{{"n_ctx_train", m.context_length},
                              {"n_ctx", m.slot_context},
                              {"size", m.size_bytes},
                              {"capabilities", capabilities(m)}}}};
  };
  http.Get("/v1/models", [this, model_json](const httplib::Request&, httplib::Response& res) {
    const auto gen = RequireModel(res);
    if (!gen) return;
    Json data = Json::array({model_json(gen->info())});
    for (const std::string& v : gen->info().variants) {
      Json j = model_json(gen->info());
      j["id"] = v;
      data.push_back(j);
    }
    res.set_content(Dump(Json{{"object", "list"}, {"data", data}}), "application/json");
  });
  // OpenAI's "retrieve model": the one loaded model, or a 404 in OpenAI's error shape.
  http.Get(R"(/v1/models/(.+))",
           [this, model_json](const httplib::Request& req, httplib::Response& res) {
             const auto gen = RequireModel(res);
             if (!gen) return;
             const std::string id = req.matches[1];
             const auto& variants = gen->info().variants;
             if (std::find(variants.begin(), variants.end(), id) != variants.end()) {
               Json j = model_json(gen->info());
               j["id"] = id;
               res.set_content(Dump(j), "application/json");
               return;
             }
             if (id != gen->info().name) {
               SendError(res, RequestError(404,
                                           "The model '" + id +
                                               "' does not exist (this server "
                                               "serves '" +
                                               gen->info().name + "')",
                                           "model", "model_not_found"));
               return;
             }
             res.set_content(Dump(model_json(gen->info())), "application/json");
           });
  auto details = [](const ModelInfo& m) {
    return Json{{"parent_model", ""},
                {"format", "gguf"},
                {"family", m.family},
                {"families", Json::array({m.family})},
                {"parameter_size", m.parameter_size},
                {"quantization_level", m.quantization}};
  };
  http.Get("/api/tags", [this, details](const httplib::Request&, httplib::Response& res) {
    const auto gen = RequireModel(res);
    if (!gen) return;
    const ModelInfo& m = gen->info();
    Json models = Json::array();
    auto add = [&](const std::string& name, const std::string& parent) {
      Json d = details(m);
      d["parent_model"] = parent;
      models.push_back(Json{{"name", name},
                            {"model", name},
                            {"modified_at", Rfc3339Now()},
                            {"size", m.size_bytes},
                            {"digest", m.digest},
                            {"details", d}});
    };
    add(m.name, "");
    // Catalog entries of this model with adapters: Ollama lists a model made FROM another with
    // an ADAPTER as a model of its own.
    for (const std::string& v : m.variants) add(v, m.name);
    res.set_content(Dump(Json{{"models", models}}), "application/json");
  });
  http.Post("/api/show", [this, details, capabilities](const httplib::Request& req,
                                                       httplib::Response& res) {
    Json body = Json::parse(req.body, nullptr, false);
    if (!IsValidUtf8(req.body) || body.is_discarded() || !body.is_object()) {
      SendError(res,
                RequestError(400, "the request body must be a JSON object", "", "invalid_json"));
      return;
    }
    const auto gen = RequireModel(res);
    if (!gen) return;
    const ModelInfo& m = gen->info();
    Json info{{"general.architecture", m.family},
              {"general.name", m.name},
              {m.family + ".context_length", m.context_length}};
    res.set_content(Dump(Json{{"license", ""},
                              {"modelfile", ""},
                              {"parameters", "num_ctx " + std::to_string(m.slot_context)},
                              {"template", "(Gemma 4 chat template, built in)"},
                              {"details", details(m)},
                              {"model_info", info},
                              {"capabilities", capabilities(m)},
                              {"modified_at", Rfc3339Now()}}),
                    "application/json");
  });
  // llama-server's adapter endpoints: the loaded LoRA adapters with the scales requests without
  // a `lora` field run with, and setting those scales (adapters not named get 0).
  http.Get("/lora-adapters", [this](const httplib::Request&, httplib::Response& res) {
    const auto gen = RequireModel(res);
    if (!gen) return;
    Json list = Json::array();
    for (const AdapterInfo& a : gen->Adapters()) {
      list.push_back(Json{{"id", a.id}, {"path", a.path}, {"scale", a.scale}});
    }
    res.set_content(Dump(list), "application/json");
  });
  http.Post("/lora-adapters", [this](const httplib::Request& req, httplib::Response& res) {
    std::vector<std::pair<int, float>> scales;
    try {
      scales = ParseLoraScales(req.body);
    } catch (const RequestError& e) {
      SendError(res, e);
      return;
    }
    const auto gen = RequireModel(res);
    if (!gen) return;
    try {
      gen->SetAdapterScales(scales);
    } catch (const Error& e) {
      SendError(res, RequestError(400, e.Describe(), "id", "invalid_value"));
      return;
    }
    res.set_content(R"({"success":true})", "application/json");
  });
  // Ollama's running models: the one this server has loaded, for as long as it runs.
  http.Get("/api/ps", [this, details](const httplib::Request&, httplib::Response& res) {
    const auto gen = RequireModel(res);
    if (!gen) return;
    const ModelInfo& m = gen->info();
    Json model{{"name", m.name},        {"model", m.name},
               {"size", m.size_bytes},  {"digest", m.digest},
               {"details", details(m)}, {"expires_at", "2999-12-31T23:59:59Z"},
               {"size_vram", 0},        {"context_length", m.slot_context}};
    res.set_content(Dump(Json{{"models", Json::array({model})}}), "application/json");
  });
  http.Post("/api/pull",
            [this](const httplib::Request& req, httplib::Response& res) { HandlePull(req, res); });
  http.Delete("/api/delete", [this](const httplib::Request& req, httplib::Response& res) {
    HandleDelete(req, res);
  });
  http.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
    HandleGenerate(Api::kChat, req, res);
  });
  http.Post("/v1/audio/transcriptions",
            [this](const httplib::Request& req, httplib::Response& res) {
              HandleTranscription(req, res);
            });
  http.Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) {
    HandleGenerate(Api::kCompletion, req, res);
  });
  http.Post("/api/chat", [this](const httplib::Request& req, httplib::Response& res) {
    HandleGenerate(Api::kOllamaChat, req, res);
  });
  http.Post("/api/generate", [this](const httplib::Request& req, httplib::Response& res) {
    HandleGenerate(Api::kOllamaGenerate, req, res);
  });
  if (!opt.cors_origins.empty()) {
    http.Options(".*", [](const httplib::Request&, httplib::Response& res) { res.status = 204; });
  }

  // Host, Origin, CORS and auth for every request, before routing.
  http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    t_access = {Clock::now(), -1};
    if (!CheckHostAndOrigin(req, res)) {
      return httplib::Server::HandlerResponse::Handled;
    }
    std::string cors_allow;
    OriginAllowed(req, &cors_allow);
    if (!cors_allow.empty()) {
      res.set_header("Access-Control-Allow-Origin", cors_allow);
      res.set_header("Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS");
      res.set_header("Access-Control-Allow-Headers", "Authorization, Content-Type");
      res.set_header("Access-Control-Max-Age", "600");
      if (cors_allow != "*") {
        res.set_header("Vary", "Origin");
      }
      if (req.method == "OPTIONS") return httplib::Server::HandlerResponse::Unhandled;
    }
    // The page and the health check are public; everything that touches the model is not.
    if (opt.api_key.empty() || req.path == "/" || req.path == "/health") {
      return httplib::Server::HandlerResponse::Unhandled;
    }
    const std::string auth = req.get_header_value("Authorization");
    const std::string want = "Bearer " + opt.api_key;
    // Constant-time comparison: the key must not leak through timing.
    unsigned diff = auth.size() != want.size() ? 1u : 0u;
    for (size_t i = 0; i < want.size(); ++i) {
      diff |= static_cast<unsigned>(static_cast<unsigned char>(i < auth.size() ? auth[i] : 0) ^
                                    static_cast<unsigned char>(want[i]));
    }
    if (diff == 0) return httplib::Server::HandlerResponse::Unhandled;
    res.status = 401;
    res.set_header("WWW-Authenticate", "Bearer");
    res.set_content(ErrorBody(RequestError(401,
                                           "missing or wrong API key (send 'Authorization: "
                                           "Bearer <key>')",
                                           "", "invalid_api_key", "authentication_error")),
                    "application/json");
    return httplib::Server::HandlerResponse::Handled;
  });
  // Statuses httplib makes itself (404, 413, 400 for a broken request line...) get a JSON body.
  http.set_error_handler(
      httplib::Server::HandlerWithResponse([](const httplib::Request& req, httplib::Response& res) {
        if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
        std::string message = "request failed";
        std::string code;
        if (res.status == 404) {
          message = "no such endpoint: " + req.method + " " + req.path;
          code = "not_found";
        } else if (res.status == 413) {
          message = "the request body is too large";
          code = "body_too_large";
        } else if (res.status == 400) {
          message = "malformed HTTP request";
          code = "bad_request";
        }
        res.set_content(ErrorBody(RequestError(res.status, message, "", code)), "application/json");
        return httplib::Server::HandlerResponse::Handled;
      }));
  http.set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
        std::string what = "internal error";
        try {
          std::rethrow_exception(ep);
        } catch (const std::exception& e) {
          what = e.what();
        } catch (...) {
        }
        res.status = 500;
        res.set_content(ErrorBody(RequestError(500, what, "", "internal_error", "server_error")),
                        "application/json");
      });
  http.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
    metrics.CountRequest(EndpointLabel(req.path), res.status);
    if (!opt.quiet) {
      // "hearth: POST /v1/chat/completions 200 52 tokens 1234 ms", one write per line so that
      // workers do not interleave; the path is the client's, so it is made safe to print.
      const long long ms =
          t_access.start == Clock::time_point{}
              ? 0
              : std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t_access.start)
                    .count();
      std::string path = req.path.size() > 200 ? req.path.substr(0, 200) + "..." : req.path;
      std::string line = "hearth: " + DisplaySafe(req.method, kOneLine) + " " +
                         DisplaySafe(path, kOneLine) + " " + std::to_string(res.status) +
                         (t_access.tokens >= 0 ? " " + std::to_string(t_access.tokens) + " tokens"
                                               : std::string(" -")) +
                         " " + std::to_string(ms) + " ms\n";
      std::fwrite(line.data(), 1, line.size(), stderr);
    }
    t_access = {};
  });
}

// The DNS-rebinding check. A page of evil.example whose name the attacker re-points at 127.0.0.1
// reaches this server with `Host: evil.example`: a server on loopback answers only loopback names
// and addresses, plus --allow-host names. One on another address also accepts any address
// literal (rebinding needs a name the attacker controls; clients that reach the server by its
// address send that address), but names only from --allow-host ("*" turns the check off).
bool Server::Impl::HostAllowed(const std::string& host) const {
  const std::string name = HostName(host);
  if (name.empty()) {
    return false;
  }
  for (const std::string& allowed : opt.allow_hosts) {
    if (allowed == "*" || HostName(allowed) == name) {
      return true;
    }
  }
  if (IsLoopbackName(name)) {
    return true;
  }
  return !loopback && IsIpLiteral(name);
}

// Whether the request's Origin (if any) may use the server; `cors_allow` gets the value for
// Access-Control-Allow-Origin when it is a --cors origin.
bool Server::Impl::OriginAllowed(const httplib::Request& req, std::string* cors_allow) const {
  cors_allow->clear();
  if (!req.has_header("Origin")) {
    return true;  // not a browser's cross-origin request
  }
  const std::string origin = req.get_header_value("Origin");
  for (const std::string& allowed : opt.cors_origins) {
    if (allowed == "*") {
      *cors_allow = "*";
      return true;
    }
    if (Lower(allowed) == Lower(origin)) {
      *cors_allow = origin;
      return true;
    }
  }
  // The chat page at / calls the API from the server's own origin (browsers send Origin on
  // same-origin POSTs too). The Host it names has passed HostAllowed.
  const std::string host = req.get_header_value("Host");
  return !host.empty() && Lower(origin) == "http://" + Lower(host);
}

bool Server::Impl::CheckHostAndOrigin(const httplib::Request& req, httplib::Response& res) const {
  if (req.get_header_value_count("Host") > 1 || req.get_header_value_count("Origin") > 1) {
    SendError(res, RequestError(400, "a request may carry one Host and one Origin header", "",
                                "bad_request"));
    return false;
  }
  // A request without Host (HTTP/1.0) is not a browser's: browsers always send one.
  const std::string host = req.get_header_value("Host");
  if (req.has_header("Host") && !HostAllowed(host)) {
    const std::string name = HostName(host);
    SendError(res,
              RequestError(403,
                           "the Host header '" + host + "' does not name this server (" +
                               (loopback ? "a server on loopback answers only localhost, "
                                           "127.0.0.1 and [::1]"
                                         : "names must be allowed with --allow-host") +
                               ", against DNS rebinding); to reach it by this name, start it with "
                               "--allow-host " +
                               (name.empty() ? "NAME" : name),
                           "", "host_not_allowed"));
    return false;
  }
  std::string cors_allow;
  if (!OriginAllowed(req, &cors_allow)) {
    const std::string origin = req.get_header_value("Origin");
    SendError(res, RequestError(403,
                                "requests from the web origin '" + origin +
                                    "' are refused: web pages other than the server's own may "
                                    "not use it; to allow this one, start the server with "
                                    "--cors " +
                                    origin,
                                "", "origin_not_allowed"));
    return false;
  }
  return true;
}

Server::Server(ServerOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->opt = std::move(options);
  Impl& s = *impl_;
  // The listener has enforced the limit already (also for chunked bodies); this is httplib's own
  // check of the Content-Length it is given.
  s.http.set_payload_max_length(s.opt.max_body);
  s.http.set_keep_alive_timeout(std::min(5, s.opt.read_timeout_s));
  s.http.set_keep_alive_max_count(kMaxRequestsPerConnection);
  ListenerOptions lo;
  lo.host = s.opt.host;
  lo.port = s.opt.port;
  lo.max_body = s.opt.max_body;
  lo.header_timeout_s = s.opt.header_timeout_s;
  lo.body_timeout_s = s.opt.body_timeout_s;
  lo.idle_timeout_s = s.opt.read_timeout_s;
  lo.keep_alive_timeout_s = std::min(5, s.opt.read_timeout_s);
  lo.max_connections = s.opt.max_connections;
  lo.max_client_connections = s.opt.max_client_connections;
  s.listener = std::make_unique<Listener>(lo, [&s](ReadyRequest r) {
    auto request = std::make_shared<ReadyRequest>(std::move(r));
    s.workers->enqueue([&s, request] { s.Answer(*request); });
  });
  s.Routes();
}

Server::~Server() { Stop(); }

int Server::Bind() {
  const int port = impl_->listener->Bind();
  impl_->loopback = impl_->listener->IsLoopback();
  return port;
}

void Server::Listen() {
  Impl& s = *impl_;
  if (s.stopping) {
    return;
  }
  // Workers answer complete requests only; a slow client never holds one while it sends.
  const size_t threads = s.opt.http_threads > 0 ? static_cast<size_t>(s.opt.http_threads)
                                                : static_cast<size_t>(s.opt.max_queue + 24);
  s.workers = std::make_unique<httplib::ThreadPool>(threads);
  s.http.SetRunning(!s.stopping);
  s.listener->Run();
  s.workers->shutdown();  // waits for running responses (Stop has cancelled their generations)
}

void Server::Stop() {
  Impl& s = *impl_;
  s.stopping = true;
  {
    std::lock_guard lock(s.mu);
    for (auto* flag : s.active) *flag = true;
  }
  s.http.SetRunning(false);
  s.listener->Stop();
}

void Server::SetGenerator(std::unique_ptr<Generator> generator) {
  std::shared_ptr<Generator> g = std::move(generator);
  impl_->queue.Reset(g->n_slots());
  std::lock_guard lock(impl_->mu);
  impl_->generator = std::move(g);
}

void Server::SetLoadError(const std::string& message) {
  std::lock_guard lock(impl_->mu);
  impl_->load_error = message;
}

}  // namespace hearth::server
