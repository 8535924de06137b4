// staved: the stave gRPC server. Serves stave.v1.Inference (streaming generation, scoring),
// stave.v1.Config (the versioned position config), grpc.health.v1 and server reflection, and
// Prometheus metrics on their own HTTP port, and with --http-listen an OpenAI-compatible HTTP API
// on the same engine. SIGTERM/SIGINT: health turns NOT_SERVING, new calls
// are refused, running streams get --grace-seconds to finish, then staved exits 0.
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/security/server_credentials.h>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <optional>
#include <cstdio>
#include <semaphore>

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/compute_threads.h"
#include "core/default_model.h"
#include "core/kv_pool.h"
#include "core/position_cache.h"
#include "core/model.h"
#include "core/moice_router.h"
#include "core/text_file.h"
#include "server/config_file.h"
#include "server/config_service.h"
#include "server/config_store.h"
#include "server/chat_template.h"
#include "server/engine.h"
#include "server/http_api.h"
#include "server/inference_service.h"
#include "server/json_log_formatter.h"
#include "server/metrics.h"
#include "server/router_directory.h"
#include "server/side_worker.h"
#include "server/text_log_formatter.h"
#include "server/write_auth.h"

ABSL_FLAG(std::string, model, "", "model: a llama2.c .bin file, a GGUF file or a Hugging Face directory (default: $STAVE_MODEL, else the embedded default model)");
ABSL_FLAG(std::string, tokenizer, "", "tokenizer (default: next to the model)");
ABSL_FLAG(std::string, listen, "127.0.0.1:50051", "gRPC address to serve on (port 0 = any free port)");
ABSL_FLAG(std::string, metrics_listen, "127.0.0.1:9090",
          "Prometheus metrics HTTP address, served at /metrics (port 0 = any free port; empty = off)");
ABSL_FLAG(std::string, http_listen, "",
          "OpenAI-compatible HTTP API address (/v1/completions, /v1/chat/completions, /v1/models, "
          "/health; port 0 = any free port; empty = off)");
ABSL_FLAG(int, http_threads, 16,
          "HTTP API connections served at once; completions may hold all but one (kept for /health)");
ABSL_FLAG(int, http_max_body_mb, 4, "largest HTTP API request body (413 beyond)");
ABSL_FLAG(std::string, chat_template, "",
          "chat template for /v1/chat/completions: llama-2, chatml, llama-3, or a file holding one of those "
          "names, a Jinja template of one of those forms or a tokenizer_config.json (default: the chat_template of the "
          "tokenizer_config.json next to the model, if any)");
ABSL_FLAG(int, max_active, 64, "sequences batched together; more requests wait in the queue");
ABSL_FLAG(int, queue_size, 256, "requests that may wait for the engine before RESOURCE_EXHAUSTED");
ABSL_FLAG(int64_t, kv_cache_mb, 0,
          "KV cache for all requests together, allocated at start (0 = room for 16 full-context "
          "sequences of the model, at most 4096)");
ABSL_FLAG(int, max_batch_tokens, 256,
          "rows one engine step may compute: a decode row per stream and branch, prompt chunks fill the rest");
ABSL_FLAG(int, threads, 0,
          "compute threads (0 = auto: one per usable CPU, 1 for models under 4M weights; see docs/server.md)");
ABSL_FLAG(int, grace_seconds, 30, "on SIGTERM, how long running streams may take to finish");
ABSL_FLAG(std::string, config, "", "position config file (YAML or JSON), applied at start and on every change");
ABSL_FLAG(int, config_poll_ms, 2000, "how often the --config file is checked for changes");
ABSL_FLAG(std::string, admin_token_file, "",
          "file holding the bearer token config writes must carry (without it: loopback writes only)");
ABSL_FLAG(std::string, tls_cert, "", "PEM certificate chain: serve TLS (with --tls-key)");
ABSL_FLAG(std::string, tls_key, "", "PEM private key for --tls-cert");
ABSL_FLAG(std::string, tls_client_ca, "", "PEM CA bundle: require client certificates signed by it");
ABSL_FLAG(bool, log_json, false, "log one JSON object per line");
ABSL_FLAG(std::string, router_dir, "",
          "directory of MoICE routers requests may name (NAME = NAME.safetensors there; default: the "
          "model's directory)");

