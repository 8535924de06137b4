// Rotary position embedding tables. Computed from a base passed in (never baked into the model):
// the position methods run several bases side by side.
#pragma once

#include <ATen/core/Tensor.h>

namespace stave {

// cos/sin of pos * inv_freq[i], inv_freq[i] = base^(-2i/d), laid out for the rotate-half
// convention: shape [max_len, head_dim], the second half repeating the first. `scaling` > 1 is
// linear position interpolation (positions divided by it).
struct RopeTable {
  at::Tensor cos, sin;
  double base = 0;
};

RopeTable MakeRopeTable(double base, int head_dim, int max_len, double scaling = 1.0);

// x [..., T, heads, head_dim] rotated at positions given by cos/sin rows [T, head_dim] (or
// broadcastable, e.g. [B, T, 1, head_dim]).
at::Tensor ApplyRope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin);

}  // namespace stave
