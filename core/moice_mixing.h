// MoICE's mixing (docs/methods.md, MoICE), once for the LibTorch paths: the router reads each
// head's query rotated with the first expert base; the head's output is the sum of causal
// attention with q and k rotated by each selected base, weighted by the router's top-K
// probabilities renormalised (RouteWeights, moice_router.h). Used by the reference forward
// (Transformer::Forward, contiguous KvCache, autograd for router training) and by the serving
// forward's prompt chunks (ForwardBatch, paged pool): they differ only in where keys live.
// One-token decode on CPU runs the hand-written kernels::MoiceAttention (decode_kernels.h), the
// same maths as loops over the pool without LibTorch's per-op cost, checked against this path
// (tests/moice_test.cc, tests/batching_test.cc).
#pragma once

#include <cstdint>
#include <functional>

#include <ATen/core/Tensor.h>

#include "core/moice_router.h"
#include "core/rope.h"

namespace stave {

// q: unrotated queries [1, T, heads, head_dim] at positions start .. start + T - 1; experts: one
// table per expert base [N, >= start + T, head_dim]; keys(i): expert i's rotated keys in the form
// `attend` takes; attend(q_i, keys_i): causal attention of rotated queries, [T, heads * head_dim].
// Experts no token selects are skipped. probs, when given, receives the router probabilities
// [1, T, heads, N]. Returns [T, heads * head_dim].
at::Tensor MixMoiceExperts(const at::Tensor& q, const RopeTable& experts, int64_t start,
                           const RouterWeights& router, int top_k,
                           const std::function<at::Tensor(int64_t)>& keys,
                           const std::function<at::Tensor(const at::Tensor&, const at::Tensor&)>& attend,
                           at::Tensor* probs = nullptr);

}  // namespace stave
