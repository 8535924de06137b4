// Hand-written CPU kernels for the small operations of one decode step (one token per row):
// RMSNorm, RoPE, attention over the paged KV pool, SiLU-gating. Why: in decode these act on a few
// hundred floats, where a LibTorch op costs ~10k instructions of dispatch and allocation (measured
// with callgrind: a 5-op RMSNorm of 64 floats = 45-56k instructions) against a few hundred for the
// loop. The matrix products stay in LibTorch/OpenBLAS. Plain loops over contiguous fp32 buffers,
// written in run.c's order of operations; vectorised by the compiler.
#pragma once

#include <cstdint>

namespace stave::kernels {

// e^x for x in [-87.3, 88] (clamped outside) with a relative error below 1e-6 (tested). Why
// not std::exp: it is a libm call per element that the compiler cannot vectorise without
// -ffast-math, and the attention softmax of small models spent more time in it than in the dot
// products (perf on stories260K, 16 streams: expf 12 % plus its call sites); this one is plain
// arithmetic that vectorises inside `omp simd` loops.
inline float FastExp(float x) {
  x = x < -87.3f ? -87.3f : (x > 88.0f ? 88.0f : x);
  const float n = __builtin_floorf(x * 1.44269504088896341f + 0.5f);  // x = n ln2 + r
  float r = x - n * 0.693145751953125f;                                 // ln2 in two parts:
  r -= n * 1.42860682030941723212e-6f;                                  // exact first product
  // e^r on |r| <= ln2 / 2: Taylor to degree 7 (truncation below 2e-8 relative).
  float p = 1.0f / 5040;
  p = p * r + 1.0f / 720;
  p = p * r + 1.0f / 120;
  p = p * r + 1.0f / 24;
  p = p * r + 1.0f / 6;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;  // 2^n
  float scale;
  __builtin_memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

// out[r] = weight * x[r] / sqrt(mean(x[r]^2) + eps), for rows x [rows, dim].
void RmsNorm(const float* x, const float* weight, float* out, int64_t rows, int64_t dim, float eps);

// Rotates `heads` consecutive head vectors of size head_dim in place (rotate-half layout) with
// the cos/sin row of one position.
void Rope(float* x, int64_t heads, int64_t head_dim, const float* cos, const float* sin);

// One cache table's positions in the KV pool (see kv_pool.h): position p of KV head h lives at
// pool + ((blocks[p / block_size] * kv_heads + h) * block_size + p % block_size) * head_dim, so a
// head's positions are contiguous within a block.
struct PagedRows {
  const float* pool = nullptr;
  const int* blocks = nullptr;
  int64_t block_size = 16;
  int64_t kv_heads = 1;
  int64_t head_dim = 0;

  // Start of block `b`'s positions of KV head `kv_head`.
  const float* Block(int64_t b, int64_t kv_head) const {
    return pool + ((int64_t{blocks[b]} * kv_heads + kv_head) * block_size) * head_dim;
  }
};

// One query row of decode attention: its rotated q (heads * head_dim), its key and value tables,
// the positions it sees (0..length-1) and where its output goes (heads * head_dim).
struct DecodeRow {
  const float* q = nullptr;
  PagedRows keys, values;
  int64_t length = 0;
  float* out = nullptr;
};

// Decode attention for every row and head, in parallel on LibTorch's thread pool (rows of
// different sequences, bucket branches included, in one call). scratch holds rows * heads *
// max_length floats.
void PagedAttention(const DecodeRow* rows, int64_t n_rows, float* scratch, int64_t max_length, int64_t heads,
                    int64_t kv_heads, int64_t head_dim);

// MoICE attention for one token: per head (in parallel), the router (w1, w3 [experts, head_dim],
// w2 [experts, experts]) reads the query rotated with expert 0's base, keeps the top_k experts
// (renormalised softmax weights), and the head's output is the weighted sum of attention with q
// rotated by each kept expert's base over that expert's rotated keys. q_raw is unrotated
// [heads * head_dim]; keys[e] the expert's key table; cos[e]/sin[e] the table rows of this
// position; experts <= 16; scratch holds heads * (length + 3 head_dim + 2 experts) floats.
void MoiceAttention(const float* q_raw, const PagedRows* keys, const PagedRows& values, float* out,
                    float* scratch, const float* const* cos, const float* const* sin, const float* w1,
                    const float* w2, const float* w3, int64_t experts, int64_t top_k, int64_t heads,
                    int64_t kv_heads, int64_t head_dim, int64_t length);

// out[r, i] = silu(gate_up[r, i]) * gate_up[r, hidden + i], for gate_up [rows, 2 hidden].
void SiluMul(const float* gate_up, float* out, int64_t rows, int64_t hidden);

}  // namespace stave::kernels
