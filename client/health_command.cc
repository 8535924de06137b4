// stave health: grpc.health.v1.Health/Check, for container HEALTHCHECKs and readiness scripts.
// Prints the serving status on stdout; exits 0 only when it is SERVING.
#include <chrono>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "client/channel.h"
#include "client/commands.h"
#include "client/health.grpc.pb.h"

namespace stave::cli {
namespace {

using grpc::health::v1::HealthCheckResponse;

struct HealthOptions {
  // A health check answers at once or not at all: 5 s rather than the usual --timeout default.
  HealthOptions() { channel.timeout_s = 5; }
  ChannelOptions channel;
  std::string service;  // "" = the server as a whole
};

absl::Status RunHealth(const HealthOptions& o) {
  auto channel = OpenChannel(o.channel);
  if (!channel.ok()) return channel.status();
  auto stub = grpc::health::v1::Health::NewStub(*channel);
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(o.service);
  HealthCheckResponse response;
  grpc::ClientContext context;
  SetDeadline(context, o.channel.timeout_s);
  const grpc::Status status = stub->Check(&context, request, &response);
  const std::string service = o.service.empty() ? "" : absl::StrCat(" service '", o.service, "'");
  if (status.error_code() == grpc::StatusCode::NOT_FOUND) {
    // The standard health service answers NOT_FOUND for a service name it does not know.
    std::puts(HealthCheckResponse::ServingStatus_Name(HealthCheckResponse::SERVICE_UNKNOWN).c_str());
    return absl::NotFoundError(absl::StrCat(o.channel.server, ":", service, " unknown to the health service"));
  }
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE ||
      status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED)
    return absl::UnavailableError(absl::StrCat("cannot reach ", o.channel.server, ": ",
                                               status.error_message()));
  if (!status.ok()) return FromGrpc(status, o.channel.server);
  const std::string name = HealthCheckResponse::ServingStatus_Name(response.status());
  std::puts(name.empty() ? absl::StrCat("status ", response.status()).c_str() : name.c_str());
  if (response.status() != HealthCheckResponse::SERVING)
    return absl::UnavailableError(absl::StrCat(o.channel.server, service, " is not serving (",
                                               name.empty() ? "unknown status" : name, ")"));
  return absl::OkStatus();
}

}  // namespace

void AddHealthCommand(CLI::App& app) {
  auto o = std::make_shared<HealthOptions>();
  auto* cmd = app.add_subcommand("health", "ask staved's gRPC health service whether it is serving (exit 0 = SERVING)");
  AddServerFlags(cmd, o->channel)->required();
  cmd->add_option("--service", o->service, "service name to check (default: the whole server)");
  cmd->callback([o] { CommandStatus() = RunHealth(*o); });
}

}  // namespace stave::cli
