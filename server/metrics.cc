#include "server/metrics.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <httplib.h>

#include <chrono>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace stave::server {
namespace {

// Exponential bucket bounds start, start*factor, ... (count of them), in seconds.
prometheus::Histogram::BucketBoundaries Exponential(double start, double factor, int count) {
  prometheus::Histogram::BucketBoundaries bounds;
  for (double b = start; count-- > 0; b *= factor) bounds.push_back(b);
  return bounds;
}

}  // namespace

Metrics::Metrics() : registry_(std::make_shared<prometheus::Registry>()) {
  using prometheus::BuildCounter;
  using prometheus::BuildGauge;
  using prometheus::BuildHistogram;
  // Names follow Prometheus' conventions: counters end in _total, durations are _seconds
  // histograms, sizes name their unit (_tokens, _blocks, _rows). docs/server.md lists the
  // renamed ones for dashboards.
  requests_ = &BuildCounter().Name("stave_requests_total")
                   .Help("Finished requests by transport (grpc, http), method (RPC or HTTP route) and status code name")
                   .Register(*registry_);
  // 1 ms .. ~65 s: Tokenize answers in a millisecond, a long generation on a large model in a minute.
  request_duration_ = &BuildHistogram().Name("stave_request_duration_seconds")
                           .Help("From a request's arrival to its end (the last token sent, or its error)")
                           .Register(*registry_);
  // 1, 2, 4, ... 131072 tokens: the longest contexts Llama models have.
  prompt_tokens_ = &BuildHistogram().Name("stave_prompt_tokens")
                        .Help("Prompt tokens of a generation request (BOS included)").Register(*registry_)
                        .Add({}, Exponential(1, 2, 18));
  generations_ = &BuildCounter().Name("stave_generations_total")
                      .Help("Finished sequences (one per choice) by transport and finish reason "
                            "(stop, length, eos, cancelled, error)")
                      .Register(*registry_);
  build_info_ = &BuildGauge().Name("stave_build_info")
                     .Help("Always 1; the labels say which staved this is (staved --version)").Register(*registry_);
  tokens_ = &BuildCounter().Name("stave_generated_tokens_total")
                 .Help("Tokens generated and streamed").Register(*registry_).Add({});
  // 1 ms .. ~33 s: a 260K model answers in milliseconds, a 110M one with 16 buckets in seconds.
  ttft_ = &BuildHistogram().Name("stave_time_to_first_token_seconds")
               .Help("From request arrival to its first token").Register(*registry_)
               .Add({}, Exponential(0.001, 2, 16));
  itl_ = &BuildHistogram().Name("stave_inter_token_latency_seconds")
              .Help("Between successive tokens of one stream").Register(*registry_)
              .Add({}, Exponential(0.0005, 2, 14));
  queue_depth_ = &BuildGauge().Name("stave_queue_depth")
                      .Help("Requests admitted and waiting for the engine").Register(*registry_).Add({});
  active_ = &BuildGauge().Name("stave_active_sequences")
                 .Help("Sequences the engine is stepping (each holds a KV cache)").Register(*registry_).Add({});
  // Not "_total": that suffix belongs to counters, and the pool size is a gauge.
  kv_blocks_used_ = &BuildGauge().Name("stave_kv_cache_used_blocks")
                         .Help("KV pool blocks held by running sequences").Register(*registry_).Add({});
  kv_blocks_total_ = &BuildGauge().Name("stave_kv_cache_capacity_blocks")
                          .Help("KV pool blocks (staved --kv-cache-mb)").Register(*registry_).Add({});
  preemptions_ = &BuildCounter().Name("stave_preemptions_total")
                      .Help("Sequences preempted (blocks freed, recomputed later) when the KV pool ran dry")
                      .Register(*registry_).Add({});
  // 1, 2, 4, ... 4096 rows: one decode row per stream and branch, prompt chunks on top.
  batch_rows_ = &BuildHistogram().Name("stave_batch_rows")
                     .Help("Rows (tokens x branches) computed by one engine step").Register(*registry_)
                     .Add({}, Exponential(1, 2, 13));
  queue_time_ = &BuildHistogram().Name("stave_queue_time_seconds")
                     .Help("From admission to the engine taking the request").Register(*registry_)
                     .Add({}, Exponential(0.0005, 2, 16));
  config_version_ = &BuildGauge().Name("stave_config_version")
                         .Help("Version of the position config new requests get").Register(*registry_).Add({});
  config_file_errors_ = &BuildCounter().Name("stave_config_file_errors_total")
                             .Help("Readings of the --config file that were rejected").Register(*registry_).Add({});
  config_file_ok_ = &BuildGauge().Name("stave_config_file_ok")
                         .Help("1 when the last reading of the --config file was applied, else 0")
                         .Register(*registry_).Add({});
  config_file_ok_->Set(1);
}

