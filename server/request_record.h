// One request's account, kept by its transport while it runs and written once when it ends: the
// request's log line (info; debug for the HTTP health and model probes, which load balancers send
// every few seconds) with its structured fields, and its metrics (stave_requests_total,
// stave_request_duration_seconds, stave_prompt_tokens, stave_generations_total). Both transports
// fill the same fields, so a gRPC and an HTTP request read alike in logs and dashboards.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "server/metrics.h"

namespace stave::server {

struct RequestRecord {
  using Clock = std::chrono::steady_clock;

  std::string request_id;
  std::string method;     // gRPC method ("Generate") or HTTP route ("/v1/completions")
  std::string transport;  // "grpc" or "http"
  std::string peer;       // as the transport gives it ("ipv4:127.0.0.1:5000", "127.0.0.1:5000")
  Clock::time_point arrived = Clock::now();

  // Generation (and scoring) only; unset fields are left out of the log line.
  std::optional<uint32_t> prompt_tokens;
  uint32_t generated_tokens = 0;
  // One per sequence (an HTTP request's n choices); an empty one when the request ends was
  // cancelled with it.
  std::vector<std::string> finish_reasons;
  std::optional<uint64_t> config_version;    // 0: the request's own position config
  std::optional<double> queue_seconds;       // waiting for the engine (the first sequence)
  std::optional<double> ttft_seconds;        // arrival to the first token
  std::string error;                         // why it failed, if it did

  // Logs the line and counts the request once; later calls do nothing. `code` is the outcome
  // (CANCELLED for a client that left); `http_status` the HTTP status sent (0 for gRPC).
  void Finish(Metrics& metrics, absl::StatusCode code, int http_status = 0);
  bool finished() const { return finished_; }

 private:
  bool finished_ = false;
};

// Seconds from `from` to `to` (to now by default).
double SecondsBetween(RequestRecord::Clock::time_point from,
                      RequestRecord::Clock::time_point to = RequestRecord::Clock::now());

}  // namespace stave::server
