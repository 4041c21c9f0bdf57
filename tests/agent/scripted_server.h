// A local HTTP server on 127.0.0.1 (ephemeral port) that answers POSTs to one path with scripted
// replies, in order, and records the request bodies. A reply starting with "data:" is sent as a
// server-sent-event stream and one of several "{...}" lines as NDJSON, both chunked in pieces of
// 5 bytes so that lines and JSON arrive split; anything else as one JSON document. The only address
// the remote-backend tests ever talk to.
#pragma once

#include <httplib.h>

#include <chrono>
#include <deque>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

namespace hearth::agent::testing {

class ScriptedServer {
 public:
  // `chunk_delay_ms`: a pause before each streamed piece (a slow model, for Ctrl-C tests).
  ScriptedServer(std::vector<std::string> replies, const std::string& path, int chunk_delay_ms = 0)
      : replies_(replies.begin(), replies.end()) {
    server_.Post(path, [this, chunk_delay_ms](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard<std::mutex> lock(mu_);
      if (!key_.empty() && req.get_header_value("Authorization") != "Bearer " + key_) {
        res.status = 401;
        res.set_content(R"({"error":{"message":"invalid api key"}})", "application/json");
        return;
      }
      requests_.push_back(nlohmann::json::parse(req.body, nullptr, false));
      if (replies_.empty()) {
        res.status = 500;
        return;
      }
      auto body = std::make_shared<std::string>(replies_.front());
      replies_.pop_front();
      const bool sse = body->starts_with("data:");
      const bool ndjson = !sse && body->starts_with("{") && body->find("}\n{") != std::string::npos;
      if (!sse && !ndjson) {
        res.set_content(*body, "application/json");
        return;
      }
      res.set_chunked_content_provider(
          sse ? "text/event-stream" : "application/x-ndjson",
          [body, chunk_delay_ms](size_t offset, httplib::DataSink& sink) {
            if (chunk_delay_ms > 0) {
              std::this_thread::sleep_for(std::chrono::milliseconds(chunk_delay_ms));
            }
            if (offset >= body->size()) {
              sink.done();
              return true;
            }
            const size_t n = std::min<size_t>(5, body->size() - offset);
            return sink.write(body->data() + offset, n);
          });
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~ScriptedServer() {
    server_.stop();
    thread_.join();
  }
  std::string url(const std::string& path = "") const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  // From now on, answer 401 unless the request carries "Authorization: Bearer KEY".
  void RequireKey(const std::string& key) {
    std::lock_guard<std::mutex> lock(mu_);
    key_ = key;
  }
  std::vector<nlohmann::json> requests() {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }

 private:
  httplib::Server server_;
  std::deque<std::string> replies_;
  std::vector<nlohmann::json> requests_;
  std::string key_;
  std::mutex mu_;
  int port_ = 0;
  std::thread thread_;
};

}  // namespace hearth::agent::testing
