// MoICE routers (docs/methods.md section 4.2): one per layer, shared by the layer's heads, applied
// per token and head to the query rotated with the first expert base. r = W2 (silu(W1 q) * (W3 q)),
// W1, W3 [N, head_dim], W2 [N, N], no biases; p = softmax(r); the top-K of p, renormalised, are the
// weights of the per-base attention outputs.
#pragma once

#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "absl/status/statusor.h"
#include "core/model_config.h"

namespace stave {

struct RouterWeights {
  at::Tensor w1, w2, w3;
};

struct MoiceRouters {
  std::vector<double> expert_bases;
  int top_k = 0;
  std::vector<RouterWeights> layers;

  // As training starts them: Normal(0, 0.02), a near-uniform mixture.
  static MoiceRouters Random(const ModelConfig& model, std::vector<double> expert_bases, int top_k,
                             uint64_t seed);
  // A router checkpoint (safetensors: layers.<i>.w1/w2/w3 + metadata); errors say what does not
  // match `model`.
  static absl::StatusOr<MoiceRouters> Load(const std::string& path, const ModelConfig& model);
  absl::Status Save(const std::string& path, const ModelConfig& model) const;

  int experts() const { return static_cast<int>(expert_bases.size()); }
};

// Mixture weights [..., N] for rotated queries q [..., head_dim]: top-K of softmax(r) renormalised,
// zeros elsewhere. Also returns the full probabilities through `probs` when not null (training).
at::Tensor RouteWeights(const RouterWeights& router, const at::Tensor& q, int top_k,
                        at::Tensor* probs = nullptr);

}  // namespace stave
