// The event loop of listener.h: accept with caps, read request heads and bodies (Content-Length
// or chunked) under deadlines and size limits, answer the violations itself, hand complete
// requests to the dispatch callback.
#include "server/listener.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <mutex>
#include <optional>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "base/error.h"
#include "server/framing.h"
#include "server/request.h"

namespace hearth::server {
namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kReadSize = 64u << 10;
// After refusing a request whose body is still arriving, the listener reads (and discards) this
// much more for this long before closing: closing a socket with unread input makes the kernel
// send a reset, and the client would lose the error response it has not read yet.
constexpr size_t kDrainBytes = 4u << 20;
constexpr auto kDrainTime = std::chrono::seconds(2);

const char* StatusText(int status) {
  switch (status) {
    case 400:
      return "Bad Request";
    case 408:
      return "Request Timeout";
    case 413:
      return "Payload Too Large";
    case 431:
      return "Request Header Fields Too Large";
    case 501:
      return "Not Implemented";
    case 503:
      return "Service Unavailable";
    default:
      return "Error";
  }
}

// A complete response with a JSON error body, for the answers the listener gives itself; the
// connection is closed after it.
std::string ErrorResponse(const Reject& r) {
  const std::string body = ErrorBody(RequestError(
      r.status, r.message, "", r.code, r.status >= 500 ? "server_error" : "invalid_request_error"));
  std::string out =
      "HTTP/1.1 " + std::to_string(r.status) + " " + StatusText(r.status) +
      "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
      "\r\nConnection: close\r\n";
  if (r.status == 503) {
    out += "Retry-After: 1\r\n";
  }
  return out + "\r\n" + body;
}

// Never blocks: these responses are small and meet a send buffer that is empty (nothing else was
// sent on the connection since its last complete response). A client that has not read earlier
// responses may miss this one; it is closed either way.
void SendBestEffort(int fd, const std::string& data) {
  (void)!send(fd, data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
}

void AddressOf(const sockaddr_storage& ss, std::string* ip, int* port) {
  char buf[INET6_ADDRSTRLEN] = "";
  *port = 0;
  if (ss.ss_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &a->sin_addr, buf, sizeof buf);
    *port = ntohs(a->sin_port);
  } else if (ss.ss_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
    if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr)) {
      // ::ffff:1.2.3.4 on a dual-stack socket is the IPv4 client 1.2.3.4: one key for its cap.
      inet_ntop(AF_INET, &a->sin6_addr.s6_addr[12], buf, sizeof buf);
    } else {
      inet_ntop(AF_INET6, &a->sin6_addr, buf, sizeof buf);
    }
    *port = ntohs(a->sin6_port);
  }
  *ip = buf;
}

bool IsLoopbackAddress(const sockaddr_storage& ss) {
  if (ss.ss_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
    return (ntohl(a->sin_addr.s_addr) >> 24) == 127;
  }
  if (ss.ss_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
    if (IN6_IS_ADDR_LOOPBACK(&a->sin6_addr)) {
      return true;
    }
    return IN6_IS_ADDR_V4MAPPED(&a->sin6_addr) && a->sin6_addr.s6_addr[12] == 127;
  }
  return false;
}

// What the listener does with a connection; the request's own progress is its framer's.
enum class Phase {
  kReading,  // framing a request
  kBusy,     // a worker is answering; not read until it is done
  kDrain,    // refused: discarding input until a short deadline, then closed
};

struct Conn {
  explicit Conn(const FramingLimits& limits) : framer(limits) {}
  uint64_t id = 0;
  int fd = -1;
  std::string ip;
  int port = 0;
  std::string local_ip;
  int local_port = 0;
  Phase phase = Phase::kReading;
  RequestFramer framer;
  bool waiting = true;  // a kept connection with no byte of its next request yet
  size_t drained = 0;
  int requests = 0;
  Clock::time_point deadline;  // of the head or the body as a whole
  Clock::time_point idle;      // of the silence since the last byte
};

}  // namespace

struct Listener::Impl {
  ListenerOptions opt;
  Dispatch dispatch;
  int listen_fd = -1;
  int wake_fd = -1;
  bool loopback = false;
  std::atomic<bool> stopping{false};

  // Connections are the loop thread's alone while it runs; after it has exited, Done() closes
  // them under `mu`.
  std::unordered_map<uint64_t, Conn> conns;
  std::unordered_map<std::string, int> per_client;
  uint64_t next_id = 1;
  Clock::time_point accept_paused_until;

