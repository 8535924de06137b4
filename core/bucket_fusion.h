// Attention Buckets' fusion of the branches' next-token outputs, in fp32 (docs/methods.md
// section 2.3).
#pragma once

#include <ATen/core/Tensor.h>

#include "core/position_config.h"

namespace stave {

// logits [N, V] of N branches -> fused logits [V].
//  kLogits: alpha = softmax_j(max_v l_j[v]); result = sum_j alpha_j l_j (the reference code).
//  kProbs:  p_j = softmax(l_j); alpha = softmax_j(max_v p_j[v]); result = log(sum_j alpha_j p_j)
//           (log-probabilities, so samplers that take logits can use it unchanged).
at::Tensor FuseBranchLogits(const at::Tensor& logits, Fusion fusion);

}  // namespace stave
