// Who may change the config. With --admin-token-file, a write must carry
// "authorization: Bearer <token>" (the file's content, surrounding whitespace trimmed). Without
// one, writes are accepted only from loopback peers, so an unconfigured server is never
// reconfigurable from the network.
#pragma once

#include <optional>
#include <string>

#include <grpcpp/server_context.h>

#include "absl/status/statusor.h"

namespace stave::server {

class WriteAuth {
 public:
  static WriteAuth LoopbackOnly() { return WriteAuth(std::nullopt); }
  // NOT_FOUND / INVALID_ARGUMENT (empty token) naming the file.
  static absl::StatusOr<WriteAuth> FromTokenFile(const std::string& path);

  // OK, UNAUTHENTICATED (token missing or wrong) or PERMISSION_DENIED (not loopback).
  absl::Status Check(const grpc::CallbackServerContext& context) const;

 private:
  explicit WriteAuth(std::optional<std::string> token) : token_(std::move(token)) {}
  std::optional<std::string> token_;
};

// "ipv4:127.0.0.1:5000", "ipv6:[::1]:5000", "ipv6:[::ffff:127.0.0.1]:5000", "unix:...".
bool IsLoopbackPeer(std::string_view peer);

}  // namespace stave::server
