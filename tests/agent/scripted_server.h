// A local HTTP server on 127.0.0.1 (ephemeral port) that answers POSTs to one path with scripted
// replies, in order, and records the request bodies. The only address the remote-backend tests
// ever talk to.
#pragma once

#include <httplib.h>

#include <chrono>
#include <deque>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

namespace hearth::agent::testing {

class ScriptedServer {
 public:
  ScriptedServer(std::vector<std::string> replies, const std::string& path)
      : replies_(replies.begin(), replies.end()) {
    server_.Post(path, [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard<std::mutex> lock(mu_);
      requests_.push_back(nlohmann::json::parse(req.body, nullptr, false));
      if (replies_.empty()) {
        res.status = 500;
        return;
      }
      res.set_content(replies_.front(), "application/json");
      replies_.pop_front();
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
  std::vector<nlohmann::json> requests() {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }

 private:
  httplib::Server server_;
  std::deque<std::string> replies_;
  std::vector<nlohmann::json> requests_;
  std::mutex mu_;
  int port_ = 0;
  std::thread thread_;
};

}  // namespace hearth::agent::testing