  std::mutex mu;
  std::vector<std::pair<uint64_t, bool>> done;  // from workers: (id, keep open)
  bool loop_exited = false;

  ~Impl() {
    for (auto& [id, c] : conns) {
      close(c.fd);
    }
    if (listen_fd >= 0) {
      close(listen_fd);
    }
    if (wake_fd >= 0) {
      close(wake_fd);
    }
  }

  // Bodies being read may hold this much memory in all; beyond it, they are not read until
  // others have been handed on (their deadlines still run). Requests without a body never wait.
  size_t BodyBudget() const { return std::max<size_t>(256u << 20, 2 * opt.max_body); }

  void Close(uint64_t id) {
    const auto it = conns.find(id);
    if (it == conns.end()) {
      return;
    }
    close(it->second.fd);
    const auto pc = per_client.find(it->second.ip);
    if (pc != per_client.end() && --pc->second <= 0) {
      per_client.erase(pc);
    }
    conns.erase(it);
  }

  // Answers `r` and stops reading requests from `c`: the rest of its input is discarded for a
  // moment (so the client can read the answer), then it is closed.
  void Refuse(Conn& c, const Reject& r) {
    SendBestEffort(c.fd, ErrorResponse(r));
    shutdown(c.fd, SHUT_WR);
    c.phase = Phase::kDrain;
    c.framer.Discard();
    c.drained = 0;
    c.deadline = c.idle = Clock::now() + kDrainTime;
  }

