#include "core/decode_kernels.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>

namespace stave::kernels {

void RmsNorm(const float* x, const float* weight, float* out, int64_t rows, int64_t dim, float eps) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * dim;
    float ss = 0.0f;
    for (int64_t i = 0; i < dim; ++i) ss += xr[i] * xr[i];
    ss = 1.0f / std::sqrt(ss / dim + eps);
    float* o = out + r * dim;
    for (int64_t i = 0; i < dim; ++i) o[i] = weight[i] * (ss * xr[i]);
  }
}

void Rope(float* x, int64_t heads, int64_t head_dim, const float* cos, const float* sin) {
  const int64_t half = head_dim / 2;
  for (int64_t h = 0; h < heads; ++h) {
    float* v = x + h * head_dim;
    for (int64_t i = 0; i < half; ++i) {
      const float a = v[i], b = v[i + half];
      v[i] = a * cos[i] - b * sin[i];
      v[i + half] = b * cos[i + half] + a * sin[i + half];
    }
  }
}

void Attention(const float* q, int64_t q_stride, const float* k_cache, const float* v_cache, float* out,
               float* scratch, int64_t batch, int64_t heads, int64_t kv_heads, int64_t head_dim,
               int64_t capacity, int64_t length) {
  const int64_t group = heads / kv_heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  // Keep tiny models on one thread: a task should be worth more than the pool's wake-up.
  const int64_t grain = std::max<int64_t>(1, 65536 / std::max<int64_t>(1, 2 * length * head_dim));
  at::parallel_for(0, batch * heads, grain, [&](int64_t begin, int64_t end) {
    for (int64_t bh = begin; bh < end; ++bh) {
      const int64_t b = bh / heads, h = bh % heads;
      const int64_t kv = b * kv_heads + h / group;
      const float* qh = q + b * q_stride + h * head_dim;
      const float* keys = k_cache + kv * capacity * head_dim;
      const float* values = v_cache + kv * capacity * head_dim;
      float* att = scratch + bh * length;
      float max_score = -INFINITY;
      for (int64_t t = 0; t < length; ++t) {
        const float* k = keys + t * head_dim;
        float s = 0.0f;
        for (int64_t i = 0; i < head_dim; ++i) s += qh[i] * k[i];
        att[t] = s * scale;
        max_score = std::max(max_score, att[t]);
      }
      float sum = 0.0f;
      for (int64_t t = 0; t < length; ++t) {
        att[t] = std::exp(att[t] - max_score);
        sum += att[t];
      }
      float* o = out + bh * head_dim;
      std::fill(o, o + head_dim, 0.0f);
      for (int64_t t = 0; t < length; ++t) {
        const float p = att[t] / sum;
        const float* v = values + t * head_dim;
        for (int64_t i = 0; i < head_dim; ++i) o[i] += p * v[i];
      }
    }
  });
}

void SiluMul(const float* gate_up, float* out, int64_t rows, int64_t hidden) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* g = gate_up + r * 2 * hidden;
    const float* u = g + hidden;
    float* o = out + r * hidden;
    for (int64_t i = 0; i < hidden; ++i) o[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
  }
}

}  // namespace stave::kernels
