// How the client reaches staved: one address, a list of replicas balanced client-side, or any
// gRPC target (dns:///headless-service:50051), in plain text or TLS. Shared by every subcommand
// that talks to a server so they accept the same flags and report gRPC errors the same way.
#pragma once

#include <memory>
#include <string>
#include "absl/strings/string_view.h"

#include <CLI/CLI.hpp>
#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace stave::cli {

// Deadline of every call to staved unless --timeout says otherwise. A Generate stream must end
// within it, so it is generous: 256 tokens of a 110M model on 2 cores take ~15 s.
inline constexpr double kDefaultTimeoutSeconds = 120;

struct ChannelOptions {
  std::string server;  // HOST:PORT, "IP:PORT,IP:PORT,..." or a gRPC target URI
  std::string tls_ca;  // PEM root certificates; empty = plain text
  std::string lb_policy = "round_robin";
  double timeout_s = kDefaultTimeoutSeconds;  // per call (a whole stream for Generate)
};

// Registers --server, --tls-ca, --lb and --timeout (default: options.timeout_s as given) on
// `cmd`; returns --server so a command for which it is mandatory can mark it required().
CLI::Option* AddServerFlags(CLI::App* cmd, ChannelOptions& options);

// Sets the call's deadline --timeout seconds from now (none when timeout_s is 0).
void SetDeadline(grpc::ClientContext& context, double timeout_s);

// The gRPC target for `server`: a comma-separated list of IP literals becomes an ipv4:/ipv6:
// target (gRPC's static address list), anything else is passed through unchanged.
absl::StatusOr<std::string> ChannelTarget(absl::string_view server);

// Errors (an unreadable --tls-ca, a list of host names) are INVALID_ARGUMENT. The channel
// connects lazily, at the first call.
absl::StatusOr<std::shared_ptr<grpc::Channel>> OpenChannel(const ChannelOptions& options);

// The same code, with the message "SERVER: message" so a user with several servers knows which
// one answered. DEADLINE_EXCEEDED says which deadline (timeout_s, the --timeout the call had)
// expired and what to change; gRPC's own message is only "Deadline Exceeded".
absl::Status FromGrpc(const grpc::Status& status, absl::string_view server, double timeout_s = 0);

}  // namespace stave::cli
