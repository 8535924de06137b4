// stave.v1.Config: read the position config, change it (validated, versioned, authorised) and run
// the base search for this model.
#pragma once

#include "server/inference_service.h"
#include "server/write_auth.h"
#include "stave/v1/stave.grpc.pb.h"

namespace stave::server {

class ConfigService final : public stave::v1::Config::CallbackService {
 public:
  ConfigService(ServerState state, WriteAuth auth) : state_(state), auth_(std::move(auth)) {}

  grpc::ServerUnaryReactor* GetConfig(grpc::CallbackServerContext* context,
                                      const stave::v1::GetConfigRequest* request,
                                      stave::v1::PositionConfig* response) override;
  grpc::ServerUnaryReactor* UpdateConfig(grpc::CallbackServerContext* context,
                                         const stave::v1::UpdateConfigRequest* request,
                                         stave::v1::PositionConfig* response) override;
  grpc::ServerUnaryReactor* SearchBases(grpc::CallbackServerContext* context,
                                        const stave::v1::SearchBasesRequest* request,
                                        stave::v1::SearchBasesResponse* response) override;

 private:
  void Describe(const ConfigSnapshot& snapshot, stave::v1::PositionConfig* out) const;

  ServerState state_;
  WriteAuth auth_;
};

// UpdateConfigRequest -> ConfigUpdate; unknown enum values are INVALID_ARGUMENT.
// A router name becomes its file in `routers`; router_path is refused (clients never name files).
absl::StatusOr<ConfigUpdate> FromProto(const stave::v1::UpdateConfigRequest& request, const RouterDirectory& routers);

}  // namespace stave::server
