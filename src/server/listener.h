// The transport of `hearth serve` below cpp-httplib: the listening socket, admission (connection
// caps per client address and overall) and the reading of each request, in one event-loop thread.
// A request reaches a worker thread only once its headers and whole body are in memory, checked
// against the limits, so a client that sends slowly holds a connection slot (bounded, and dropped
// at a deadline) but never a worker. Internal to src/server (http.cpp is its only user).
//
//   Listener l(options, [&](ReadyRequest r) { pool.enqueue(...answer r..., l.Done(r.id, keep)); });
//   int port = l.Bind();   // throws Error(kIo) when the address is taken
//   l.Run();               // until Stop()
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace hearth::server {

struct ListenerOptions {
  std::string host = "127.0.0.1";
  int port = 0;
  size_t max_body = 8u << 20;           // decoded body bytes; more gets 413
  size_t max_header_bytes = 64u << 10;  // request line + headers; more gets 431
  size_t max_chunk_line = 4096;         // one chunk-size line (with extensions)
  size_t max_trailer_bytes = 16u << 10;
  int header_timeout_s = 10;  // total, from the request's first byte (or the connection)
  int body_timeout_s = 120;   // total, from the end of the headers
  int idle_timeout_s = 30;    // no byte for this long while a request is incomplete: dropped
  int keep_alive_timeout_s = 5;
  int max_connections = 512;         // open connections overall; more get 503
  int max_client_connections = 128;  // open connections from one client address; more get 503
};

// A complete, checked request for a worker: request line and headers (rewritten to carry a
// Content-Length instead of any Transfer-Encoding, without Expect) followed by the body.
struct ReadyRequest {
  uint64_t id = 0;  // hand back to Listener::Done
  int fd = -1;      // the connection, for writing the response (non-blocking)
  std::string bytes;
  std::string peer_ip;
  int peer_port = 0;
  std::string local_ip;
  int local_port = 0;
  int request_count = 0;  // requests on this connection so far, this one included
};

class Listener {
 public:
  using Dispatch = std::function<void(ReadyRequest)>;
  Listener(ListenerOptions options, Dispatch dispatch);
  ~Listener();
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  // Binds and listens; returns the port. Throws Error(kIo) with the reason when it cannot
  // (an address in use is never shared: no SO_REUSEPORT).
  int Bind();
  // Whether the bound address is a loopback one (127.0.0.0/8, ::1).
  bool IsLoopback() const;
  // The event loop; returns after Stop() (also when Stop() came first). Call after Bind().
  void Run();
  // Safe from any thread (and from a signal handler: it only stores a flag and writes an
  // eventfd), more than once.
  void Stop();
  bool IsStopping() const;
  // A worker has answered request `id`: keep the connection for the next request, or close it.
  // Safe from any thread, also after Run() returned.
  void Done(uint64_t id, bool keep_open);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace hearth::server
