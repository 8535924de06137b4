// Rotary position embedding tables. Computed from a base passed in (never baked into the model):
// the position methods run several bases side by side.
#pragma once

#include <vector>

#include <ATen/core/Tensor.h>

namespace stave {

// cos/sin of pos * inv_freq[i], inv_freq[i] = base^(-2i/d), laid out for the rotate-half
// convention: shape [max_len, head_dim], the second half repeating the first. `scaling` > 1 is
// linear position interpolation (positions divided by it).
struct RopeTable {
  at::Tensor cos, sin;
  at::Tensor sin_signed;  // [-sin, sin] halves: rotate_half(x) * sin == swap_halves(x) * sin_signed
};

// freq_divisors ([head_dim / 2] or empty): inv_freq[i] is divided by freq_divisors[i] (Llama 3.1).
RopeTable MakeRopeTable(double base, int head_dim, int max_len, double scaling = 1.0,
                        const std::vector<float>& freq_divisors = {});

// Llama 3.1's "llama3" rope_scaling as divisors for MakeRopeTable: wavelengths shorter than
// original_context / high_freq_factor keep their frequency, longer than original_context /
// low_freq_factor are divided by `factor`, and those between are interpolated smoothly
// (transformers' _compute_llama3_parameters).
std::vector<float> Llama3FreqDivisors(double base, int head_dim, double factor, double low_freq_factor,
                                      double high_freq_factor, double original_context);

// x [..., head_dim] rotated by the angles whose cos and signed sin rows are given (broadcastable
// to x, e.g. [B, T, 1, head_dim] for x [B, T, heads, head_dim]).
at::Tensor ApplyRope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin_signed);

}  // namespace stave
