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
  at::Tensor sin_signed;  // [-sin, sin] halves: rotate_half(x) * sin == swap_halves(x) * sin_signed
};

RopeTable MakeRopeTable(double base, int head_dim, int max_len, double scaling = 1.0);

// x [..., head_dim] rotated by the angles whose cos and signed sin rows are given (broadcastable
// to x, e.g. [B, T, 1, head_dim] for x [B, T, heads, head_dim]).
at::Tensor ApplyRope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin_signed);

}  // namespace stave
