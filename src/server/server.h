// `hearth serve`: the OpenAI- and Ollama-compatible HTTP API and the web chat page over one
// Generator (generator.h). Requests wait in a fair FIFO queue for one of the generator's slots;
// a client that goes away cancels its generation.
//
//   hearth::server::Server server(options);
//   int port = server.Bind();                 // listening; /health says 503 until loaded
//   std::thread t([&] { server.Listen(); });
//   server.SetGenerator(MakeEngineGenerator(...));
//   ...
//   server.Stop(); t.join();
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "server/generator.h"

namespace hearth::server {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;      // 0: any free port (Bind returns it)
  std::string api_key;  // non-empty: `Authorization: Bearer <key>` required
  // Browser origins allowed to call the API (CORS headers for them; "*" for any). A request
  // carrying any other Origin header, except the server's own page, is refused with 403.
  std::vector<std::string> cors_origins;
  // Host names accepted besides loopback names and addresses ("*": any), against DNS rebinding.
  std::vector<std::string> allow_hosts;
  size_t max_body = 8u << 20;        // bytes (decoded, also when chunked); larger bodies get 413
  int read_timeout_s = 30;           // a client that sends nothing for this long is dropped
  int write_timeout_s = 30;          // a client that reads nothing for this long is dropped
  int header_timeout_s = 10;         // the request line and headers must arrive within this
  int body_timeout_s = 120;          // the body must arrive within this after the headers
  int max_connections = 512;         // open connections overall; more get 503 at once
  int max_client_connections = 128;  // open connections from one address; more get 503 at once
  int request_timeout_s = 600;       // generation (after the queue) is cut at this
  int queue_timeout_s = 300;         // waiting for a slot longer than this gives 503
  int max_queue = 64;                // waiting requests beyond this get 503 at once
  int http_threads = 0;              // 0: max_queue + slots + 8
};

class Server {
 public:
  explicit Server(ServerOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds the socket; returns the port. Throws Error(kIo) when it cannot.
  int Bind();
  // Serves until Stop() (blocks). Call after Bind().
  void Listen();
  // Stops listening and cancels running generations. Safe from any thread, more than once.
  void Stop();

  // The model is ready: generation endpoints and /health start answering.
  void SetGenerator(std::unique_ptr<Generator> generator);
  // Loading failed: /health and generation endpoints answer 500 with `message`.
  void SetLoadError(const std::string& message);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace hearth::server
