// stave.v1.Inference on the gRPC callback API: one write reactor per Generate stream, fed by the
// engine thread; Score joins the engine's batches as a scoring sequence. Requests are checked by
// generate_request.h (shared with the HTTP API); every absl::Status becomes a gRPC status in
// ToGrpcStatus.
#pragma once

#include "server/generate_request.h"
#include "server/request_record.h"
#include "stave/v1/stave.grpc.pb.h"

namespace stave::server {

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

// The record of a gRPC call as it arrives: its request id (the client's `x-request-id` metadata
// when valid, else a new one), sent back at once in the initial metadata, its method and peer.
RequestRecord StartGrpcRecord(grpc::CallbackServerContext* context, std::string_view method);

// Finishes a unary call: its log line and metrics (request_record.h), then the status.
void FinishUnary(grpc::ServerUnaryReactor* reactor, Metrics& metrics, RequestRecord& record,
                 const absl::Status& status);

}  // namespace stave::server
