// Starting a Server in-process on an ephemeral loopback port, and small HTTP helpers.
#pragma once

#include <httplib.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "server/server.h"

namespace hearth::server::testing {

class TestServer {
 public:
  explicit TestServer(ServerOptions opt = {}) {
    opt.host = "127.0.0.1";
    opt.port = 0;
    server_ = std::make_unique<Server>(opt);
    port_ = server_->Bind();
    thread_ = std::thread([this] { server_->Listen(); });
  }
  ~TestServer() {
    server_->Stop();
    thread_.join();
  }
  Server& server() { return *server_; }
  int port() const { return port_; }
  httplib::Client Client() const {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(60, 0);
    return c;
  }

 private:
  std::unique_ptr<Server> server_;
  int port_ = 0;
  std::thread thread_;
};

// SSE `data:` payloads of a response body, in order (comments and blank lines skipped).
inline std::vector<std::string> SseData(const std::string& body) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < body.size()) {
    size_t end = body.find('\n', pos);
    if (end == std::string::npos) end = body.size();
    const std::string line = body.substr(pos, end - pos);
    if (line.rfind("data: ", 0) == 0) out.push_back(line.substr(6));
    pos = end + 1;
  }
  return out;
}

inline std::vector<nlohmann::json> NdjsonLines(const std::string& body) {
  std::vector<nlohmann::json> out;
  size_t pos = 0;
  while (pos < body.size()) {
    size_t end = body.find('\n', pos);
    if (end == std::string::npos) end = body.size();
    if (end > pos) out.push_back(nlohmann::json::parse(body.substr(pos, end - pos)));
    pos = end + 1;
  }
  return out;
}

}  // namespace hearth::server::testing
