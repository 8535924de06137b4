// staved's OpenAI-compatible HTTP API (cpp-httplib, off unless --http-listen is given):
// POST /v1/completions and /v1/chat/completions (whole answers or server-sent events ending in
// "data: [DONE]"), GET /v1/models, GET /health (200 serving, 503 draining). Requests are read
// into GenerateRequest and checked by the same code as gRPC Generate (generate_request.h), and
// run on the same engine, so they share its batches. Errors are OpenAI error objects; absl status
// codes become HTTP statuses in one place (HttpStatusFor). The API only generates: it has no
// route that writes configuration, so it needs no credentials.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "server/chat_template.h"
#include "server/generate_request.h"

namespace httplib {
class Server;
}

namespace stave::server {

struct HttpApiOptions {
  std::string listen;      // HOST:PORT, port 0 = any free port
  // Connections served at once; completions (each holding one until it ends) may take all but
  // one, so /health always has a thread. At least 2.
  int threads = 16;
  size_t max_body_bytes = size_t{4} << 20;  // 413 beyond: room for a 1 MiB prompt, escaped
  std::optional<ChatTemplate> chat_template;  // none: /v1/chat/completions answers 400
};

// The one mapping of absl status codes to HTTP statuses (OpenAI's use of them).
int HttpStatusFor(absl::StatusCode code);

class HttpApi {
 public:
  // Binds and starts serving; UNAVAILABLE naming the flag when the address cannot be bound.
  static absl::StatusOr<std::unique_ptr<HttpApi>> Start(const ServerState& state, HttpApiOptions options);
  ~HttpApi();  // stops at once (Drain/Stop first for a graceful end)

  int port() const { return port_; }
  // SIGTERM: /health answers 503 and new completions are refused with 503; running ones go on.
  void Drain() { draining_ = true; }
  // Waits until no completion is running or `deadline` passes, then cancels what is left and
  // stops serving.
  void Stop(std::chrono::steady_clock::time_point deadline);

 private:
  HttpApi(const ServerState& state, HttpApiOptions options);
  void Routes();

  ServerState state_;
  const HttpApiOptions options_;
  const std::string model_name_;
  const int64_t created_;  // for /v1/models: when staved started (Unix seconds)
  std::unique_ptr<httplib::Server> http_;
  std::thread thread_;
  int port_ = 0;
  std::atomic<bool> draining_{false}, stopping_{false};
  std::atomic<int> running_{0};  // completions being answered (each holds an HTTP thread)
};

}  // namespace stave::server
