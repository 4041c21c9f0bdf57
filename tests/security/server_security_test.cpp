// `hearth serve` on a shared machine (docs/SECURITY.md, "other local users and processes" and
// "hostile web page"): the real binary over real sockets, attacked the way issue 13 item 5
// describes. Each test failed on the server before the fix (port sharing through SO_REUSEPORT,
// unbounded chunked bodies, workers held by slow clients, no Host or Origin check, listening with
// a model that cannot load).
//
// HEARTH_SECURITY_BINARY, when set, replaces the binary under test (to show that a test fails on
// an older build).
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace hearth::security::testing {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

const std::string kModel = std::string(HEARTH_SHARED_DIR) + "/fixtures/models/tiny-e.Q8_0.gguf";
const char* kChat = R"({"messages":[{"role":"user","content":"hi"}],"max_tokens":1})";

std::string Binary() {
  const char* env = std::getenv("HEARTH_SECURITY_BINARY");
  return env != nullptr && *env != '\0' ? env : HEARTH_BINARY;
}

// A running `hearth serve` (stderr captured), stopped with SIGTERM when destroyed.
class Serve {
 public:
  explicit Serve(const std::vector<std::string>& args, bool wait_listening = true) {
    signal(SIGPIPE, SIG_IGN);
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
      return;
    }
    pid_ = fork();
    if (pid_ == 0) {
      dup2(fds[1], 2);
      const int devnull = open("/dev/null", O_RDWR);
      dup2(devnull, 0);
      dup2(devnull, 1);
      std::vector<std::string> argv_s = {Binary(), "serve"};
      argv_s.insert(argv_s.end(), args.begin(), args.end());
      std::vector<char*> argv;
      argv.reserve(argv_s.size() + 1);
      for (auto& a : argv_s) {
        argv.push_back(a.data());
      }
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    close(fds[1]);
    err_fd_ = fds[0];
    if (wait_listening) {
      WaitForListening(20s);
    }
  }
  ~Serve() {
    if (pid_ > 0 && !exited_) {
      kill(pid_, SIGTERM);
      if (!Wait(10s)) {
        kill(pid_, SIGKILL);
        Wait(10s);
      }
    }
    if (err_fd_ >= 0) {
      close(err_fd_);
    }
  }
  Serve(const Serve&) = delete;
  Serve& operator=(const Serve&) = delete;

  pid_t Pid() const { return pid_; }
  int Port() const { return port_; }
  // The exit code once the process ended within `limit`; nullopt while it still runs.
  std::optional<int> Wait(std::chrono::seconds limit) {
    const auto end = Clock::now() + limit;
    while (!exited_) {
      int status = 0;
      const pid_t r = waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        exited_ = true;
        code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        break;
      }
      if (Clock::now() >= end) {
        return std::nullopt;
      }
      ReadErr(50);
    }
    ReadErr(0);
    return code_;
  }
  const std::string& Err() const { return err_; }

  // Polls /health until it says 200 (the model has loaded).
  bool WaitHealthy(std::chrono::seconds limit);

  // Peak resident memory (VmHWM) in KiB.
  int64_t PeakKiB() const {
    std::ifstream in("/proc/" + std::to_string(pid_) + "/status");
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("VmHWM:", 0) == 0) {
        return std::strtoll(line.c_str() + 6, nullptr, 10);
      }
    }
    return -1;
  }

 private:
  void ReadErr(int timeout_ms) {
    if (err_fd_ < 0) {
      return;
    }
    pollfd p{err_fd_, POLLIN, 0};
    while (poll(&p, 1, timeout_ms) > 0) {
      char buf[4096];
      const ssize_t n = read(err_fd_, buf, sizeof buf);
      if (n <= 0) {
        close(err_fd_);
        err_fd_ = -1;
        return;
      }
      err_.append(buf, static_cast<size_t>(n));
      timeout_ms = 0;
    }
  }
  void WaitForListening(std::chrono::seconds limit) {
    const auto end = Clock::now() + limit;
    while (Clock::now() < end && err_fd_ >= 0) {
      ReadErr(50);
      const size_t at = err_.find("listening on http://");
      if (at != std::string::npos) {
        const size_t colon = err_.find(':', at + std::strlen("listening on http://"));
        const size_t space = err_.find(' ', colon);
        if (colon != std::string::npos && space != std::string::npos) {
          port_ = static_cast<int>(
              std::strtol(err_.substr(colon + 1, space - colon - 1).c_str(), nullptr, 10));
          return;
        }
      }
      if (Wait(0s)) {
        return;
      }
    }
  }

  pid_t pid_ = -1;
  int err_fd_ = -1;
  std::string err_;
  int port_ = 0;
  bool exited_ = false;
  int code_ = -1;
};

