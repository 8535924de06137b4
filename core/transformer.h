// The Llama forward pass: RMSNorm, RoPE (rotate-half), grouped-query causal attention over a KV
// cache, SwiGLU MLP, tied or separate classifier. fp32 throughout, device-agnostic (tensors stay
// on the device the weights are on); weights fp32 or packed (F16, BF16, Q8_0, Q4_0: weight.h).
#pragma once

#include <vector>

#include <ATen/core/Tensor.h>

#include "core/checkpoint.h"
#include "core/kv_cache.h"
#include "core/kv_pool.h"
#include "core/moice_router.h"
#include "core/rope.h"
#include "core/weight.h"

namespace stave {

// Working layout: q/k/v and gate/up projections fused, so a decode step runs one matrix-vector
// product for each instead of three and two.
// Projections keep the checkpoint's storage type (fp32 or packed, weight.h); norms are fp32.
struct LayerWeights {
  at::Tensor attn_norm;  // [dim]
  Weight wqkv;           // [(heads + 2 kv_heads) * head_dim, dim]
  Weight wo;             // [dim, heads * head_dim]
  at::Tensor ffn_norm;   // [dim]
  Weight w13;            // [2 hidden, dim]: gate rows, then up rows
  Weight w2;             // [dim, hidden]
};

// One sequence's part of a batched serving step: `tokens` fed at positions kv->length .. (a
// decode token, or a chunk of its prompt), with its own position method. Sequences in every mode
// share one step: the projections and MLP run once over all rows, attention per row.
struct BatchEntry {
  SequenceKv* kv = nullptr;  // tables already reserved for kv->length + tokens.size() positions
  std::vector<int64_t> tokens;
  // [context, head_dim] (the model's own base) or [rows, context, head_dim]: one table per
  // bucket branch, or per expert base (MoICE).
  const RopeTable* rope = nullptr;
  const MoiceRouters* moice = nullptr;  // MoICE: kv has one key table per expert, one value table
  int branches = 1;                     // buckets: rows per token, each with its own tables
  bool all_logits = false;              // scoring: logits of every fed position
};

class Transformer {
 public:
  // `ckpt` must have passed ValidateCheckpoint.
  explicit Transformer(const Checkpoint& ckpt);

  const ModelConfig& config() const { return config_; }

  // Runs `tokens` [B, T] (int64) at positions cache.length .. cache.length + T - 1 and appends
  // their keys/values to `cache` (whose batch must be B). rope tables: [>= end, head_dim]
  // (shared) or [B, >= end, head_dim] (one table per branch). Returns logits [B, V] of the last position, or
  // [B, T, V] when all_positions.
  //
  // With `moice` (batch 1), attention mixes the experts' bases: `rope` then stacks the expert
  // bases' tables [N, >= end, head_dim] and the cache holds N rotated key copies (one value copy).
  // router_probs (training): receives each layer's router probabilities [1, T, heads, N].
  //
  // This is the reference path (whole-sequence tensors, autograd-capable: router training and
  // scoring use it); serving runs ForwardBatch.
  at::Tensor Forward(const at::Tensor& tokens, KvCache& cache, const RopeTable& rope,
                     bool all_positions = false, const MoiceRouters* moice = nullptr,
                     std::vector<at::Tensor>* router_probs = nullptr) const;

  // The serving path: one forward for every entry of an engine step, keys and values in the
  // paged pool. Returns per entry the logits [branches, V] of its last token ([branches, T, V]
  // with all_logits) and advances each kv->length. On CPU, decode attention, RoPE and the pool
  // writes are hand-written kernels (decode_kernels.h); elsewhere plain LibTorch ops.
  std::vector<at::Tensor> ForwardBatch(std::vector<BatchEntry>& batch, KvPool& pool) const;

 private:
  struct BatchLayout;
  // Writes the keys/values of one entry's rows into the pool (rotating q and k in place, or for
  // MoICE one rotated key copy per expert) and computes its attention into `att`.
  void BatchAttention(const BatchEntry& e, int64_t row0, int layer, at::Tensor& qkv, KvPool& pool,
                      at::Tensor& att, BatchLayout& decode) const;

  // MoICE attention for one sequence: per token and head, a router picks bases; the head's
  // output is the weighted sum of causal attention computed with q and k rotated by each base.
  at::Tensor MoiceAttention(const LayerWeights& w, const at::Tensor& h, int layer, KvCache& cache,
                            const RopeTable& experts, const MoiceRouters& moice,
                            std::vector<at::Tensor>* router_probs) const;

  // Causal attention of rotated queries q [B, T, heads, head_dim] at positions start.. over
  // keys/values [B kv_heads, end, head_dim]; returns [B T, heads * head_dim].
  at::Tensor CausalAttention(const at::Tensor& q, const at::Tensor& keys, const at::Tensor& values,
                             int64_t start) const;

  // h: normalised input [B T, dim]; returns the heads' outputs [B T, heads * head_dim] (before
  // o_proj, which Forward fuses with the residual add).
  at::Tensor Attention(const LayerWeights& w, const at::Tensor& h, int64_t batch, int layer,
                       KvCache& cache, const at::Tensor& cos, const at::Tensor& sin_signed) const;

  ModelConfig config_;
  Weight embed_;           // [V, dim]
  at::Tensor final_norm_;  // [dim]
  Weight classifier_;      // [V, dim], the embedding itself when tied
  std::vector<LayerWeights> layers_;
};

}  // namespace stave
