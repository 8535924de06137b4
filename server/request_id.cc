#include "server/request_id.h"

#include <random>

#include "absl/strings/ascii.h"
#include "absl/strings/str_format.h"

namespace stave::server {

bool IsValidRequestId(std::string_view id) {
  if (id.empty() || id.size() > kMaxRequestIdLength) return false;
  for (char c : id)
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') return false;
  return true;
}

std::string NewRequestId() {
  // One engine per thread: request threads make ids concurrently and need no lock. Unique enough
  // to tell requests apart in logs (64 bits); not a secret, so no cryptographic generator.
  static thread_local std::mt19937_64 engine{std::random_device{}()};
  return absl::StrFormat("%016x", engine());
}

std::string RequestIdFor(std::string_view client_supplied) {
  return IsValidRequestId(client_supplied) ? std::string(client_supplied) : NewRequestId();
}

}  // namespace stave::server
