// A minimal HTTP/1.1 file server on 127.0.0.1 (ephemeral port) for the `hearth pull` tests.
// Written on raw sockets rather than cpp-httplib because the tests need misbehaviour a library
// does not offer: closing the socket mid-body, ignoring Range, answering 416. One connection at
// a time, `Connection: close`.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace hearth::agent::testing {

struct Route {
  std::string body;
  int status = 200;             // 404 etc.: sent with a short text body
  std::string redirect_to;      // non-empty: 302 to this path
  bool honor_range = true;      // false: a Range header is ignored (200 + whole body)
  int drop_first_requests = 0;  // this many requests get only `drop_after` bytes, then close
  size_t drop_after = 0;
  // > 0: after this many body bytes the server stalls (sends nothing more) until the client
  // closes the connection or 20 s pass, like a download that hangs.
  size_t stall_after = 0;
};

struct SeenRequest {
  std::string path;
  std::string range;  // the Range header value, or empty
};

class FileServer {
 public:
  FileServer() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr = {};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) std::abort();
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    ::listen(fd_, 16);
    thread_ = std::thread([this] { Loop(); });
  }
  ~FileServer() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }

  void Set(const std::string& path, Route route) {
    std::lock_guard<std::mutex> lock(mu_);
    routes_[path] = std::move(route);
  }
  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  std::vector<SeenRequest> requests() {
    std::lock_guard<std::mutex> lock(mu_);
    return seen_;
  }

 private:
  static void SendAll(int fd, const std::string& s) {
    size_t off = 0;
    while (off < s.size()) {
      const ssize_t w = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
      if (w <= 0) return;
      off += static_cast<size_t>(w);
    }
  }

  void Loop() {
    while (!stop_) {
      pollfd p = {fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      const int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      Serve(c);
      ::close(c);
    }
  }

  void Serve(int c) {
    std::string req;
    char buf[4096];
    while (req.find("\r\n\r\n") == std::string::npos && req.size() < 65536) {
      pollfd p = {c, POLLIN, 0};
      if (::poll(&p, 1, 2000) <= 0) return;
      const ssize_t r = ::recv(c, buf, sizeof buf, 0);
      if (r <= 0) return;
      req.append(buf, static_cast<size_t>(r));
    }
    SeenRequest seen;
    const size_t sp1 = req.find(' ');
    const size_t sp2 = req.find(' ', sp1 + 1);
    if (sp1 == std::string::npos || sp2 == std::string::npos) return;
    seen.path = req.substr(sp1 + 1, sp2 - sp1 - 1);
    for (size_t pos = req.find("\r\n"); pos != std::string::npos;) {
      const size_t next = req.find("\r\n", pos + 2);
      if (next == std::string::npos) break;
      std::string line = req.substr(pos + 2, next - pos - 2);
      std::string lower = line;
      for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      if (lower.rfind("range:", 0) == 0) {
        seen.range = line.substr(6);
        while (!seen.range.empty() && seen.range[0] == ' ') seen.range.erase(0, 1);
      }
      pos = next;
    }
    Route route;
    bool found = false;
    int request_index = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      seen_.push_back(seen);
      if (auto it = routes_.find(seen.path); it != routes_.end()) {
        found = true;
        route = it->second;
        request_index = counts_[seen.path]++;
      }
    }
    if (!found || route.status == 404) {
      SendAll(c,
              "HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot found");
      return;
    }
    if (!route.redirect_to.empty()) {
      SendAll(c, "HTTP/1.1 302 Found\r\nLocation: " + route.redirect_to +
                     "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
      return;
    }
    const std::string& body = route.body;
    size_t start = 0;
    std::string head;
    if (route.honor_range && seen.range.rfind("bytes=", 0) == 0) {
      start = std::strtoull(seen.range.c_str() + 6, nullptr, 10);
      if (start >= body.size()) {
        SendAll(c, "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */" +
                       std::to_string(body.size()) +
                       "\r\nContent-Length: 0\r\n"
                       "Connection: close\r\n\r\n");
        return;
      }
      head = "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes " + std::to_string(start) + "-" +
             std::to_string(body.size() - 1) + "/" + std::to_string(body.size()) + "\r\n";
    } else {
      head = "HTTP/1.1 200 OK\r\n";
    }
    head += "Content-Length: " + std::to_string(body.size() - start) +
            "\r\nAccept-Ranges: bytes\r\nConnection: close\r\n\r\n";
    SendAll(c, head);
    std::string part = body.substr(start);
    if (request_index < route.drop_first_requests) part = part.substr(0, route.drop_after);
    if (route.stall_after > 0 && route.stall_after < part.size()) {
      SendAll(c, part.substr(0, route.stall_after));
      char byte;
      for (int i = 0; i < 400 && !stop_; ++i) {
        pollfd p = {c, POLLIN, 0};
        if (::poll(&p, 1, 50) > 0 && ::recv(c, &byte, 1, 0) <= 0) return;  // the client left
      }
      return;
    }
    SendAll(c, part);
  }

  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::map<std::string, Route> routes_;
  std::map<std::string, int> counts_;
  std::vector<SeenRequest> seen_;
};

}  // namespace hearth::agent::testing
