#include "core/bucket_fusion.h"

#include <torch/torch.h>

namespace stave {

at::Tensor FuseBranchLogits(const at::Tensor& logits, Fusion fusion) {
  auto l = logits.to(torch::kFloat);
  if (l.size(0) == 1) return l[0];  // one branch: nothing to fuse, and no rounding either
  if (fusion == Fusion::kLogits) {
    auto alpha = torch::softmax(std::get<0>(l.max(-1)), 0);  // [N]
    return (alpha.unsqueeze(1) * l).sum(0);
  }
  auto p = torch::softmax(l, -1);
  auto alpha = torch::softmax(std::get<0>(p.max(-1)), 0);
  return (alpha.unsqueeze(1) * p).sum(0).log();
}

}  // namespace stave
