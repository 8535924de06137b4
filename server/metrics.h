// staved's Prometheus metrics: kept and serialised by prometheus-cpp (core), served at /metrics
// on their own port by cpp-httplib (prometheus-cpp's own civetweb exposer cannot bind port 0,
// which tests and several replicas on one host need).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "absl/status/statusor.h"

namespace httplib {
class Server;
}
namespace prometheus {
class Counter;
template <typename T>
class Family;
class Gauge;
class Histogram;
class Registry;
}  // namespace prometheus

namespace stave::server {

class Metrics {
 public:
  // listen: "HOST:PORT" (port 0 = any free port) or "" for no HTTP endpoint.
  static absl::StatusOr<std::unique_ptr<Metrics>> Create(const std::string& listen);
  ~Metrics();

  int port() const;  // the bound port; 0 without an endpoint

  // staved's version and build type as stave_build_info{version, build_type} 1 (what
  // `staved --version` prints), so dashboards can tell replicas and rollouts apart.
  void BuildInfo(std::string_view version, std::string_view build_type);
  // A finished request (request_record.h): transport "grpc" or "http", method the RPC
  // ("Generate") or the route ("/v1/completions"), code the status code name of its outcome
  // ("OK", "INVALID_ARGUMENT", ...), seconds from arrival to the end.
  void RequestFinished(std::string_view transport, std::string_view method, std::string_view code, double seconds);
  // Tokens of a generation request's prompt (BOS included).
  void PromptTokens(uint32_t tokens);
  // One finished sequence, by finish reason ("stop", "length", "eos", "cancelled", "error").
  void GenerationFinished(std::string_view transport, std::string_view finish_reason);
  void TokensGenerated(int64_t n);
  void TimeToFirstToken(double seconds);
  void InterTokenLatency(double seconds);
  // The engine's figures after a step (queue, active sequences, KV blocks, preemptions, rows).
  void Load(int queued, int active, int64_t kv_blocks_used, int64_t kv_blocks_total, int64_t preemptions,
            int batch_rows);
  void QueueTime(double seconds);
  void ConfigVersion(uint64_t version);
  void ConfigFileRead(bool ok);

 private:
  Metrics();

  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<httplib::Server> http_;
  std::thread http_thread_;
  int port_ = 0;
  prometheus::Family<prometheus::Counter>* requests_;
  prometheus::Family<prometheus::Histogram>* request_duration_;
  prometheus::Histogram* prompt_tokens_;
  prometheus::Family<prometheus::Counter>* generations_;
  prometheus::Family<prometheus::Gauge>* build_info_;
  prometheus::Counter* tokens_;
  prometheus::Histogram* ttft_;
  prometheus::Histogram* itl_;
  prometheus::Gauge* queue_depth_;
  prometheus::Gauge* active_;
  prometheus::Gauge* kv_blocks_used_;
  prometheus::Gauge* kv_blocks_total_;
  prometheus::Counter* preemptions_;
  int64_t preemptions_seen_ = 0;
  prometheus::Histogram* batch_rows_;
  prometheus::Histogram* queue_time_;
  prometheus::Gauge* config_version_;
  prometheus::Counter* config_file_errors_;
  prometheus::Gauge* config_file_ok_;
};

}  // namespace stave::server
