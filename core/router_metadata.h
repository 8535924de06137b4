// A MoICE router checkpoint's safetensors metadata (expert_bases, top_k, n_layers, head_dim),
// parsed without LibTorch; MoiceRouters::Load checks it against the model and loads the tensors.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace stave {

struct RouterMetadata {
  std::vector<double> expert_bases;
  int top_k = 0;
  int n_layers = 0;
  int head_dim = 0;
};

// `path` names the file in errors.
absl::StatusOr<RouterMetadata> ParseRouterMetadata(const std::map<std::string, std::string>& metadata,
                                                   const std::string& path);

}  // namespace stave