// A TCP connection to 127.0.0.1:port, from `source` (any address of 127.0.0.0/8: a different
// client as far as the server can tell). -1 on failure.
int Connect(int port, const char* source = nullptr) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (source != nullptr) {
    sockaddr_in src{};
    src.sin_family = AF_INET;
    inet_pton(AF_INET, source, &src.sin_addr);
    if (bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src) != 0) {
      close(fd);
      return -1;
    }
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

bool SendAll(int fd, const std::string& data) {
  size_t sent = 0;
  while (sent < data.size()) {
    const ssize_t n = send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) {
      return false;
    }
    sent += static_cast<size_t>(n);
  }
  return true;
}

// Everything the server sends until it closes the connection or `limit` passes.
std::string ReadUntilClosed(int fd, std::chrono::milliseconds limit) {
  std::string out;
  const auto end = Clock::now() + limit;
  while (true) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - Clock::now());
    if (left.count() <= 0) {
      break;
    }
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left.count())) <= 0) {
      break;
    }
    char buf[65536];
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) {
      break;
    }
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

// The status code of a raw HTTP response ("HTTP/1.1 403 ..."), 0 when there is none.
int StatusOf(const std::string& response) {
  if (response.rfind("HTTP/1.", 0) != 0 || response.size() < 12) {
    return 0;
  }
  return static_cast<int>(std::strtol(response.c_str() + 9, nullptr, 10));
}

std::string BodyOf(const std::string& response) {
  const size_t at = response.find("\r\n\r\n");
  return at == std::string::npos ? "" : response.substr(at + 4);
}

// The error code of a JSON error body ({"error":{"code":...}}).
std::string ErrorCode(const std::string& response) {
  const auto j = nlohmann::json::parse(BodyOf(response), nullptr, false);
  if (!j.is_object() || !j.contains("error") || !j["error"].is_object()) {
    return "";
  }
  return j["error"].value("code", "");
}

// One request on a fresh connection ("Connection: close" is added); the whole response.
std::string Request(int port, const std::string& method, const std::string& path,
                    const std::vector<std::string>& headers, const std::string& body = "",
                    const char* source = nullptr, std::chrono::milliseconds limit = 10s) {
  const int fd = Connect(port, source);
  if (fd < 0) {
    return "";
  }
  std::string req = method + " " + path + " HTTP/1.1\r\n";
  for (const auto& h : headers) {
    req += h + "\r\n";
  }
  if (!body.empty() || method == "POST") {
    req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  }
  req += "Connection: close\r\n\r\n" + body;
  std::string out;
  if (SendAll(fd, req)) {
    out = ReadUntilClosed(fd, limit);
  }
  close(fd);
  return out;
}

std::string Host(int port) { return "Host: 127.0.0.1:" + std::to_string(port); }

bool Serve::WaitHealthy(std::chrono::seconds limit) {
  const auto end = Clock::now() + limit;
  while (Clock::now() < end) {
    if (StatusOf(Request(port_, "GET", "/health", {Host(port_)}, "", nullptr, 2s)) == 200) {
      return true;
    }
    if (Wait(0s)) {
      return false;
    }
    std::this_thread::sleep_for(50ms);
  }
  return false;
}

