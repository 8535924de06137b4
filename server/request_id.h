// Request ids: one per request of either transport, so that a client, the log line of its request
// and an operator can name the same request. A client may bring its own (gRPC metadata
// `x-request-id`, HTTP header `X-Request-Id`) to join staved's logs to its own; it is kept only
// when it is short and made of [A-Za-z0-9._-], so that it can go into a log line, a response
// header and a JSON field without escaping and without letting a client grow them. Anything else is replaced
// by a fresh random id (16 hex digits).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace stave::server {

inline constexpr size_t kMaxRequestIdLength = 64;
inline constexpr char kRequestIdGrpcKey[] = "x-request-id";  // gRPC metadata keys are lower case
inline constexpr char kRequestIdHttpHeader[] = "X-Request-Id";

// True when a client-supplied id may be used as it is: 1..kMaxRequestIdLength characters of
// [A-Za-z0-9._-].
bool IsValidRequestId(std::string_view id);

// A fresh id: 16 lower-case hex digits (64 random bits).
std::string NewRequestId();

// The id a request gets: `client_supplied` when valid, else a new one.
std::string RequestIdFor(std::string_view client_supplied);

}  // namespace stave::server
