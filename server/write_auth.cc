#include "server/write_auth.h"


#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "core/text_file.h"

namespace stave::server {
namespace {

// Compares in time independent of where the strings differ, so the token cannot be guessed a
// byte at a time from response times (only its length can leak).
bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

}  // namespace

bool IsLoopbackPeer(std::string_view peer) {
  return peer.starts_with("ipv4:127.") || peer.starts_with("ipv6:[::1]") ||
         peer.starts_with("ipv6:[::ffff:127.") || peer.starts_with("unix:");
}

absl::StatusOr<WriteAuth> WriteAuth::FromTokenFile(const std::string& path) {
  auto text = ReadTextFile(path);
  if (!text.ok()) return absl::NotFoundError(absl::StrCat("--admin-token-file: ", text.status().message()));
  std::string token(absl::StripAsciiWhitespace(*text));
  if (token.empty()) return absl::InvalidArgumentError(absl::StrCat("--admin-token-file: ", path, " is empty"));
  return WriteAuth(std::move(token));
}

absl::Status WriteAuth::Check(const grpc::CallbackServerContext& context) const {
  if (!token_) {
    if (IsLoopbackPeer(context.peer())) return absl::OkStatus();
    return absl::PermissionDeniedError(absl::StrCat(
        "config writes are accepted only from loopback when staved runs without --admin-token-file "
        "(this peer: ", context.peer(), ")"));
  }
  const auto& metadata = context.client_metadata();
  auto it = metadata.find("authorization");
  if (it == metadata.end())
    return absl::UnauthenticatedError("config writes need the metadata 'authorization: Bearer <token>'");
  std::string_view value(it->second.data(), it->second.size());
  constexpr std::string_view kScheme = "Bearer ";
  // The scheme is case-insensitive (RFC 7235 section 2.1): "bearer" and "BEARER" are the same.
  if (!absl::StartsWithIgnoreCase(absl::string_view(value.data(), value.size()),
                                  absl::string_view(kScheme.data(), kScheme.size())) ||
      !ConstantTimeEquals(value.substr(kScheme.size()), *token_))
    return absl::UnauthenticatedError("the bearer token does not match staved's --admin-token-file");
  return absl::OkStatus();
}

}  // namespace stave::server
