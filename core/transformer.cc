#include "core/transformer.h"

#include <torch/torch.h>

#include <cmath>
#include <cstring>

#include "core/linear.h"
#include "core/moice_mixing.h"

namespace stave {

namespace {

// Row-stacks projections into one (q/k/v, gate/up). Packed rows are independent blocks, so
// stacking the byte rows is exact; parts of different storage types (mixed quantizations) are
// stacked in fp32.
Weight Fuse(const std::vector<Weight>& parts) {
  bool same = true;
  for (const Weight& p : parts) same = same && p.type == parts[0].type;
  std::vector<at::Tensor> data;
  for (const Weight& p : parts) data.push_back(same ? p.data : Dequantize(p));
  if (same) return Weight{torch::cat(data), parts[0].type, parts[0].cols};
  return Weight::Dense(torch::cat(data));
}

}  // namespace

Transformer::Transformer(const Checkpoint& ckpt) : config_(ckpt.config) {
  auto norm = [&](const std::string& name) { return ckpt.tensors.at(name).contiguous(); };
  auto weight = [&](const std::string& name) { return CheckpointWeight(ckpt, name); };
  embed_ = weight("model.embed_tokens.weight");
  final_norm_ = norm("model.norm.weight");
  classifier_ = config_.tied_embeddings ? embed_ : weight("lm_head.weight");
  for (int l = 0; l < config_.n_layers; ++l) {
    auto layer = [&](const char* suffix) { return weight(LayerTensorName(l, suffix)); };
    layers_.push_back(LayerWeights{
        norm(LayerTensorName(l, "input_layernorm.weight")),
        Fuse({layer("self_attn.q_proj.weight"), layer("self_attn.k_proj.weight"),
              layer("self_attn.v_proj.weight")}),
        layer("self_attn.o_proj.weight"),
        norm(LayerTensorName(l, "post_attention_layernorm.weight")),
        Fuse({layer("mlp.gate_proj.weight"), layer("mlp.up_proj.weight")}),
        layer("mlp.down_proj.weight"),
    });
  }
}

at::Tensor Transformer::Attention(const LayerWeights& w, const at::Tensor& h, int64_t batch,
                                  int layer, KvCache& cache, const at::Tensor& cos,
                                  const at::Tensor& sin_signed) const {
  const int64_t B = batch, T = h.size(0) / batch, hd = config_.head_dim();
  const int64_t nh = config_.n_heads, nkv = config_.n_kv_heads;
  const int64_t start = cache.length, end = start + T;

  auto qkv = Linear(h, w.wqkv);  // [B T, (nh + 2 nkv) hd]
  // q and k rotated together: one RoPE pass over nh + nkv heads.
  auto qk = ApplyRope(qkv.narrow(1, 0, (nh + nkv) * hd).view({B, T, nh + nkv, hd}), cos, sin_signed);
  auto v = qkv.narrow(1, (nh + nkv) * hd, nkv * hd).view({B, T, nkv, hd});
  cache.k[layer].narrow(2, start, T).copy_(qk.narrow(2, nh, nkv).transpose(1, 2));
  cache.v[layer].narrow(2, start, T).copy_(v.transpose(1, 2));
  // [B nkv, end, hd] views of the cache (its [B, nkv, capacity, hd] layout makes them views).
  auto keys = cache.k[layer].narrow(2, 0, end).view({B * nkv, end, hd});
  auto values = cache.v[layer].narrow(2, 0, end).view({B * nkv, end, hd});

  return CausalAttention(qk.narrow(2, 0, nh), keys, values, start);
}

at::Tensor Transformer::CausalAttention(const at::Tensor& q, const at::Tensor& keys,
                                        const at::Tensor& values, int64_t start) const {
  const int64_t B = q.size(0), T = q.size(1), hd = config_.head_dim();
  const int64_t nh = config_.n_heads, nkv = config_.n_kv_heads, group = nh / nkv;
  const int64_t end = start + T;
  // Queries of one KV group share its keys: lay them out as [B nkv, group T, hd] so one batched
  // matmul per KV head serves the whole group.
  auto qg = T == 1 ? q.reshape({B * nkv, group, hd})
                   : q.reshape({B, T, nkv, group, hd}).permute({0, 2, 3, 1, 4}).reshape({B * nkv, group * T, hd});
  auto scores = at::bmm(qg, keys.transpose(1, 2)).mul_(1.0 / std::sqrt(static_cast<double>(hd)));
  if (T > 1) {
    // Query t (at position start + t) sees keys 0 .. start + t.
    auto key_pos = torch::arange(end, q.options().dtype(torch::kLong));
    auto query_pos = torch::arange(start, end, q.options().dtype(torch::kLong)).repeat({group});
    scores.masked_fill_(key_pos.unsqueeze(0) > query_pos.unsqueeze(1),
                        -std::numeric_limits<float>::infinity());
  }
  auto out = at::bmm(at::softmax(scores, -1), values);  // [B nkv, group T, hd]
  if (T == 1) return out.view({B, nh * hd});
  return out.view({B, nkv, group, T, hd}).permute({0, 3, 1, 2, 4}).reshape({B * T, nh * hd});
}

at::Tensor Transformer::MoiceAttention(const LayerWeights& w, const at::Tensor& h, int layer,
                                       KvCache& cache, const RopeTable& experts,
                                       const MoiceRouters& moice,
                                       std::vector<at::Tensor>* router_probs) const {
  const int64_t T = h.size(0), hd = config_.head_dim();
  const int64_t nh = config_.n_heads, nkv = config_.n_kv_heads, n = moice.experts();
  const int64_t start = cache.length, end = start + T;
  auto qkv = Linear(h, w.wqkv);
  auto q = qkv.narrow(1, 0, nh * hd).view({1, T, nh, hd});
  auto k = qkv.narrow(1, nh * hd, nkv * hd).view({1, T, nkv, hd});
  auto v = qkv.narrow(1, (nh + nkv) * hd, nkv * hd).view({1, T, nkv, hd});
  // While autograd records (router training: whole sequences from position 0), keys and values
  // are used as computed: writing them into the shared cache tensors would bump the version of
  // tensors saved for the backward pass.
  const bool recording = at::GradMode::is_enabled() && h.requires_grad();
  TORCH_CHECK(!recording || start == 0, "MoICE training runs whole sequences from position 0");
  at::Tensor values;
  if (recording) {
    values = v[0].transpose(0, 1).contiguous();  // [nkv, T, hd]
  } else {
    cache.v[layer].narrow(2, start, T).copy_(v.transpose(1, 2));  // one value copy
    values = cache.v[layer].narrow(2, 0, end).view({nkv, end, hd});
  }
  auto rows = [&](const at::Tensor& table, int64_t i) { return table[i].narrow(0, start, T).unsqueeze(1); };
  // Every base's rotated keys are cached, selected now or not: later tokens may pick it.
  std::vector<at::Tensor> recorded_keys;
  for (int64_t i = 0; i < n; ++i) {
    auto rotated =
        ApplyRope(k, rows(experts.cos, i), rows(experts.sin_signed, i))[0].transpose(0, 1);  // [nkv, T, hd]
    if (recording) recorded_keys.push_back(rotated.contiguous());
    else cache.k[layer][i].narrow(1, start, T).copy_(rotated);
  }
  at::Tensor probs;
  auto out = MixMoiceExperts(
      q, experts, start, moice.layers[layer], moice.top_k,
      [&](int64_t i) {
        return recording ? recorded_keys[i] : cache.k[layer][i].narrow(1, 0, end).view({nkv, end, hd});
      },
      [&](const at::Tensor& q_i, const at::Tensor& keys) { return CausalAttention(q_i, keys, values, start); },
      &probs);
  if (router_probs != nullptr) router_probs->push_back(probs);
  return out;
}

at::Tensor Transformer::Forward(const at::Tensor& tokens, KvCache& cache,
                                const RopeTable& rope, bool all_positions,
                                const MoiceRouters* moice,
                                std::vector<at::Tensor>* router_probs) const {
  const int64_t B = tokens.size(0), T = tokens.size(1), start = cache.length;
  TORCH_CHECK(start + T <= cache.capacity, "KV cache capacity exceeded");
  // [R, T, 1, hd] rows of the tables: broadcast over heads (and over the batch when R = 1).
  auto rows = [&](const at::Tensor& table) {
    return (table.dim() == 2 ? table.unsqueeze(0) : table).narrow(1, start, T).unsqueeze(2);
  };
  const auto cos = rows(rope.cos), sin_signed = rows(rope.sin_signed);

  auto x = EmbeddingRows(embed_, tokens.reshape(-1));  // [B T, dim]
  for (int l = 0; l < config_.n_layers; ++l) {
    const LayerWeights& w = layers_[l];
    auto h = RmsNorm(x, w.attn_norm, config_.norm_eps);
    AddLinear_(x, moice != nullptr ? MoiceAttention(w, h, l, cache, rope, *moice, router_probs)
                                   : Attention(w, h, B, l, cache, cos, sin_signed),
               w.wo);
    auto gate_up = Linear(RmsNorm(x, w.ffn_norm, config_.norm_eps), w.w13);
    auto hidden = at::silu(gate_up.narrow(1, 0, config_.hidden_dim))
                      .mul_(gate_up.narrow(1, config_.hidden_dim, config_.hidden_dim));
    AddLinear_(x, hidden, w.w2);
  }
  cache.length = static_cast<int>(start + T);
  if (all_positions)
    return Linear(RmsNorm(x, final_norm_, config_.norm_eps), classifier_).view({B, T, -1});
  auto last = T == 1 ? x : x.view({B, T, config_.dim}).select(1, T - 1);
  return Linear(RmsNorm(last, final_norm_, config_.norm_eps), classifier_);
}

}  // namespace stave