// A server on the tiny fixture model, loaded and healthy.
std::unique_ptr<Serve> StartServer(std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {"-m", kModel, "--port", "0"};
  args.insert(args.end(), extra.begin(), extra.end());
  auto s = std::make_unique<Serve>(args);
  EXPECT_GT(s->Port(), 0) << "the server did not start: " << s->Err();
  EXPECT_TRUE(s->Port() > 0 && s->WaitHealthy(30s)) << s->Err();
  return s;
}

// --- a taken port is never shared ---

TEST(ServerSecurity, SecondServerOnATakenPortFailsInsteadOfSharingIt) {
  auto first = StartServer({"--api-key", "first-key"});
  ASSERT_GT(first->Port(), 0);
  // The second one, keyless, on the same port: it must fail (exit 4, I/O) with a clear message,
  // not start answering part of the requests meant for the first.
  Serve second({"-m", kModel, "--port", std::to_string(first->Port())}, false);
  const auto code = second.Wait(20s);
  ASSERT_TRUE(code.has_value()) << "the second server kept running on a taken port";
  EXPECT_EQ(*code, 4) << second.Err();
  EXPECT_NE(second.Err().find("already in use"), std::string::npos) << second.Err();
  // And every request still reaches the keyed server.
  for (int i = 0; i < 20; ++i) {
    const std::string r = Request(first->Port(), "GET", "/v1/models", {Host(first->Port())});
    EXPECT_EQ(StatusOf(r), 401) << r;
  }
}

// --- --max-body holds for chunked bodies ---

TEST(ServerSecurity, ChunkedBodyPastMaxBodyGets413AndIsNotBuffered) {
  auto s = StartServer({"--max-body", std::to_string(1 << 20)});
  ASSERT_GT(s->Port(), 0);
  const int64_t before = s->PeakKiB();
  ASSERT_GT(before, 0);
  const int fd = Connect(s->Port());
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(SendAll(fd, "POST /v1/chat/completions HTTP/1.1\r\n" + Host(s->Port()) +
                              "\r\nContent-Type: application/json\r\n"
                              "Transfer-Encoding: chunked\r\n\r\n"));
  // 64 MiB in 64 KiB chunks against a 1 MiB limit, stopping once the server has answered.
  const std::string chunk = "10000\r\n" + std::string(65536, 'a') + "\r\n";
  size_t sent = 0;
  for (int i = 0; i < 1024; ++i) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 0) > 0) {
      break;
    }
    if (!SendAll(fd, chunk)) {
      break;
    }
    sent += 65536;
  }
  const std::string r = ReadUntilClosed(fd, 10s);
  close(fd);
  EXPECT_EQ(StatusOf(r), 413) << r.substr(0, 300) << " after " << sent << " bytes";
  EXPECT_EQ(ErrorCode(r), "body_too_large") << r.substr(0, 300);
  const int64_t after = s->PeakKiB();
  // The server buffers at most the limit (1 MiB) plus read buffers, never the 64 MiB.
  EXPECT_LT(after - before, 16 * 1024)
      << "peak RSS grew from " << before << " KiB to " << after << " KiB";
  // Still serving.
  EXPECT_EQ(StatusOf(Request(s->Port(), "GET", "/health", {Host(s->Port())})), 200);
}

TEST(ServerSecurity, ChunkedBodyUnderTheLimitStillWorks) {
  auto s = StartServer({"--max-body", "4096"});
  ASSERT_GT(s->Port(), 0);
  const int fd = Connect(s->Port());
  ASSERT_GE(fd, 0);
  const std::string body = R"({"model":"x"})";
  // Two chunks, a chunk extension and a trailer field: all valid HTTP/1.1.
  ASSERT_TRUE(SendAll(fd, "POST /api/show HTTP/1.1\r\n" + Host(s->Port()) +
                              "\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                              "5;ext=1\r\n" +
                              body.substr(0, 5) + "\r\n" + std::to_string(body.size() - 5) +
                              "\r\n" + body.substr(5) + "\r\n0\r\nX-Trailer: 1\r\n\r\n"));
  const std::string r = ReadUntilClosed(fd, 10s);
  close(fd);
  EXPECT_EQ(StatusOf(r), 200) << r;
  EXPECT_NE(BodyOf(r).find("\"details\""), std::string::npos) << r;
}

