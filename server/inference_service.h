// stave.v1.Inference on the gRPC callback API: one write reactor per Generate stream, fed by the
// engine thread; Score runs as a one-shot engine task. Request validation errors become
// INVALID_ARGUMENT naming the field; every absl::Status becomes a gRPC status in ToGrpcStatus.
#pragma once

#include "core/model.h"
#include "server/config_store.h"
#include "server/engine.h"
#include "server/metrics.h"
#include "server/router_directory.h"
#include "server/side_worker.h"
#include "stave/v1/stave.grpc.pb.h"

namespace stave::server {

// What every service needs from the running server.
struct ServerState {
  const Model& model;
  Engine& engine;
  ConfigStore& config;
  Metrics& metrics;
  const RouterDirectory& routers;  // the only router files a request may name
  SideWorker& side_worker;         // slow configuration work (the base search)
  PositionCache& position_cache;   // RoPE tables and routers kept between requests
};

// Limits every request is held to before any work is done (stated in stave.proto).
inline constexpr size_t kMaxRequestTextBytes = size_t{1} << 20;
inline constexpr int kMaxStopStrings = 16;
inline constexpr size_t kMaxStopStringBytes = 256;

// INVALID_ARGUMENT naming `field` when `text` is larger than kMaxRequestTextBytes.
absl::Status CheckTextSize(absl::string_view field, absl::string_view text);

// A request's own position config (the proto's), validated for this model, its router resolved
// by name in `routers`; INVALID_ARGUMENT naming the field otherwise.
absl::StatusOr<PositionConfig> PositionFromRequest(const ServerState& state,
                                                   const stave::v1::PositionConfig& position);

class InferenceService final : public stave::v1::Inference::CallbackService {
 public:
  explicit InferenceService(ServerState state) : state_(state) {}

  grpc::ServerWriteReactor<stave::v1::GenerateResponse>* Generate(
      grpc::CallbackServerContext* context, const stave::v1::GenerateRequest* request) override;
  grpc::ServerUnaryReactor* Score(grpc::CallbackServerContext* context,
                                  const stave::v1::ScoreRequest* request,
                                  stave::v1::ScoreResponse* response) override;
  grpc::ServerUnaryReactor* Tokenize(grpc::CallbackServerContext* context,
                                     const stave::v1::TokenizeRequest* request,
                                     stave::v1::TokenizeResponse* response) override;
  grpc::ServerUnaryReactor* GetModelInfo(grpc::CallbackServerContext* context,
                                         const stave::v1::GetModelInfoRequest* request,
                                         stave::v1::ModelInfo* response) override;

 private:
  ServerState state_;
};

// The one place absl::Status codes become gRPC status codes (the numbers are the same).
grpc::Status ToGrpcStatus(const absl::Status& status);

// Finishes a unary call and counts it in the metrics.
void FinishUnary(grpc::ServerUnaryReactor* reactor, Metrics& metrics, std::string_view method,
                 const absl::Status& status);

}  // namespace stave::server