  void Accept() {
    for (int i = 0; i < 64; ++i) {
      sockaddr_storage ss{};
      socklen_t len = sizeof ss;
      const int fd =
          accept4(listen_fd, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
          // Out of descriptors: waiting connections stay in the backlog for a moment.
          accept_paused_until = Clock::now() + std::chrono::milliseconds(100);
        }
        return;
      }
      Conn c(Limits());
      AddressOf(ss, &c.ip, &c.port);
      int& from_client = per_client[c.ip];
      if (static_cast<int>(conns.size()) >= opt.max_connections ||
          from_client >= opt.max_client_connections) {
        const bool overall = static_cast<int>(conns.size()) >= opt.max_connections;
        if (from_client == 0) {
          per_client.erase(c.ip);
        }
        // Refused at once, by this thread: an excess connection never waits for anything.
        SendBestEffort(
            fd, ErrorResponse({503,
                               overall ? "the server has too many open connections; retry later"
                                       : "too many open connections from " + c.ip + " (limit " +
                                             std::to_string(opt.max_client_connections) +
                                             "); close some and retry",
                               "too_many_connections"}));
        shutdown(fd, SHUT_WR);
        char sink[4096];
        (void)!recv(fd, sink, sizeof sink, MSG_DONTWAIT);  // what arrived already: no reset
        close(fd);
        continue;
      }
      ++from_client;
      const int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      sockaddr_storage local{};
      socklen_t local_len = sizeof local;
      if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_len) == 0) {
        AddressOf(local, &c.local_ip, &c.local_port);
      }
      const uint64_t id = next_id++;
      c.id = id;
      c.fd = fd;
      const auto now = Clock::now();
      // The header deadline runs from the connection: a client that connects and then sends
      // nothing, or one byte at a time, is dropped when it ends.
      c.waiting = false;
      c.deadline = now + std::chrono::seconds(opt.header_timeout_s);
      c.idle = now + std::chrono::seconds(opt.idle_timeout_s);
      conns.emplace(id, std::move(c));
    }
  }

  FramingLimits Limits() const {
    return {opt.max_body, opt.max_header_bytes, opt.max_chunk_line, opt.max_trailer_bytes};
  }

  void Hand(Conn& c, std::string bytes) {
    c.phase = Phase::kBusy;
    ReadyRequest r;
    r.id = c.id;
    r.fd = c.fd;
    r.bytes = std::move(bytes);
    r.peer_ip = c.ip;
    r.peer_port = c.port;
    r.local_ip = c.local_ip;
    r.local_port = c.local_port;
    r.request_count = ++c.requests;
    dispatch(std::move(r));
  }

  // Frames what `c` has buffered as far as it goes: a complete request is handed on, a bad one
  // refused.
  void Advance(Conn& c) {
    while (true) {
      Frame f = c.framer.Next();
      switch (f.kind) {
        case Frame::kNeedMore:
          return;
        case Frame::kHeadDone:
          if (f.send_continue) {
            SendBestEffort(c.fd, "HTTP/1.1 100 Continue\r\n\r\n");
          }
          c.deadline = Clock::now() + std::chrono::seconds(opt.body_timeout_s);
          break;
        case Frame::kRequest:
          return Hand(c, std::move(f.request));
        case Frame::kReject:
          return Refuse(c, f.reject);
      }
    }
  }

  void OnReadable(uint64_t id) {
    Conn& c = conns.at(id);
    char buf[kReadSize];
    const ssize_t n = recv(c.fd, buf, sizeof buf, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
      return;
    }
    if (n <= 0) {
      return Close(id);  // closed (or reset) by the client: nothing to answer
    }
    if (c.phase == Phase::kDrain) {
      c.drained += static_cast<size_t>(n);
      if (c.drained > kDrainBytes) {
        Close(id);
      }
      return;
    }
    const auto now = Clock::now();
    c.idle = now + std::chrono::seconds(opt.idle_timeout_s);
    if (c.waiting) {
      // The first byte of the next request on a kept connection: its header deadline starts.
      c.waiting = false;
      c.deadline = now + std::chrono::seconds(opt.header_timeout_s);
    }
    c.framer.Append(std::string_view(buf, static_cast<size_t>(n)));
    Advance(c);
  }

  // Connections past a deadline: told so when they were in the middle of a request, then closed.
  void Sweep() {
    const auto now = Clock::now();
    std::vector<uint64_t> expired;
    for (auto& [id, c] : conns) {
      if (c.phase == Phase::kBusy || (now < c.deadline && now < c.idle)) {
        continue;
      }
      if (c.phase != Phase::kDrain && !c.waiting) {
        const bool silent = now >= c.idle;
        const bool head = c.framer.InHead();
        std::string what = head ? "headers" : "body";
        SendBestEffort(
            c.fd,
            ErrorResponse(
                {408,
                 silent
                     ? "the client sent nothing for " + std::to_string(opt.idle_timeout_s) +
                           " s in the middle of a request"
                     : "the request " + what + " did not arrive within " +
                           std::to_string(head ? opt.header_timeout_s : opt.body_timeout_s) + " s",
                 "request_timeout"}));
      }
      expired.push_back(id);
    }
    for (const uint64_t id : expired) {
      Close(id);
    }
  }

  void TakeDone() {
    std::vector<std::pair<uint64_t, bool>> finished;
    {
      std::lock_guard lock(mu);
      finished.swap(done);
    }
    const auto now = Clock::now();
    for (const auto& [id, keep] : finished) {
      const auto it = conns.find(id);
      if (it == conns.end()) {
        continue;
      }
      if (!keep || stopping) {
        Close(id);
        continue;
      }
      Conn& c = it->second;
      c.phase = Phase::kReading;
      c.framer.StartNext();
      c.waiting = !c.framer.HasInput();
      c.deadline =
          now + std::chrono::seconds(c.waiting ? opt.keep_alive_timeout_s : opt.header_timeout_s);
      c.idle = now + std::chrono::seconds(opt.idle_timeout_s);
      if (c.framer.HasInput()) {
        Advance(c);  // a pipelined request
      }
    }
  }

  void Loop() {
    std::vector<pollfd> fds;
    std::vector<uint64_t> ids;
    while (!stopping) {
      fds.clear();
      ids.clear();
      auto now = Clock::now();
      fds.push_back({wake_fd, POLLIN, 0});
      fds.push_back({now >= accept_paused_until ? listen_fd : -1, POLLIN, 0});
      size_t buffered = 0;
      for (const auto& [id, c] : conns) {
        buffered += c.framer.BodyBytes();
      }
      const bool bodies_wait = buffered >= BodyBudget();
      auto next = now + std::chrono::seconds(1);
      for (const auto& [id, c] : conns) {
        if (c.phase == Phase::kBusy) {
          continue;
        }
        const bool wait = bodies_wait && c.framer.ReadingBody();
        fds.push_back({c.fd, static_cast<decltype(pollfd::events)>(wait ? 0 : POLLIN), 0});
        ids.push_back(id);
        next = std::min({next, c.deadline, c.idle});
      }
      const auto wait_ms =
          std::chrono::duration_cast<std::chrono::milliseconds>(next - now).count() + 1;
      const int n =
          poll(fds.data(), fds.size(), static_cast<int>(std::clamp<int64_t>(wait_ms, 0, 1000)));
      if (n < 0 && errno != EINTR) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        continue;
      }
      if (n > 0) {
        if (fds[0].revents != 0) {
          uint64_t value = 0;
          (void)!read(wake_fd, &value, sizeof value);
        }
        for (size_t i = 2; i < fds.size(); ++i) {
          if (fds[i].revents == 0 || conns.count(ids[i - 2]) == 0) {
            continue;
          }
          OnReadable(ids[i - 2]);
        }
        if (fds[1].revents != 0) {
          Accept();
        }
      }
      TakeDone();
      Sweep();
    }
    std::lock_guard lock(mu);
    loop_exited = true;
    close(listen_fd);
    listen_fd = -1;
    std::vector<uint64_t> idle;
    for (const auto& [id, c] : conns) {
      if (c.phase != Phase::kBusy) {
        idle.push_back(id);
      }
    }
    for (const uint64_t id : idle) {
      Close(id);
    }
    for (const auto& [id, keep] : done) {
      Close(id);
    }
    done.clear();
  }
};

