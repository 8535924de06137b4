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

namespace {

// One head: out = softmax(q . keys / sqrt(d)) values over `length` cached positions, read block
// by block (a block's positions are contiguous rows of head_dim floats). HD > 0 fixes the head
// size at compile time (the common sizes), so the dot products unroll and vectorise whole; HD = 0
// takes it from the argument. Compiled for AVX-512, AVX2 and a baseline, picked by the CPU at
// load time (target_clones). Plain loops, no lambdas: a lambda would be compiled for the
// baseline and called per position from the AVX-512 clone.
template <int HD>
__attribute__((target_clones("avx512f", "avx2", "default")))
void AttendOneHeadT(const float* q, const PagedRows& keys, const PagedRows& values, int64_t kv_head, float* att,
                    float* out, int64_t head_dim_arg, int64_t length) {
  const int64_t head_dim = HD > 0 ? HD : head_dim_arg;
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  const int64_t bs = keys.block_size;
  float max_score = -INFINITY;
  for (int64_t start = 0, b = 0; start < length; start += bs, ++b) {
    const float* k = keys.Block(b, kv_head);
    const int64_t n = std::min(bs, length - start);
    for (int64_t j = 0; j < n; ++j, k += head_dim) {
      float s = 0.0f;
#pragma omp simd reduction(+ : s)
      for (int64_t i = 0; i < head_dim; ++i) s += q[i] * k[i];
      att[start + j] = s * scale;
      max_score = std::max(max_score, s * scale);
    }
  }
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (int64_t t = 0; t < length; ++t) {
    att[t] = FastExp(att[t] - max_score);
    sum += att[t];
  }
  const float inv_sum = 1.0f / sum;
  std::fill(out, out + head_dim, 0.0f);
  for (int64_t start = 0, b = 0; start < length; start += bs, ++b) {
    const float* v = values.Block(b, kv_head);
    const int64_t n = std::min(bs, length - start);
    for (int64_t j = 0; j < n; ++j, v += head_dim) {
      const float p = att[start + j] * inv_sum;
#pragma omp simd
      for (int64_t i = 0; i < head_dim; ++i) out[i] += p * v[i];
    }
  }
}

void AttendOneHead(const float* q, const PagedRows& keys, const PagedRows& values, int64_t kv_head, float* att,
                   float* out, int64_t head_dim, int64_t length) {
  switch (head_dim) {
    case 8: return AttendOneHeadT<8>(q, keys, values, kv_head, att, out, head_dim, length);
    case 16: return AttendOneHeadT<16>(q, keys, values, kv_head, att, out, head_dim, length);
    case 32: return AttendOneHeadT<32>(q, keys, values, kv_head, att, out, head_dim, length);
    case 64: return AttendOneHeadT<64>(q, keys, values, kv_head, att, out, head_dim, length);
    case 128: return AttendOneHeadT<128>(q, keys, values, kv_head, att, out, head_dim, length);
    default: return AttendOneHeadT<0>(q, keys, values, kv_head, att, out, head_dim, length);
  }
}

// Keep tiny models on one thread: a task should be worth more than the pool's wake-up.
int64_t HeadGrain(int64_t length, int64_t head_dim, int64_t per_head_passes) {
  return std::max<int64_t>(1, 65536 / std::max<int64_t>(1, 2 * length * head_dim * per_head_passes));
}

}  // namespace

void PagedAttention(const DecodeRow* rows, int64_t n_rows, float* scratch, int64_t max_length, int64_t heads,
                    int64_t kv_heads, int64_t head_dim) {
  const int64_t group = heads / kv_heads;
  int64_t mean_length = 0;
  for (int64_t r = 0; r < n_rows; ++r) mean_length += rows[r].length;
  mean_length = n_rows > 0 ? mean_length / n_rows : 0;
  at::parallel_for(0, n_rows * heads, HeadGrain(mean_length, head_dim, 1), [&](int64_t begin, int64_t end) {
    for (int64_t rh = begin; rh < end; ++rh) {
      const DecodeRow& row = rows[rh / heads];
      const int64_t h = rh % heads;
      AttendOneHead(row.q + h * head_dim, row.keys, row.values, h / group, scratch + rh * max_length,
                    row.out + h * head_dim, head_dim, row.length);
    }
  });
}

