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

  // A finished RPC; code is the gRPC status code name ("OK", "INVALID_ARGUMENT", ...).
  void RequestFinished(std::string_view method, std::string_view code);
  // A finished HTTP API request: the same series with transport="http", method the route
  // ("/v1/completions") and code the absl/gRPC status code name of its outcome.
  void HttpRequestFinished(std::string_view route, std::string_view code);
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