namespace {

std::binary_semaphore g_stop(0);
void OnSignal(int) { g_stop.release(); }  // async-signal-safe: a semaphore post

absl::StatusOr<std::string> ReadPem(const std::string& path, const char* flag) {
  auto pem = stave::ReadTextFile(path);
  if (!pem.ok()) return absl::NotFoundError(absl::StrCat(flag, ": ", pem.status().message()));
  return pem;
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> Credentials() {
  const std::string cert = absl::GetFlag(FLAGS_tls_cert), key = absl::GetFlag(FLAGS_tls_key);
  const std::string client_ca = absl::GetFlag(FLAGS_tls_client_ca);
  if (cert.empty() && key.empty()) {
    if (!client_ca.empty()) return absl::InvalidArgumentError("--tls-client-ca needs --tls-cert and --tls-key");
    return grpc::InsecureServerCredentials();
  }
  if (cert.empty() || key.empty()) return absl::InvalidArgumentError("TLS needs both --tls-cert and --tls-key");
  grpc::SslServerCredentialsOptions options(
      client_ca.empty() ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                        : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  auto cert_pem = ReadPem(cert, "--tls-cert");
  if (!cert_pem.ok()) return cert_pem.status();
  auto key_pem = ReadPem(key, "--tls-key");
  if (!key_pem.ok()) return key_pem.status();
  options.pem_key_cert_pairs.push_back({*key_pem, *cert_pem});
  if (!client_ca.empty()) {
    auto ca = ReadPem(client_ca, "--tls-client-ca");
    if (!ca.ok()) return ca.status();
    options.pem_root_certs = *ca;
  }
  return grpc::SslServerCredentials(options);
}

// absl flags are spelled with underscores; stave's CLI uses dashes. Accept both for staved:
// "--queue-size=8" is rewritten to "--queue_size=8" before parsing.
void DashesToUnderscores(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    char* arg = argv[i];
    if (arg[0] != '-' || arg[1] != '-') continue;
    for (char* c = arg + 2; *c != '\0' && *c != '='; ++c)
      if (*c == '-') *c = '_';
  }
}

std::string Host(const std::string& address) { return address.substr(0, address.rfind(':')); }

// HOST:PORT with a port in 0..65535 (gRPC would silently bind a random port for 99999).
absl::Status CheckListenAddress(const std::string& address, const char* flag) {
  const size_t colon = address.rfind(':');
  int port = -1;
  if (colon == std::string::npos || colon == 0 || !absl::SimpleAtoi(address.substr(colon + 1), &port) ||
      port < 0 || port > 65535)
    return absl::InvalidArgumentError(absl::StrCat(flag, ": expected HOST:PORT with a port in 0..65535, got '",
                                                   address, "'"));
  return absl::OkStatus();
}

// Every numeric flag checked once at start, each with a message naming the flag.
absl::Status CheckFlags() {
  struct Bound {
    const char* flag;
    int64_t value, min, max;
  };
  const Bound bounds[] = {
      {"--max-active", absl::GetFlag(FLAGS_max_active), 1, 4096},
      {"--queue-size", absl::GetFlag(FLAGS_queue_size), 1, 1 << 20},
      {"--kv-cache-mb", absl::GetFlag(FLAGS_kv_cache_mb), 0, int64_t{1} << 30},
      {"--max-batch-tokens", absl::GetFlag(FLAGS_max_batch_tokens), 1, 1 << 20},
      {"--threads", absl::GetFlag(FLAGS_threads), 0, 1024},
      {"--grace-seconds", absl::GetFlag(FLAGS_grace_seconds), 0, 86400},
      {"--config-poll-ms", absl::GetFlag(FLAGS_config_poll_ms), 10, 3600 * 1000},
      {"--http-threads", absl::GetFlag(FLAGS_http_threads), 2, 1024},
      {"--http-max-body-mb", absl::GetFlag(FLAGS_http_max_body_mb), 2, 1024},
  };
  for (const Bound& b : bounds)
    if (b.value < b.min || b.value > b.max)
      return absl::InvalidArgumentError(
          absl::StrCat(b.flag, ": must be in ", b.min, "..", b.max, ", got ", b.value));
  auto status = CheckListenAddress(absl::GetFlag(FLAGS_listen), "--listen");
  if (!status.ok()) return status;
  if (!absl::GetFlag(FLAGS_metrics_listen).empty())
    status = CheckListenAddress(absl::GetFlag(FLAGS_metrics_listen), "--metrics-listen");
  if (status.ok() && !absl::GetFlag(FLAGS_http_listen).empty())
    status = CheckListenAddress(absl::GetFlag(FLAGS_http_listen), "--http-listen");
  return status;
}

int Fail(const absl::Status& status) {
  spdlog::critical("{}", std::string(status.message()));
  return 1;
}

// The initial position config: vanilla, and when the model directory holds router.safetensors
// (as models/default does, and stave train-router can write), that router with its expert bases
// and K, so that switching to moice needs only the mode. A router that does not load or match
// the model is left out with a warning: it must not stop the server.
stave::PositionConfig InitialPositionConfig(const stave::server::RouterDirectory& directory, const stave::Model& model) {
  stave::PositionConfig initial;
  auto path = directory.PathOf("router");
  if (!path.ok()) return initial;
  auto routers = stave::MoiceRouters::Load(*path, model.config());
  if (!routers.ok()) {
    spdlog::warn("not using {}: {}", *path, routers.status().ToString());
    return initial;
  }
  initial.router_path = *path;
  initial.expert_bases = routers->expert_bases;
  initial.top_k = routers->top_k;
  spdlog::info("moice router 'router' for this model: {} ({} experts, top-{}); set mode moice to use it",
               *path, routers->experts(), routers->top_k);
  return initial;
}

// The chat template /v1/chat/completions renders: --chat-template, else the model's own
// tokenizer_config.json. A template staved cannot render is an error only when asked for by flag;
// the model's own just leaves chat off (with a warning).
absl::StatusOr<std::optional<stave::server::ChatTemplate>> ChatTemplateFor(const std::string& model_path) {
  using stave::server::ChatTemplate;
  const std::string flag = absl::GetFlag(FLAGS_chat_template);
  if (!flag.empty()) {
    auto named = ChatTemplate::Recognize(flag);
    if (named.ok() && flag.find('/') == std::string::npos && flag.find('.') == std::string::npos)
      return std::optional<ChatTemplate>(*named);
    auto from_file = ChatTemplate::FromFile(flag);
    if (!from_file.ok()) return absl::Status(from_file.status().code(), absl::StrCat("--chat-template: ", from_file.status().message()));
    return std::optional<ChatTemplate>(*from_file);
  }
  auto own = ChatTemplate::ForModel(model_path);
  if (!own.ok()) {
    spdlog::warn("no chat completions: {}", std::string(own.status().message()));
    return std::optional<ChatTemplate>();
  }
  return own;
}

}  // namespace

int main(int argc, char** argv) {
  stave::ReexecWithShortOpenMpSpin(argv);  // before any thread exists: see core/compute_threads.h
  absl::SetProgramUsageMessage("staved [--model PATH] [--tokenizer PATH] [--listen HOST:PORT] [--config FILE] ...");
  // absl lists only flags of files named like the program ("staved"): ours live in main.cc.
  absl::FlagsUsageConfig usage;
  usage.contains_help_flags = [](absl::string_view file) { return absl::EndsWith(file, "server/main.cc"); };
  usage.contains_helpshort_flags = usage.contains_help_flags;
  usage.normalize_filename = [](absl::string_view file) {
    const size_t at = file.rfind("server/");
    return std::string(at == absl::string_view::npos ? file : file.substr(at));
  };
  usage.version_string = [] {
    return std::string("staved " STAVE_VERSION " (" STAVE_BUILD_TYPE " build)\n");
  };
  absl::SetFlagsUsageConfig(usage);
  DashesToUnderscores(argc, argv);
  absl::ParseCommandLine(argc, argv);
  spdlog::set_default_logger(spdlog::stderr_logger_mt("staved"));
  // Both formatters render the structured fields of a line (log_fields.h): as JSON keys or as
  // key=value after the message.
  if (absl::GetFlag(FLAGS_log_json)) spdlog::set_formatter(std::make_unique<stave::server::JsonLogFormatter>());
  else spdlog::set_formatter(std::make_unique<stave::server::TextLogFormatter>());

  std::string model_path = absl::GetFlag(FLAGS_model);
  if (model_path.empty() && std::getenv("STAVE_MODEL") != nullptr) model_path = std::getenv("STAVE_MODEL");
  if (model_path.empty()) {
    auto embedded = stave::DefaultModelPath();
    if (!embedded.ok()) return Fail(embedded.status());
    model_path = *embedded;
    spdlog::info("no --model given: serving the embedded default model {}", model_path);
  }
  auto flags = CheckFlags();
  if (!flags.ok()) return Fail(flags);
  stave::ConfigureThreads(absl::GetFlag(FLAGS_threads));  // for loading; the model then picks (below)
  auto model = stave::Model::Load(model_path, absl::GetFlag(FLAGS_tokenizer));
  if (!model.ok()) return Fail(model.status());
  const int threads = stave::ConfigureThreadsFor(absl::GetFlag(FLAGS_threads), (*model)->config());
  spdlog::info("compute threads: {}{} (of {} usable CPUs); OpenMP spin count {}", threads,
               absl::GetFlag(FLAGS_threads) > 0 ? "" : " (auto)", stave::UsableCpus(),
               std::getenv("GOMP_SPINCOUNT") != nullptr ? std::getenv("GOMP_SPINCOUNT") : "libgomp's default");
  auto credentials = Credentials();
  if (!credentials.ok()) return Fail(credentials.status());
  auto auth = absl::GetFlag(FLAGS_admin_token_file).empty()
                  ? stave::server::WriteAuth::LoopbackOnly()
                  : stave::server::WriteAuth::FromTokenFile(absl::GetFlag(FLAGS_admin_token_file));
  if (!auth.ok()) return Fail(auth.status());
  auto metrics = stave::server::Metrics::Create(absl::GetFlag(FLAGS_metrics_listen));
  if (!metrics.ok()) return Fail(metrics.status());
  (*metrics)->BuildInfo(STAVE_VERSION, STAVE_BUILD_TYPE);
  auto chat_template = ChatTemplateFor(model_path);
  if (!chat_template.ok()) return Fail(chat_template.status());

  std::string router_dir = absl::GetFlag(FLAGS_router_dir);
  if (router_dir.empty()) {
    std::error_code ec;
    router_dir = std::filesystem::is_directory(model_path, ec) ? model_path
                                                               : std::filesystem::path(model_path).parent_path().string();
  }
  const stave::server::RouterDirectory routers(router_dir);
  // The engine runtime's RoPE tables and routers, shared by every request and config update.
  stave::PositionCache position_cache((*model)->config());
  stave::server::ConfigStore config(**model, InitialPositionConfig(routers, **model), &position_cache);
  config.OnChange([&m = **metrics](const stave::server::ConfigSnapshot& s) { m.ConfigVersion(s.version); });
  (*metrics)->ConfigVersion(config.Current()->version);
  std::unique_ptr<stave::server::ConfigFileWatcher> watcher;
  if (!absl::GetFlag(FLAGS_config).empty()) {
    watcher = std::make_unique<stave::server::ConfigFileWatcher>(
        absl::GetFlag(FLAGS_config), config, std::chrono::milliseconds(absl::GetFlag(FLAGS_config_poll_ms)),
        [&m = **metrics](bool ok) { m.ConfigFileRead(ok); });
    // At start a bad file is fatal: serving a config nobody asked for would hide the mistake.
    auto status = watcher->Load();
    if (!status.ok()) return Fail(status);
    watcher->Start();
  }

  // The KV pool: allocated once, here, for every request of the process.
  int64_t kv_cache_mb = absl::GetFlag(FLAGS_kv_cache_mb);
  if (kv_cache_mb == 0) {
    const auto& c = (*model)->config();
    const int64_t per_position = 2 * int64_t{c.n_layers} * c.n_kv_heads * c.head_dim() * int64_t{sizeof(float)};
    kv_cache_mb = std::clamp<int64_t>((16 * c.max_seq_len * per_position + (1 << 20) - 1) >> 20, 1, 4096);
  }
  auto pool = stave::KvPool::Create((*model)->config(), kv_cache_mb << 20);
  if (!pool.ok()) return Fail(absl::Status(pool.status().code(), absl::StrCat("--kv-cache-mb: ", pool.status().message())));
  spdlog::info("KV cache: {} MiB, {} blocks of {} positions", kv_cache_mb, pool->total_blocks(), pool->block_size());
  stave::server::Engine engine(
      **model, *std::move(pool),
      {.queue_limit = absl::GetFlag(FLAGS_queue_size),
       .max_active = absl::GetFlag(FLAGS_max_active),
       .max_batch_tokens = absl::GetFlag(FLAGS_max_batch_tokens),
       .on_load =
           [&m = **metrics](const stave::server::EngineLoad& l) {
             m.Load(l.queued, l.active, l.kv_blocks_used, l.kv_blocks_total, l.preemptions, l.batch_rows);
           },
       .on_queue_time = [&m = **metrics](double seconds) { m.QueueTime(seconds); }});
  stave::server::SideWorker side_worker("base search");
  stave::server::ServerState state{**model, engine, config, **metrics, routers, side_worker, position_cache};
  stave::server::InferenceService inference(state);
  stave::server::ConfigService config_service(state, *std::move(auth));

  // Handlers first: the readiness line below may be answered by a SIGTERM at once.
  std::signal(SIGTERM, OnSignal);
  std::signal(SIGINT, OnSignal);
  // A client that closes its HTTP connection mid-stream must fail our write, not kill staved.
  std::signal(SIGPIPE, SIG_IGN);
  // The HTTP API before gRPC: a port in use stops staved before it serves anything.
  std::unique_ptr<stave::server::HttpApi> http_api;
  if (!absl::GetFlag(FLAGS_http_listen).empty()) {
    auto started = stave::server::HttpApi::Start(
        state, {.listen = absl::GetFlag(FLAGS_http_listen),
                .threads = absl::GetFlag(FLAGS_http_threads),
                .max_body_bytes = static_cast<size_t>(absl::GetFlag(FLAGS_http_max_body_mb)) << 20,
                .chat_template = *chat_template});
    if (!started.ok()) return Fail(started.status());
    http_api = *std::move(started);
  }
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  // gRPC sets SO_REUSEPORT by default: a second staved on the same port would start silently and
  // take half the connections. Off, the second one fails to bind and says so.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  int port = 0;
  const std::string listen = absl::GetFlag(FLAGS_listen);
  builder.AddListeningPort(listen, *credentials, &port);
  builder.RegisterService(&inference);
  builder.RegisterService(&config_service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0)
    return Fail(absl::UnavailableError(
        absl::StrCat("--listen ", listen, ": cannot listen there (address in use, or not an address of this host)")));

  // The lines tests and scripts wait for: the ports actually bound (metrics first).
  if ((*metrics)->port() != 0)
    std::printf("staved: metrics on http://%s:%d/metrics\n", Host(absl::GetFlag(FLAGS_metrics_listen)).c_str(),
                (*metrics)->port());
  if (http_api != nullptr)
    std::printf("staved: HTTP API on http://%s:%d/v1 (chat template: %s)\n", Host(absl::GetFlag(FLAGS_http_listen)).c_str(),
                http_api->port(), chat_template->has_value() ? (*chat_template)->name() : "none");
  std::printf("staved: serving %s on %s:%d\n", (*model)->config().ToString().c_str(), Host(listen).c_str(), port);
  std::fflush(stdout);
  spdlog::info("serving {} on {}:{} ({}, {} writes)", model_path, Host(listen), port,
               absl::GetFlag(FLAGS_tls_cert).empty() ? "plaintext" : "TLS",
               absl::GetFlag(FLAGS_admin_token_file).empty() ? "loopback-only" : "token-authorised");

  g_stop.acquire();
  spdlog::info("shutting down: {} running and {} queued requests have {} s to finish", engine.active(),
               engine.queued(), absl::GetFlag(FLAGS_grace_seconds));
  server->GetHealthCheckService()->SetServingStatus(false);
  if (http_api != nullptr) http_api->Drain();
  const auto grace = std::chrono::seconds(absl::GetFlag(FLAGS_grace_seconds));
  const auto http_deadline = std::chrono::steady_clock::now() + grace;
  server->Shutdown(std::chrono::system_clock::now() + grace);
  if (http_api != nullptr) http_api->Stop(http_deadline);
  spdlog::info("stopped");
  return 0;
}
