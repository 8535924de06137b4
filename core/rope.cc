#include "core/rope.h"

#include <torch/torch.h>

#include <cmath>

namespace stave {

std::vector<float> Llama3FreqDivisors(double base, int head_dim, double factor, double low_freq_factor,
                                      double high_freq_factor, double original_context) {
  std::vector<float> divisors;
  const double low_freq_wavelen = original_context / low_freq_factor;
  const double high_freq_wavelen = original_context / high_freq_factor;
  for (int i = 0; i < head_dim / 2; ++i) {
    const double inv_freq = 1.0 / std::pow(base, 2.0 * i / head_dim);
    const double wavelen = 2 * M_PI / inv_freq;
    double scaled = inv_freq;
    if (wavelen > low_freq_wavelen) {
      scaled = inv_freq / factor;
    } else if (wavelen >= high_freq_wavelen) {
      const double smooth = (original_context / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor);
      scaled = (1 - smooth) * inv_freq / factor + smooth * inv_freq;
    }
    divisors.push_back(static_cast<float>(inv_freq / scaled));
  }
  return divisors;
}

RopeTable MakeRopeTable(double base, int head_dim, int max_len, double scaling,
                        const std::vector<float>& freq_divisors) {
  // fp32 arithmetic as in llama2.c's run.c and HF's LlamaRotaryEmbedding, so logits match them.
  auto cos = torch::empty({max_len, head_dim});
  auto sin = torch::empty({max_len, head_dim});
  auto c = cos.accessor<float, 2>();
  auto s = sin.accessor<float, 2>();
  const int half = head_dim / 2;
  for (int i = 0; i < half; ++i) {
    float inv_freq = 1.0f / std::pow(static_cast<float>(base),
                                     static_cast<float>(2 * i) / static_cast<float>(head_dim));
    if (!freq_divisors.empty()) inv_freq /= freq_divisors[i];
    for (int pos = 0; pos < max_len; ++pos) {
      float angle = (static_cast<float>(pos) / static_cast<float>(scaling)) * inv_freq;
      c[pos][i] = c[pos][i + half] = std::cos(angle);
      s[pos][i] = s[pos][i + half] = std::sin(angle);
    }
  }
  auto half_sin = sin.narrow(1, 0, half);
  auto sin_signed = torch::cat({-half_sin, half_sin}, 1);
  return {cos, sin, sin_signed};
}

at::Tensor ApplyRope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin_signed) {
  // x cos + rotate_half(x) sin, with rotate_half(x) = [-x2, x1]: the sign lives in sin_signed, so
  // swapping the halves is one cat.
  const int64_t half = x.size(-1) / 2;
  auto swapped = at::cat({x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
  return at::addcmul(x * cos, swapped, sin_signed);
}

}  // namespace stave
