// Hand-written CPU kernels for the small operations of one decode step (one token per row):
// RMSNorm, RoPE, attention over the KV cache, SiLU-gating. Why: in decode these act on a few
// hundred floats, where a LibTorch op costs ~10k instructions of dispatch and allocation (measured
// with callgrind: a 5-op RMSNorm of 64 floats = 45-56k instructions) against a few hundred for the
// loop. The matrix products stay in LibTorch/OpenBLAS. Plain loops over contiguous fp32 buffers,
// written in run.c's order of operations; vectorised by the compiler.
#pragma once

#include <cstdint>

namespace stave::kernels {

// out[r] = weight * x[r] / sqrt(mean(x[r]^2) + eps), for rows x [rows, dim].
void RmsNorm(const float* x, const float* weight, float* out, int64_t rows, int64_t dim, float eps);

// Rotates `heads` consecutive head vectors of size head_dim in place (rotate-half layout) with
// the cos/sin row of one position.
void Rope(float* x, int64_t heads, int64_t head_dim, const float* cos, const float* sin);

// Decode attention for rows b = 0..batch-1: q rows (rotated; row b starts at q + b * q_stride,
// heads * head_dim floats), caches
// [batch, kv_heads, capacity, head_dim] holding `length` positions; out [batch, heads * head_dim].
// scratch holds batch * heads * length floats. Heads run in parallel on LibTorch's thread pool.
void Attention(const float* q, int64_t q_stride, const float* k_cache, const float* v_cache, float* out,
               float* scratch, int64_t batch, int64_t heads, int64_t kv_heads, int64_t head_dim,
               int64_t capacity, int64_t length);

// MoICE attention for one token: per head (in parallel), the router (w1, w3 [experts, head_dim],
// w2 [experts, experts]) reads the query rotated with expert 0's base, keeps the top_k experts
// (renormalised softmax weights), and the head's output is the weighted sum of attention with q
// rotated by each kept expert's base over that expert's rotated key cache. q_raw is unrotated
// [heads * head_dim]; k_caches[e] [kv_heads, capacity, head_dim]; cos[e]/sin[e] the table rows
// of this position; experts <= 16; scratch holds heads * (length + 3 head_dim + 2 experts) floats.
void MoiceAttention(const float* q_raw, const float* const* k_caches, const float* v_cache,
                    float* out, float* scratch, const float* const* cos, const float* const* sin,
                    const float* w1, const float* w2, const float* w3, int64_t experts, int64_t top_k,
                    int64_t heads, int64_t kv_heads, int64_t head_dim, int64_t capacity,
                    int64_t length);

// out[r, i] = silu(gate_up[r, i]) * gate_up[r, hidden + i], for gate_up [rows, 2 hidden].
void SiluMul(const float* gate_up, float* out, int64_t rows, int64_t hidden);

}  // namespace stave::kernels