TEST(ServerSecurity, EndlessChunkSizeLineAndHeadersAreCut) {
  auto s = StartServer();
  ASSERT_GT(s->Port(), 0);
  {
    // A chunk-size line that never ends.
    const int fd = Connect(s->Port());
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(SendAll(fd, "POST /v1/chat/completions HTTP/1.1\r\n" + Host(s->Port()) +
                                "\r\nTransfer-Encoding: chunked\r\n\r\n1"));
    for (int i = 0; i < 256; ++i) {
      if (!SendAll(fd, std::string(4096, '0'))) {
        break;
      }
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, 0) > 0) {
        break;
      }
    }
    const std::string r = ReadUntilClosed(fd, 10s);
    close(fd);
    EXPECT_EQ(StatusOf(r), 400) << r.substr(0, 300);
  }
  {
    // A trailer that never ends, after a valid last chunk.
    const int fd = Connect(s->Port());
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(SendAll(fd, "POST /api/show HTTP/1.1\r\n" + Host(s->Port()) +
                                "\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n"));
    for (int i = 0; i < 1024; ++i) {
      if (!SendAll(fd, "X-T" + std::to_string(i) + ": " + std::string(1000, 't') + "\r\n")) {
        break;
      }
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, 0) > 0) {
        break;
      }
    }
    const std::string r = ReadUntilClosed(fd, 10s);
    close(fd);
    EXPECT_EQ(StatusOf(r), 431) << r.substr(0, 300);
  }
  {
    // Both framings at once (the request-smuggling ambiguity).
    const std::string r =
        Request(s->Port(), "POST", "/api/show", {Host(s->Port()), "Transfer-Encoding: chunked"},
                "2\r\n{}\r\n0\r\n\r\n");
    EXPECT_EQ(StatusOf(r), 400) << r;
  }
  {
    // Headers that never end (1 MiB of them).
    const int fd = Connect(s->Port());
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(SendAll(fd, "GET /health HTTP/1.1\r\n" + Host(s->Port()) + "\r\n"));
    for (int i = 0; i < 1024; ++i) {
      if (!SendAll(fd, "X-Pad-" + std::to_string(i) + ": " + std::string(1000, 'p') + "\r\n")) {
        break;
      }
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, 0) > 0) {
        break;
      }
    }
    const std::string r = ReadUntilClosed(fd, 10s);
    close(fd);
    EXPECT_EQ(StatusOf(r), 431) << r.substr(0, 300);
  }
  EXPECT_EQ(StatusOf(Request(s->Port(), "GET", "/health", {Host(s->Port())})), 200);
}

// --- slow clients cannot starve the server ---

// Opens `n` connections (from `source`) and sends each one byte of a request header every
// `every`, never finishing, until destroyed. Counts the connections the server has closed.
class Tricklers {
 public:
  Tricklers(int port, int n, std::chrono::milliseconds every, const char* source = nullptr) {
    for (int i = 0; i < n; ++i) {
      const int fd = Connect(port, source);
      if (fd >= 0) {
        fds_.push_back(fd);
      }
    }
    thread_ = std::thread([this, every] {
      const std::string text = "GET /health HTTP/1.1\r\nX-Slow: " + std::string(100000, 'a');
      size_t pos = 0;
      while (!stop_) {
        for (const int fd : fds_) {
          (void)send(fd, &text[pos % text.size()], 1, MSG_NOSIGNAL);
        }
        ++pos;
        for (auto t = 0ms; t < every && !stop_; t += 10ms) {
          std::this_thread::sleep_for(10ms);
        }
      }
    });
  }
  ~Tricklers() {
    stop_ = true;
    thread_.join();
    for (const int fd : fds_) {
      close(fd);
    }
  }
  size_t Opened() const { return fds_.size(); }
  // Connections the server has closed (EOF or reset, after any response).
  size_t Closed() const {
    size_t n = 0;
    for (const int fd : fds_) {
      char buf[4096];
      ssize_t r;
      while ((r = recv(fd, buf, sizeof buf, MSG_DONTWAIT)) > 0) {
      }
      if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
        ++n;
      }
    }
    return n;
  }

 private:
  std::vector<int> fds_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
};

