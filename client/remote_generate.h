// stave generate --server: the same generation through staved's Inference.Generate stream.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace stave::cli {

struct RemoteRequest {
  std::string server, prompt;
  int max_tokens = 256;
  float temperature = 1.0f, top_p = 0.9f;
  int top_k = 0;
  uint64_t seed = 0;
  std::vector<std::string> stop;
};

struct RemoteResult {
  std::vector<int> token_ids;
  std::string text, finish_reason;
  uint32_t prompt_tokens = 0;
  uint64_t config_version = 0;
};

// Calls on_text with each piece as it arrives; gRPC errors come back as Status with the
// server's code and message.
absl::StatusOr<RemoteResult> RemoteGenerate(const RemoteRequest& request,
                                            const std::function<void(std::string_view)>& on_text);

}  // namespace stave::cli
