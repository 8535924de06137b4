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

struct ChannelOptions {
  std::string server;  // HOST:PORT, "IP:PORT,IP:PORT,..." or a gRPC target URI
  std::string tls_ca;  // PEM root certificates; empty = plain text
  std::string lb_policy = "round_robin";
};

// Registers --server, --tls-ca and --lb on `cmd`; returns --server so a command for which it is
// mandatory can mark it required().
CLI::Option* AddServerFlags(CLI::App* cmd, ChannelOptions& options);

// The gRPC target for `server`: a comma-separated list of IP literals becomes an ipv4:/ipv6:
// target (gRPC's static address list), anything else is passed through unchanged.
absl::StatusOr<std::string> ChannelTarget(absl::string_view server);

// Errors (an unreadable --tls-ca, a list of host names) are INVALID_ARGUMENT. The channel
// connects lazily, at the first call.
absl::StatusOr<std::shared_ptr<grpc::Channel>> OpenChannel(const ChannelOptions& options);

// The same code, with the message "SERVER: message" so a user with several servers knows which
// one answered.
absl::Status FromGrpc(const grpc::Status& status, absl::string_view server);

}  // namespace stave::cli
