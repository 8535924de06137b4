// stave generate --server and stave loadtest: one generation through staved's Inference.Generate
// stream.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/position_config.h"
#include "stave/v1/stave.grpc.pb.h"

namespace stave::cli {

struct RemoteRequest {
  std::string prompt;
  int max_tokens = 256;
  float temperature = 1.0f, top_p = 0.9f;
  int top_k = 0;
  uint64_t seed = 0;
  std::vector<std::string> stop;
  // This request only; nullopt = the server's current position config.
  std::optional<PositionConfig> position;
  double timeout_s = 0;  // the whole stream's deadline (--timeout); 0 = none
};

struct RemoteResult {
  std::vector<int> token_ids;
  std::string text, finish_reason;
  uint32_t prompt_tokens = 0;
  uint64_t config_version = 0;
};

// Called for every streamed message: token_id is set when the message carries a generated token
// (the final message may carry none), text is the decoded text it releases (may be empty).
using OnStreamed = std::function<void(std::optional<int> token_id, std::string_view text)>;

// gRPC errors come back as Status with the server's code and the message "SERVER: message".
// `server` only labels errors. The stub may be shared by concurrent calls.
absl::StatusOr<RemoteResult> RemoteGenerate(stave::v1::Inference::StubInterface& stub,
                                            absl::string_view server, const RemoteRequest& request,
                                            const OnStreamed& on_streamed);

}  // namespace stave::cli