TEST(ServerSecurity, HundredTwentyTricklingClientsDoNotStopHealth) {
  auto s = StartServer();
  ASSERT_GT(s->Port(), 0);
  Tricklers slow(s->Port(), 120, 200ms);
  ASSERT_EQ(slow.Opened(), 120u);
  std::this_thread::sleep_for(1s);  // every one of them has started its request
  const auto start = Clock::now();
  const std::string r = Request(s->Port(), "GET", "/health", {Host(s->Port())}, "", nullptr, 5s);
  EXPECT_EQ(StatusOf(r), 200) << "no answer to /health within 5 s with 120 slow clients: " << r;
  EXPECT_LT(Clock::now() - start, 5s);
  EXPECT_EQ(slow.Closed(), 0u);  // the default header deadline (10 s) has not passed yet
}

TEST(ServerSecurity, HeaderDeadlineIsTotalNotPerByte) {
  auto s = StartServer({"--header-timeout", "2"});
  ASSERT_GT(s->Port(), 0);
  // One byte every 200 ms never leaves a read idle for long, yet the headers never finish: the
  // server drops such clients once the header deadline has passed.
  Tricklers slow(s->Port(), 10, 200ms);
  ASSERT_EQ(slow.Opened(), 10u);
  const auto end = Clock::now() + 10s;
  while (slow.Closed() < slow.Opened() && Clock::now() < end) {
    std::this_thread::sleep_for(200ms);
  }
  EXPECT_EQ(slow.Closed(), slow.Opened()) << "trickling clients were still connected after 10 s";
}

TEST(ServerSecurity, ConnectionsPerClientAreCapped) {
  auto s = StartServer({"--max-client-connections", "8", "--max-connections", "12"});
  ASSERT_GT(s->Port(), 0);
  std::vector<int> held;
  held.reserve(12);
  for (int i = 0; i < 8; ++i) {
    held.push_back(Connect(s->Port()));  // idle, from 127.0.0.1
  }
  std::this_thread::sleep_for(300ms);  // accepted by now
  // The ninth from the same address is refused at once, with a 503 naming the cause.
  const auto start = Clock::now();
  std::string r = Request(s->Port(), "GET", "/health", {Host(s->Port())}, "", nullptr, 5s);
  EXPECT_EQ(StatusOf(r), 503) << r;
  EXPECT_EQ(ErrorCode(r), "too_many_connections") << r;
  EXPECT_LT(Clock::now() - start, 3s);
  // Another client is not affected...
  r = Request(s->Port(), "GET", "/health", {Host(s->Port())}, "", "127.0.0.2");
  EXPECT_EQ(StatusOf(r), 200) << r;
  // ...until the overall cap (12) is reached.
  for (int i = 0; i < 4; ++i) {
    held.push_back(Connect(s->Port(), "127.0.0.3"));
  }
  std::this_thread::sleep_for(300ms);
  r = Request(s->Port(), "GET", "/health", {Host(s->Port())}, "", "127.0.0.4", 5s);
  EXPECT_EQ(StatusOf(r), 503) << r;
  for (const int fd : held) {
    close(fd);
  }
  // Closed connections free their places.
  bool ok = false;
  for (int i = 0; i < 50 && !ok; ++i) {
    ok = StatusOf(Request(s->Port(), "GET", "/health", {Host(s->Port())})) == 200;
    if (!ok) {
      std::this_thread::sleep_for(100ms);
    }
  }
  EXPECT_TRUE(ok);
}