void MoiceAttention(const float* q_raw, const PagedRows* keys, const PagedRows& values, float* out,
                    float* scratch, const float* const* cos, const float* const* sin, const float* w1,
                    const float* w2, const float* w3, int64_t experts, int64_t top_k, int64_t heads,
                    int64_t kv_heads, int64_t head_dim, int64_t length) {
  const int64_t group = heads / kv_heads;
  const int64_t per_head = length + 3 * head_dim + 2 * experts;
  at::parallel_for(0, heads, HeadGrain(length, head_dim, top_k), [&](int64_t begin, int64_t end) {
    for (int64_t h = begin; h < end; ++h) {
      float* att = scratch + h * per_head;
      float* q0 = att + length;        // query rotated with expert 0's base: the router's input
      float* qe = q0 + head_dim;       // query rotated with another expert's base
      float* part = qe + head_dim;     // one expert's attention output
      float* g = part + head_dim;      // silu(W1 q) * (W3 q)
      float* p = g + experts;          // router probabilities
      const float* qh = q_raw + h * head_dim;
      std::copy(qh, qh + head_dim, q0);
      Rope(q0, 1, head_dim, cos[0], sin[0]);
      for (int64_t e = 0; e < experts; ++e) {
        float a1 = 0, a3 = 0;
        for (int64_t i = 0; i < head_dim; ++i) {
          a1 += w1[e * head_dim + i] * q0[i];
          a3 += w3[e * head_dim + i] * q0[i];
        }
        g[e] = a1 / (1.0f + std::exp(-a1)) * a3;
      }
      float max_r = -INFINITY;
      for (int64_t e = 0; e < experts; ++e) {
        float r = 0;
        for (int64_t f = 0; f < experts; ++f) r += w2[e * experts + f] * g[f];
        p[e] = r;
        max_r = std::max(max_r, r);
      }
      float z = 0;
      for (int64_t e = 0; e < experts; ++e) z += (p[e] = std::exp(p[e] - max_r));
      for (int64_t e = 0; e < experts; ++e) p[e] /= z;
      // Top-K by probability (ties: lower index first), weights renormalised over them.
      int64_t idx[16];  // experts <= 16, validated with the position config
      for (int64_t e = 0; e < experts; ++e) idx[e] = e;
      std::stable_sort(idx, idx + experts, [&](int64_t a, int64_t b) { return p[a] > p[b]; });
      float kept = 0;
      for (int64_t k = 0; k < top_k; ++k) kept += p[idx[k]];
      float* o = out + h * head_dim;
      std::fill(o, o + head_dim, 0.0f);
      const int64_t kv = h / group;
      for (int64_t k = 0; k < top_k; ++k) {
        const int64_t e = idx[k];
        const float* q = q0;
        if (e != 0) {
          std::copy(qh, qh + head_dim, qe);
          Rope(qe, 1, head_dim, cos[e], sin[e]);
          q = qe;
        }
        AttendOneHead(q, keys[e], values, kv, att, part, head_dim, length);
        const float weight = p[e] / kept;
        for (int64_t i = 0; i < head_dim; ++i) o[i] += weight * part[i];
      }
    }
  });
}

__attribute__((target_clones("avx512f", "avx2", "default")))
void SiluMul(const float* gate_up, float* out, int64_t rows, int64_t hidden) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* g = gate_up + r * 2 * hidden;
    const float* u = g + hidden;
    float* o = out + r * hidden;
#pragma omp simd
    for (int64_t i = 0; i < hidden; ++i) o[i] = g[i] / (1.0f + FastExp(-g[i])) * u[i];
  }
}

}  // namespace stave::kernels
