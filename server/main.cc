// staved: the stave gRPC server. Serves stave.v1.Inference (streaming generation), the standard
// grpc.health.v1 health service and server reflection. SIGTERM/SIGINT: stop accepting, let
// running streams finish for up to --grace-seconds, exit 0.
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <csignal>
#include <cstdio>
#include <semaphore>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "core/model.h"
#include "server/engine.h"
#include "server/inference_service.h"

ABSL_FLAG(std::string, model, "", "model: a llama2.c .bin file or a Hugging Face directory");
ABSL_FLAG(std::string, tokenizer, "", "tokenizer (default: next to the model)");
ABSL_FLAG(std::string, listen, "127.0.0.1:50051", "address to serve on (port 0 = any free port)");
ABSL_FLAG(int, queue_size, 64, "requests that may wait for the engine before RESOURCE_EXHAUSTED");
ABSL_FLAG(int, threads, 0, "compute threads (0 = one per core)");
ABSL_FLAG(int, grace_seconds, 30, "on SIGTERM, how long running streams may take to finish");

namespace {
std::binary_semaphore g_stop(0);
void OnSignal(int) { g_stop.release(); }  // async-signal-safe: a semaphore post
}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("staved --model PATH [--tokenizer PATH] [--listen HOST:PORT]");
  absl::ParseCommandLine(argc, argv);
  if (absl::GetFlag(FLAGS_model).empty()) {
    std::fprintf(stderr, "staved: --model is required (the embedded default model is not built yet)\n");
    return 2;
  }
  stave::ConfigureThreads(absl::GetFlag(FLAGS_threads));
  auto model = stave::Model::Load(absl::GetFlag(FLAGS_model), absl::GetFlag(FLAGS_tokenizer));
  if (!model.ok()) {
    std::fprintf(stderr, "staved: %s\n", std::string(model.status().message()).c_str());
    return 1;
  }
  stave::server::Engine engine(absl::GetFlag(FLAGS_queue_size));
  stave::server::InferenceService inference(**model, engine);

  // Handlers first: the readiness line below may be answered by a SIGTERM at once.
  std::signal(SIGTERM, OnSignal);
  std::signal(SIGINT, OnSignal);
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(absl::GetFlag(FLAGS_listen), grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&inference);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    std::fprintf(stderr, "staved: cannot listen on %s\n", absl::GetFlag(FLAGS_listen).c_str());
    return 1;
  }
  const std::string listen = absl::GetFlag(FLAGS_listen);
  // The line tests and scripts wait for: the port actually bound.
  std::printf("staved: serving %s on %s:%d\n", (*model)->config().ToString().c_str(),
              listen.substr(0, listen.rfind(':')).c_str(), port);
  std::fflush(stdout);

  g_stop.acquire();
  std::fprintf(stderr, "staved: shutting down; running streams have %d s to finish\n",
               absl::GetFlag(FLAGS_grace_seconds));
  server->GetHealthCheckService()->SetServingStatus(false);
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(absl::GetFlag(FLAGS_grace_seconds)));
  return 0;
}