// --- DNS rebinding and cross-site requests ---

TEST(ServerSecurity, LoopbackServerAnswersOnlyLoopbackHostNames) {
  auto s = StartServer();
  ASSERT_GT(s->Port(), 0);
  const std::string port = std::to_string(s->Port());
  for (const std::string& host : std::vector<std::string>{
           "evil.example", "evil.example:" + port, "127.0.0.1.nip.io:" + port, "localhost.evil",
           "0.0.0.0:" + port, "10.0.0.1:" + port, "[::2]:" + port, "a:b:c"}) {
    SCOPED_TRACE("Host: " + host);
    std::string r = Request(s->Port(), "GET", "/v1/models", {"Host: " + host});
    EXPECT_EQ(StatusOf(r), 403) << r;
    EXPECT_EQ(ErrorCode(r), "host_not_allowed") << r;
    // A rebinding page posting a generation request is refused the same way.
    r = Request(s->Port(), "POST", "/v1/chat/completions",
                {"Host: " + host, "Content-Type: text/plain"}, kChat);
    EXPECT_EQ(StatusOf(r), 403) << r;
  }
  for (const std::string& host :
       std::vector<std::string>{"127.0.0.1:" + port, "localhost:" + port, "LOCALHOST",
                                "[::1]:" + port, "127.1.2.3", "localhost."}) {
    SCOPED_TRACE("Host: " + host);
    const std::string r = Request(s->Port(), "GET", "/v1/models", {"Host: " + host});
    EXPECT_EQ(StatusOf(r), 200) << r;
  }
}

TEST(ServerSecurity, AllowHostAddsExactlyTheGivenNames) {
  auto s = StartServer({"--allow-host", "hearth.test", "--allow-host", "Box.LAN"});
  ASSERT_GT(s->Port(), 0);
  const std::string port = std::to_string(s->Port());
  for (const std::string& host :
       std::vector<std::string>{"hearth.test:" + port, "HEARTH.TEST", "box.lan:" + port}) {
    SCOPED_TRACE("Host: " + host);
    EXPECT_EQ(StatusOf(Request(s->Port(), "GET", "/v1/models", {"Host: " + host})), 200);
  }
  for (const std::string& host :
       std::vector<std::string>{"evil.hearth.test", "hearth.test.evil", "lan:" + port}) {
    SCOPED_TRACE("Host: " + host);
    EXPECT_EQ(StatusOf(Request(s->Port(), "GET", "/v1/models", {"Host: " + host})), 403);
  }
}

TEST(ServerSecurity, ServerOnAllAddressesAcceptsAddressesAndAllowedNamesOnly) {
  auto s = StartServer({"--host", "0.0.0.0", "--api-key", "k"});
  ASSERT_GT(s->Port(), 0);
  const std::string auth = "Authorization: Bearer k";
  EXPECT_EQ(StatusOf(Request(s->Port(), "GET", "/v1/models", {"Host: 192.0.2.7:80", auth})), 200);
  const std::string r = Request(s->Port(), "GET", "/v1/models", {"Host: evil.example", auth});
  EXPECT_EQ(StatusOf(r), 403) << r;
  EXPECT_EQ(ErrorCode(r), "host_not_allowed") << r;
}

