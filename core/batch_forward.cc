// Transformer::ForwardBatch: the serving forward pass. One engine step runs every running
// sequence together: the rows of all of them (a decode token per sequence and bucket branch, or a
// chunk of a prompt) go through each projection and MLP as one matrix product, so the weights are
// read once per step instead of once per sequence; attention runs per row over that row's blocks
// of the paged KV pool, with its own positions and RoPE base.
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/decode_kernels.h"
#include "core/linear.h"
#include "core/moice_mixing.h"
#include "core/small_batch_matmul.h"
#include "core/transformer.h"

namespace stave {

// Prompt chunks up to this many tokens attend through the paged row kernel on CPU; longer ones
// gather their cache once and use batched matmuls.
constexpr int64_t kPagedChunkMaxTokens = 32;

// The decode rows of one layer, attended to together in one parallel kernel call.
struct Transformer::BatchLayout {
  std::vector<kernels::DecodeRow> rows;
  int64_t max_length = 0;
};

namespace {

// Hand-written kernels apply to contiguous fp32 CPU tensors; anything else (a CUDA build of
// LibTorch) takes the plain LibTorch ops beside them.
bool OnCpuKernels(const at::Tensor& t) { return t.is_cpu() && t.scalar_type() == at::kFloat && t.is_contiguous(); }

// Pool rows of positions [from, to) of one table, every KV head: ordered (position, head) to
// scatter a [T, kv_heads, head_dim] block, (head, position) to gather [kv_heads, T, head_dim].
at::Tensor Rows(const KvPool& pool, const std::vector<int>& table, int64_t from, int64_t to, bool head_major,
                const at::Device& device) {
  std::vector<int64_t> rows;
  rows.reserve(static_cast<size_t>((to - from) * pool.kv_heads()));
  if (head_major) {
    for (int64_t h = 0; h < pool.kv_heads(); ++h)
      for (int64_t p = from; p < to; ++p) rows.push_back(pool.Row(table, p, h));
  } else {
    for (int64_t p = from; p < to; ++p)
      for (int64_t h = 0; h < pool.kv_heads(); ++h) rows.push_back(pool.Row(table, p, h));
  }
  return torch::tensor(rows, torch::kLong).to(device);
}

// Writes `src` [T, kv_heads, head_dim] at positions [from, from + T) of a table.
void Scatter(KvPool& pool, int layer, const std::vector<int>& table, int64_t from, const at::Tensor& src) {
  at::Tensor& store = pool.layer(layer);
  store.index_copy_(0, Rows(pool, table, from, from + src.size(0), false, store.device()),
                    src.reshape({-1, pool.head_dim()}));
}

// Positions 0..end of one table as [kv_heads, end, head_dim] (a copy, for batched matmuls).
at::Tensor Gather(KvPool& pool, int layer, const std::vector<int>& table, int64_t end) {
  at::Tensor& store = pool.layer(layer);
  return store.index_select(0, Rows(pool, table, 0, end, true, store.device()))
      .view({pool.kv_heads(), end, pool.head_dim()});
}

kernels::PagedRows Paged(KvPool& pool, int layer, const std::vector<int>& table) {
  return {pool.layer(layer).data_ptr<float>(), table.data(), pool.block_size(), pool.kv_heads(), pool.head_dim()};
}

// CPU: copies one position's `kv_heads` head vectors (contiguous in `src`) into a table.
void Store(KvPool& pool, float* store_base, const std::vector<int>& table, int64_t position, const float* src) {
  const int64_t hd = pool.head_dim();
  for (int64_t h = 0; h < pool.kv_heads(); ++h)
    std::memcpy(store_base + pool.Row(table, position, h) * hd, src + h * hd, hd * sizeof(float));
}

}  // namespace

void Transformer::BatchAttention(const BatchEntry& e, int64_t row0, int l, at::Tensor& qkv, KvPool& pool,
                                 at::Tensor& att, BatchLayout& decode) const {
  const int64_t T = static_cast<int64_t>(e.tokens.size()), hd = config_.head_dim();
  const int64_t nh = config_.n_heads, nkv = config_.n_kv_heads, qkv_row = (nh + 2 * nkv) * hd;
  const int64_t start = e.kv->length, end = start + T;
  const RopeTable& rope = *e.rope;
  const bool shared_rope = rope.cos.dim() == 2;
  const int64_t rope_len = rope.cos.size(-2);
  at::Tensor& store = pool.layer(l);  // [rows, head_dim]
  const bool cpu = OnCpuKernels(qkv) && OnCpuKernels(store);
  float* qkv_base = cpu ? qkv.data_ptr<float>() : nullptr;
  float* store_base = cpu ? store.data_ptr<float>() : nullptr;
  // [rows, T, 1, head_dim] rows of a table ([1, ...] when shared): broadcast over the heads.
  auto table_rows = [&](const at::Tensor& t) {
    return (t.dim() == 2 ? t.unsqueeze(0) : t).narrow(1, start, T).unsqueeze(2);
  };

  if (e.moice == nullptr) {
    const int64_t B = e.branches;
    // Each branch rotates q and k with its own table and stores k and v in its own tables.
    if (cpu) {
      for (int64_t b = 0; b < B; ++b)
        for (int64_t t = 0; t < T; ++t) {
          float* row = qkv_base + (row0 + b * T + t) * qkv_row;
          const int64_t pos = start + t, table_row = ((shared_rope ? 0 : b) * rope_len + pos) * hd;
          kernels::Rope(row, nh + nkv, hd, rope.cos.data_ptr<float>() + table_row,
                        rope.sin.data_ptr<float>() + table_row);
          Store(pool, store_base, e.kv->k[b], pos, row + nh * hd);
          Store(pool, store_base, e.kv->v[b], pos, row + (nh + nkv) * hd);
        }
    } else {
      auto rows = qkv.narrow(0, row0, B * T).view({B, T, nh + 2 * nkv, hd});
      rows.narrow(2, 0, nh + nkv)
          .copy_(ApplyRope(rows.narrow(2, 0, nh + nkv), table_rows(rope.cos), table_rows(rope.sin_signed)));
      for (int64_t b = 0; b < B; ++b) {
        Scatter(pool, l, e.kv->k[b], start, rows[b].narrow(1, nh, nkv));
        Scatter(pool, l, e.kv->v[b], start, rows[b].narrow(1, nh + nkv, nkv));
      }
    }
    // Decode rows, and the rows of a short prompt chunk (each with its own causal length), go to
    // the paged kernel with every other row of the step: no copy of the cache. A chunk next to
    // decoding streams is short by design (the token budget), and gathering a long context for
    // it on every step cost O(context) copies per chunk.
    if (cpu && T <= kPagedChunkMaxTokens) {
      for (int64_t b = 0; b < B; ++b)
        for (int64_t t = 0; t < T; ++t)
          decode.rows.push_back({qkv_base + (row0 + b * T + t) * qkv_row, Paged(pool, l, e.kv->k[b]),
                                 Paged(pool, l, e.kv->v[b]), start + t + 1,
                                 att.data_ptr<float>() + (row0 + b * T + t) * nh * hd});
      decode.max_length = std::max(decode.max_length, end);
      return;
    }
    // Long prompt chunks (and every step off the CPU): each branch's cache gathered, batched
    // matmuls (BLAS beats the row kernel when many queries share the keys).
    std::vector<at::Tensor> keys, values;
    for (int64_t b = 0; b < B; ++b) {
      keys.push_back(Gather(pool, l, e.kv->k[b], end));
      values.push_back(Gather(pool, l, e.kv->v[b], end));
    }
    auto q = qkv.narrow(0, row0, B * T).view({B, T, nh + 2 * nkv, hd}).narrow(2, 0, nh);
    att.narrow(0, row0, B * T)
        .copy_(CausalAttention(q, torch::stack(keys).view({B * nkv, end, hd}),
                               torch::stack(values).view({B * nkv, end, hd}), start));
    return;
  }

  // MoICE: one value copy, and the keys rotated once per expert base into that expert's table
  // (selected now or not: later tokens may pick any base).
  const MoiceRouters& moice = *e.moice;
  const int64_t n = moice.experts();
  if (cpu) {
    std::vector<float> rotated_key(static_cast<size_t>(nkv * hd));
    for (int64_t t = 0; t < T; ++t) {
      const float* row = qkv_base + (row0 + t) * qkv_row;
      const int64_t pos = start + t;
      Store(pool, store_base, e.kv->v[0], pos, row + (nh + nkv) * hd);
      float* rotated = rotated_key.data();
      for (int64_t i = 0; i < n; ++i) {
        std::memcpy(rotated, row + nh * hd, nkv * hd * sizeof(float));
        const int64_t table_row = (i * rope_len + pos) * hd;
        kernels::Rope(rotated, nkv, hd, rope.cos.data_ptr<float>() + table_row, rope.sin.data_ptr<float>() + table_row);
        Store(pool, store_base, e.kv->k[i], pos, rotated);
      }
    }
  } else {
    auto rows = qkv.narrow(0, row0, T).view({T, nh + 2 * nkv, hd});
    Scatter(pool, l, e.kv->v[0], start, rows.narrow(1, nh + nkv, nkv));
    for (int64_t i = 0; i < n; ++i) {
      auto rotated = ApplyRope(rows.narrow(1, nh, nkv), rope.cos[i].narrow(0, start, T).unsqueeze(1),
                               rope.sin_signed[i].narrow(0, start, T).unsqueeze(1));
      Scatter(pool, l, e.kv->k[i], start, rotated);
    }
  }
  const RouterWeights& router = moice.layers[l];
  if (T == 1 && cpu) {
    std::vector<kernels::PagedRows> keys;
    std::vector<const float*> cos_rows, sin_rows;
    for (int64_t i = 0; i < n; ++i) {
      keys.push_back(Paged(pool, l, e.kv->k[i]));
      cos_rows.push_back(rope.cos.data_ptr<float>() + (i * rope_len + start) * hd);
      sin_rows.push_back(rope.sin.data_ptr<float>() + (i * rope_len + start) * hd);
    }
    auto scratch = torch::empty({nh, end + 3 * hd + 2 * n});
    kernels::MoiceAttention(qkv_base + row0 * qkv_row, keys.data(), Paged(pool, l, e.kv->v[0]),
                            att.data_ptr<float>() + row0 * nh * hd, scratch.data_ptr<float>(), cos_rows.data(),
                            sin_rows.data(), router.w1.data_ptr<float>(), router.w2.data_ptr<float>(),
                            router.w3.data_ptr<float>(), n, moice.top_k, nh, nkv, hd, end);
    return;
  }
  // Prompt chunks (and other devices): the LibTorch mixing shared with the reference forward,
  // over keys gathered from the pool.
  auto q = qkv.narrow(0, row0, T).narrow(1, 0, nh * hd).view({1, T, nh, hd});
  auto values = Gather(pool, l, e.kv->v[0], end);
  auto out = MixMoiceExperts(
      q, rope, start, router, moice.top_k, [&](int64_t i) { return Gather(pool, l, e.kv->k[i], end); },
      [&](const at::Tensor& q_i, const at::Tensor& keys) { return CausalAttention(q_i, keys, values, start); });
  att.narrow(0, row0, T).copy_(out);
}

std::vector<at::Tensor> Transformer::ForwardBatch(std::vector<BatchEntry>& batch, KvPool& pool) const {
  const int64_t dim = config_.dim, hd = config_.head_dim(), nh = config_.n_heads;
  const int64_t nkv = config_.n_kv_heads, hidden = config_.hidden_dim;
  const float eps = static_cast<float>(config_.norm_eps);
  // Rows: entry by entry, branch-major (row0 + branch * T + t).
  std::vector<int64_t> ids, row0s;
  for (size_t i = 0; i < batch.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      TORCH_CHECK(batch[i].kv != batch[j].kv, "ForwardBatch: a sequence appears twice in one batch");
  for (const BatchEntry& e : batch) {
    TORCH_CHECK(!e.tokens.empty() && e.kv != nullptr && e.rope != nullptr, "ForwardBatch: incomplete entry");
    TORCH_CHECK(e.kv->length + static_cast<int64_t>(e.tokens.size()) <= e.rope->cos.size(-2),
                "ForwardBatch: positions beyond the RoPE table");
    // Every table must hold the positions written this step (a scheduler bug otherwise, which
    // must not become a write outside the sequence's blocks).
    const int64_t end = e.kv->length + static_cast<int64_t>(e.tokens.size());
    for (const auto* tables : {&e.kv->k, &e.kv->v})
      for (const auto& table : *tables)
        TORCH_CHECK(static_cast<int64_t>(table.size()) * pool.block_size() >= end,
                    "ForwardBatch: a cache table is too short for its positions");
    TORCH_CHECK(static_cast<int>(e.kv->k.size()) == (e.moice != nullptr ? e.moice->experts() : e.branches) &&
                    static_cast<int>(e.kv->v.size()) == (e.moice != nullptr ? 1 : e.branches),
                "ForwardBatch: cache tables do not match the position method");
    row0s.push_back(static_cast<int64_t>(ids.size()));
    for (int b = 0; b < e.branches; ++b) ids.insert(ids.end(), e.tokens.begin(), e.tokens.end());
  }
  const int64_t R = static_cast<int64_t>(ids.size());
  // Small models are bound by per-op overhead: every LibTorch op below is one a step needs.
  auto on_device = [&](const std::vector<int64_t>& v) {
    auto t = torch::tensor(v, torch::kLong);
    return embed_.data.is_cpu() ? t : t.to(embed_.data.device());
  };
  auto x = EmbeddingRows(embed_, on_device(ids));  // [R, dim]
  const bool cpu = OnCpuKernels(x);
  // The hand-written norm and gating win where a LibTorch op's dispatch outweighs its work
  // (decode-sized steps); beyond that LibTorch's vectorised exp is faster (measured: the scalar
  // SiLU cost a 128-token prefill 8 %).
  const bool small = cpu && R <= kernels::kSmallBatchMaxRows;
  auto h = torch::empty({R, dim}, x.options());
  auto att = torch::empty({R, nh * hd}, x.options());
  auto act = torch::empty({R, hidden}, x.options());
  auto norm = [&](const at::Tensor& weight) {
    if (small) kernels::RmsNorm(x.data_ptr<float>(), weight.data_ptr<float>(), h.data_ptr<float>(), R, dim, eps);
    else h = RmsNorm(x, weight, config_.norm_eps);
  };
  BatchLayout decode;  // the layers' decode rows and attention scratch, reused layer to layer
  at::Tensor scratch;
  for (int l = 0; l < config_.n_layers; ++l) {
    const LayerWeights& w = layers_[l];
    norm(w.attn_norm);
    auto qkv = Linear(h, w.wqkv).contiguous();  // [R, (heads + 2 kv_heads) head_dim]
    decode.rows.clear();
    for (size_t i = 0; i < batch.size(); ++i) BatchAttention(batch[i], row0s[i], l, qkv, pool, att, decode);
    if (!decode.rows.empty()) {
      const int64_t scratch_size = static_cast<int64_t>(decode.rows.size()) * nh * decode.max_length;
      if (!scratch.defined() || scratch.numel() < scratch_size) scratch = torch::empty({scratch_size});
      kernels::PagedAttention(decode.rows.data(), static_cast<int64_t>(decode.rows.size()), scratch.data_ptr<float>(),
                              decode.max_length, nh, nkv, hd);
    }
    AddLinear_(x, att, w.wo);
    norm(w.ffn_norm);
    auto gate_up = Linear(h, w.w13);
    if (small) {
      kernels::SiluMul(gate_up.data_ptr<float>(), act.data_ptr<float>(), R, hidden);
    } else {
      act = at::silu(gate_up.narrow(1, 0, hidden)).mul_(gate_up.narrow(1, hidden, hidden));
    }
    AddLinear_(x, act, w.w2);
  }
  // Logits only where they are used: each entry's last token per branch, or every row (scoring).
  std::vector<int64_t> picked;
  for (size_t i = 0; i < batch.size(); ++i) {
    const int64_t T = static_cast<int64_t>(batch[i].tokens.size());
    for (int64_t b = 0; b < batch[i].branches; ++b)
      for (int64_t t = batch[i].all_logits ? 0 : T - 1; t < T; ++t) picked.push_back(row0s[i] + b * T + t);
    batch[i].kv->length += static_cast<int>(T);
  }
  const bool every_row = static_cast<int64_t>(picked.size()) == R;  // decode steps: rows in order
  const int64_t P = static_cast<int64_t>(picked.size());
  auto last = every_row ? x : x.index_select(0, on_device(picked));
  if (small && P <= kernels::kSmallBatchMaxRows) {
    auto normed = every_row ? h : torch::empty({P, dim}, x.options());
    kernels::RmsNorm(last.data_ptr<float>(), final_norm_.data_ptr<float>(), normed.data_ptr<float>(), P, dim, eps);
    last = normed;
  } else {
    last = RmsNorm(last, final_norm_, config_.norm_eps);
  }
  auto logits = Linear(last, classifier_);  // [picked, V]
  std::vector<at::Tensor> out;
  int64_t offset = 0;
  for (const BatchEntry& e : batch) {
    const int64_t T = static_cast<int64_t>(e.tokens.size()), per_branch = e.all_logits ? T : 1;
    auto mine = logits.narrow(0, offset, e.branches * per_branch);
    out.push_back(e.all_logits ? mine.view({e.branches, T, -1}) : mine);
    offset += e.branches * per_branch;
  }
  return out;
}

}  // namespace stave