Listener::Listener(ListenerOptions options, Dispatch dispatch) : impl_(std::make_unique<Impl>()) {
  impl_->opt = std::move(options);
  impl_->dispatch = std::move(dispatch);
}

Listener::~Listener() = default;

int Listener::Bind() {
  Impl& s = *impl_;
  const std::string where =
      (s.opt.host.find(':') != std::string::npos ? "[" + s.opt.host + "]" : s.opt.host) + ":" +
      std::to_string(s.opt.port);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* list = nullptr;
  const std::string port = std::to_string(s.opt.port);
  const int rc =
      getaddrinfo(s.opt.host.empty() ? nullptr : s.opt.host.c_str(), port.c_str(), &hints, &list);
  if (rc != 0) {
    ThrowIo("cannot listen on " + where + ": " + gai_strerror(rc),
            "--host takes an address of this machine or a name that resolves to one");
  }
  int fd = -1;
  int err = 0;
  for (const addrinfo* ai = list; ai != nullptr; ai = ai->ai_next) {
    fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      err = errno;
      continue;
    }
    // SO_REUSEADDR lets a restarted server bind while connections of its predecessor linger in
    // TIME_WAIT. On Linux it never lets two sockets listen on one port: that would take
    // SO_REUSEPORT, which is deliberately not set, so a second server on a taken port fails
    // here instead of silently sharing (and splitting) the first one's traffic.
    const int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, SOMAXCONN) == 0) {
      break;
    }
    err = errno;
    close(fd);
    fd = -1;
    // Taken: do not fall back to another address of the same name (that would split it too).
    if (err == EADDRINUSE) {
      break;
    }
  }
  freeaddrinfo(list);
  if (fd < 0) {
    if (err == EADDRINUSE) {
      ThrowIo("cannot listen on " + where + ": the address is already in use",
              "another program (maybe another hearth serve) is listening there; stop it or "
              "choose another port with --port");
    }
    ThrowIo("cannot listen on " + where + ": " + ErrnoText(err),
            err == EACCES ? "ports below 1024 need privileges; choose another with --port"
                          : "check --host and --port");
  }
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  std::string ip;
  int bound_port = 0;
  AddressOf(addr, &ip, &bound_port);
  s.loopback = IsLoopbackAddress(addr);
  s.listen_fd = fd;
  s.wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (s.wake_fd < 0) {
    ThrowIo("cannot create an eventfd: " + ErrnoText(errno));
  }
  return bound_port;
}

bool Listener::IsLoopback() const { return impl_->loopback; }

void Listener::Run() {
  if (impl_->listen_fd < 0) {
    return;
  }
  impl_->Loop();
}

void Listener::Stop() {
  impl_->stopping = true;
  if (impl_->wake_fd >= 0) {
    const uint64_t one = 1;
    (void)!write(impl_->wake_fd, &one, sizeof one);
  }
}

bool Listener::IsStopping() const { return impl_->stopping; }

void Listener::Done(uint64_t id, bool keep_open) {
  Impl& s = *impl_;
  std::lock_guard lock(s.mu);
  if (s.loop_exited) {
    s.Close(id);
    return;
  }
  s.done.emplace_back(id, keep_open);
  const uint64_t one = 1;
  (void)!write(s.wake_fd, &one, sizeof one);
}

}  // namespace hearth::server