TEST(ServerSecurity, ForeignOriginsAreRefusedEvenForSimpleRequests) {
  auto s = StartServer();
  ASSERT_GT(s->Port(), 0);
  const std::string own = "http://127.0.0.1:" + std::to_string(s->Port());
  // A "simple" cross-site POST (text/plain: the browser sends it without a preflight) from a
  // hostile page, from another local web app, from a sandboxed frame (null): refused before any
  // generation.
  for (const std::string& origin : std::vector<std::string>{
           "https://evil.example", "http://localhost:3000", "null", own + ".evil.example",
           "http://127.0.0.1:" + std::to_string(s->Port() + 1)}) {
    SCOPED_TRACE("Origin: " + origin);
    const std::string r =
        Request(s->Port(), "POST", "/v1/chat/completions",
                {Host(s->Port()), "Origin: " + origin, "Content-Type: text/plain"}, kChat);
    EXPECT_EQ(StatusOf(r), 403) << r;
    EXPECT_EQ(ErrorCode(r), "origin_not_allowed") << r;
    EXPECT_EQ(r.find("Access-Control-Allow-Origin"), std::string::npos) << r;
  }
  // The server's own chat page (same origin) still works, and so do clients without Origin.
  std::string r =
      Request(s->Port(), "POST", "/v1/chat/completions",
              {Host(s->Port()), "Origin: " + own, "Content-Type: application/json"}, kChat);
  EXPECT_EQ(StatusOf(r), 200) << r;
  r = Request(s->Port(), "POST", "/v1/chat/completions",
              {Host(s->Port()), "Content-Type: application/json"}, kChat);
  EXPECT_EQ(StatusOf(r), 200) << r;
  r = Request(s->Port(), "GET", "/", {Host(s->Port())});
  EXPECT_EQ(StatusOf(r), 200);
  EXPECT_NE(r.find("<html"), std::string::npos);
}

TEST(ServerSecurity, CorsAllowsExactlyTheListedOrigins) {
  auto s = StartServer({"--cors", "http://localhost:3000", "--cors", "https://app.example"});
  ASSERT_GT(s->Port(), 0);
  for (const std::string origin : {"http://localhost:3000", "https://app.example"}) {
    SCOPED_TRACE(origin);
    std::string r =
        Request(s->Port(), "POST", "/v1/chat/completions",
                {Host(s->Port()), "Origin: " + origin, "Content-Type: text/plain"}, kChat);
    EXPECT_EQ(StatusOf(r), 200) << r;
    EXPECT_NE(r.find("Access-Control-Allow-Origin: " + origin), std::string::npos) << r;
    r = Request(s->Port(), "OPTIONS", "/v1/chat/completions",
                {Host(s->Port()), "Origin: " + origin, "Access-Control-Request-Method: POST"});
    EXPECT_EQ(StatusOf(r), 204) << r;
  }
  const std::string r = Request(
      s->Port(), "OPTIONS", "/v1/chat/completions",
      {Host(s->Port()), "Origin: http://localhost:3001", "Access-Control-Request-Method: POST"});
  EXPECT_EQ(StatusOf(r), 403) << r;
  EXPECT_EQ(r.find("Access-Control-Allow-Origin"), std::string::npos) << r;
}

// --- a model that cannot load never leaves a server listening ---

TEST(ServerSecurity, MissingOrBadModelExitsAtOnce) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("hearth-serve-model-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  const auto junk = dir / "junk.gguf";
  std::ofstream(junk) << "this is not a model";
  const auto truncated = dir / "truncated.gguf";
  {
    std::ifstream in(kModel, std::ios::binary);
    std::string head(4096, '\0');
    in.read(head.data(), static_cast<std::streamsize>(head.size()));
    std::ofstream(truncated, std::ios::binary) << head;
  }
  struct Case {
    std::string path;
    int code;
  };
  for (const Case& c : {Case{(dir / "missing.gguf").string(), 4}, Case{junk.string(), 3},
                        Case{truncated.string(), 3}}) {
    SCOPED_TRACE(c.path);
    Serve s({"-m", c.path, "--port", "0"}, false);
    const auto code = s.Wait(15s);
    ASSERT_TRUE(code.has_value()) << "still running: " << s.Err();
    EXPECT_EQ(*code, c.code) << s.Err();
    EXPECT_NE(s.Err().find(c.path), std::string::npos) << s.Err();
    EXPECT_EQ(s.Err().find("listening on"), std::string::npos) << s.Err();
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace hearth::security::testing