Metrics::~Metrics() {
  if (http_ == nullptr) return;
  http_->stop();
  if (http_thread_.joinable()) http_thread_.join();  // not started when binding failed
}

absl::StatusOr<std::unique_ptr<Metrics>> Metrics::Create(const std::string& listen) {
  std::unique_ptr<Metrics> metrics(new Metrics());
  if (listen.empty()) return metrics;
  const size_t colon = listen.rfind(':');
  int port = -1;
  if (colon == std::string::npos || !absl::SimpleAtoi(listen.substr(colon + 1), &port) || port < 0 || port > 65535)
    return absl::InvalidArgumentError(absl::StrCat("--metrics-listen: expected HOST:PORT, got '", listen, "'"));
  const std::string host = listen.substr(0, colon);
  metrics->http_ = std::make_unique<httplib::Server>();
  // httplib sets SO_REUSEPORT by default: a second staved on the same port would then start
  // silently and the two would share the scrapes. SO_REUSEADDR alone lets a restart rebind.
  metrics->http_->set_socket_options([](int socket) {
    int yes = 1;
    setsockopt(socket, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  std::weak_ptr<prometheus::Registry> registry = metrics->registry_;
  metrics->http_->Get("/metrics", [registry](const httplib::Request&, httplib::Response& response) {
    auto r = registry.lock();
    if (r == nullptr) return;
    response.set_content(prometheus::TextSerializer().Serialize(r->Collect()),
                         "text/plain; version=0.0.4; charset=utf-8");
  });
  metrics->port_ = port == 0 ? metrics->http_->bind_to_any_port(host)
                             : (metrics->http_->bind_to_port(host, port) ? port : -1);
  if (metrics->port_ <= 0)
    return absl::UnavailableError(absl::StrCat("--metrics-listen ", listen,
                                               ": cannot listen there (address in use, or not an address of this host)"));
  metrics->http_thread_ = std::thread([server = metrics->http_.get()] { server->listen_after_bind(); });
  // httplib's stop() does nothing until the accept loop runs: wait for it, or a Metrics destroyed
  // right away (staved failing at start-up) would join a thread that never stops.
  for (int waited_ms = 0; !metrics->http_->is_running(); ++waited_ms) {
    if (waited_ms == 5000) {
      metrics->http_thread_.detach();  // never started: nothing to stop
      metrics->http_.release();        // the detached thread may still use it
      return absl::UnavailableError(absl::StrCat("--metrics-listen ", listen, ": the HTTP server did not start"));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return metrics;
}

int Metrics::port() const { return port_; }

void Metrics::BuildInfo(std::string_view version, std::string_view build_type) {
  build_info_->Add({{"version", std::string(version)}, {"build_type", std::string(build_type)}}).Set(1);
}
void Metrics::RequestFinished(std::string_view transport, std::string_view method, std::string_view code,
                              double seconds) {
  requests_->Add({{"method", std::string(method)}, {"code", std::string(code)}, {"transport", std::string(transport)}})
      .Increment();
  request_duration_->Add({{"method", std::string(method)}, {"transport", std::string(transport)}},
                         Exponential(0.001, 2, 17))
      .Observe(seconds);
}
void Metrics::PromptTokens(uint32_t tokens) { prompt_tokens_->Observe(tokens); }
void Metrics::GenerationFinished(std::string_view transport, std::string_view finish_reason) {
  generations_->Add({{"finish_reason", std::string(finish_reason)}, {"transport", std::string(transport)}}).Increment();
}
void Metrics::TokensGenerated(int64_t n) { tokens_->Increment(static_cast<double>(n)); }
void Metrics::TimeToFirstToken(double seconds) { ttft_->Observe(seconds); }
void Metrics::InterTokenLatency(double seconds) { itl_->Observe(seconds); }
void Metrics::Load(int queued, int active, int64_t kv_blocks_used, int64_t kv_blocks_total, int64_t preemptions,
                   int batch_rows) {
  queue_depth_->Set(queued);
  active_->Set(active);
  kv_blocks_used_->Set(static_cast<double>(kv_blocks_used));
  kv_blocks_total_->Set(static_cast<double>(kv_blocks_total));
  if (preemptions > preemptions_seen_) preemptions_->Increment(static_cast<double>(preemptions - preemptions_seen_));
  preemptions_seen_ = preemptions;
  if (batch_rows > 0) batch_rows_->Observe(batch_rows);
}
void Metrics::QueueTime(double seconds) { queue_time_->Observe(seconds); }
void Metrics::ConfigVersion(uint64_t version) { config_version_->Set(static_cast<double>(version)); }
void Metrics::ConfigFileRead(bool ok) {
  if (!ok) config_file_errors_->Increment();
  config_file_ok_->Set(ok ? 1 : 0);
}

}  // namespace stave::server
