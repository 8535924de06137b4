// stave.v1.Inference on the gRPC callback API: one write reactor per Generate stream, fed by the
// engine thread. Request validation errors become INVALID_ARGUMENT here, at the server edge.
#pragma once

#include "core/model.h"
#include "server/engine.h"
#include "stave/v1/stave.grpc.pb.h"

namespace stave::server {

class InferenceService final : public stave::v1::Inference::CallbackService {
 public:
  InferenceService(const Model& model, Engine& engine) : model_(model), engine_(engine) {}

  grpc::ServerWriteReactor<stave::v1::GenerateResponse>* Generate(
      grpc::CallbackServerContext* context, const stave::v1::GenerateRequest* request) override;
  grpc::ServerUnaryReactor* Tokenize(grpc::CallbackServerContext* context,
                                     const stave::v1::TokenizeRequest* request,
                                     stave::v1::TokenizeResponse* response) override;
  grpc::ServerUnaryReactor* GetModelInfo(grpc::CallbackServerContext* context,
                                         const stave::v1::GetModelInfoRequest* request,
                                         stave::v1::ModelInfo* response) override;

 private:
  const Model& model_;
  Engine& engine_;
};

// The one place absl::Status codes become gRPC status codes.
grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace stave::server
