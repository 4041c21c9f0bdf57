// `hearth serve`: the OpenAI- and Ollama-compatible HTTP API and the web chat page over one
// Generator (generator.h). Requests wait in a fair FIFO queue for one of the generator's slots;
// a client that goes away cancels its generation. One access-log line per request goes to stderr
// (method, path, status, tokens, milliseconds) unless `quiet`.
//
//   hearth::server::Server server(options);
//   int port = server.Bind();                 // listening; /health says 503 until loaded
//   std::thread t([&] { server.Listen(); });
//   server.SetGenerator(MakeEngineGenerator(...));
//   ...
//   server.Stop(); t.join();
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
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
  bool quiet = false;                // no access log (one line per request on stderr)

  // /api/pull and /api/delete change the user's model folder, so the server only passes them on
  // to what `hearth serve` supplies (the server knows no folder); unset, they answer 501. Both
  // throw hearth::Error. `pull` downloads a catalog model by name, reporting bytes (done, total;
  // total 0 when unknown) and stopping when `cancel` is set; it returns the file's path.
  using Progress = std::function<void(uint64_t done, uint64_t total)>;
  std::function<std::string(const std::string& name, const Progress& progress,
                            const std::atomic<bool>& cancel)>
      pull_model;
  // Deletes a model of the model folder by name; returns the path deleted.
  std::function<std::string(const std::string& name)> delete_model;
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
