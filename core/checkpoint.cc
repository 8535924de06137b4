#include "core/checkpoint.h"

#include <torch/torch.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace stave {

std::string LayerTensorName(int layer, const std::string& suffix) {
  return absl::StrCat("model.layers.", layer, ".", suffix);
}

namespace {

std::vector<std::pair<std::string, std::vector<int64_t>>> ExpectedShapes(const ModelConfig& c) {
  const int64_t hd = c.head_dim(), q = c.n_heads * hd, kv = c.n_kv_heads * hd;
  std::vector<std::pair<std::string, std::vector<int64_t>>> out = {
      {"model.embed_tokens.weight", {c.vocab_size, c.dim}}, {"model.norm.weight", {c.dim}}};
  if (!c.tied_embeddings) out.push_back({"lm_head.weight", {c.vocab_size, c.dim}});
  for (int l = 0; l < c.n_layers; ++l) {
    out.push_back({LayerTensorName(l, "input_layernorm.weight"), {c.dim}});
    out.push_back({LayerTensorName(l, "self_attn.q_proj.weight"), {q, c.dim}});
    out.push_back({LayerTensorName(l, "self_attn.k_proj.weight"), {kv, c.dim}});
    out.push_back({LayerTensorName(l, "self_attn.v_proj.weight"), {kv, c.dim}});
    out.push_back({LayerTensorName(l, "self_attn.o_proj.weight"), {c.dim, q}});
    out.push_back({LayerTensorName(l, "post_attention_layernorm.weight"), {c.dim}});
    out.push_back({LayerTensorName(l, "mlp.gate_proj.weight"), {c.hidden_dim, c.dim}});
    out.push_back({LayerTensorName(l, "mlp.up_proj.weight"), {c.hidden_dim, c.dim}});
    out.push_back({LayerTensorName(l, "mlp.down_proj.weight"), {c.dim, c.hidden_dim}});
  }
  return out;
}

}  // namespace

Weight CheckpointWeight(const Checkpoint& ckpt, const std::string& name) {
  const at::Tensor& t = ckpt.tensors.at(name);
  auto packed = ckpt.packed.find(name);
  if (packed == ckpt.packed.end()) return Weight::Dense(t.contiguous());
  return Weight{t, packed->second.type, packed->second.cols};
}

absl::StatusOr<Checkpoint> PackWeights(const Checkpoint& ckpt, quant::WeightType type) {
  Checkpoint out;
  out.config = ckpt.config;
  out.origin = ckpt.origin;
  out.source = ckpt.source;
  for (const auto& [name, tensor] : ckpt.tensors) {
    if (tensor.dim() != 2) {
      out.tensors[name] = tensor;
      continue;
    }
    at::Tensor w = Dequantize(CheckpointWeight(ckpt, name)).contiguous();
    if (type == quant::WeightType::kF32) {
      out.tensors[name] = w;
      continue;
    }
    const int64_t rows = w.size(0), cols = w.size(1);
    if (cols % quant::BlockColumns(type) != 0)
      return absl::InvalidArgumentError(absl::StrCat("cannot store ", name, " as ", quant::WeightTypeName(type),
                                                     ": its rows have ", cols, " values, not a multiple of ",
                                                     quant::BlockColumns(type), " (use f16 or bf16)"));
    auto bytes = torch::empty({rows, static_cast<int64_t>(quant::RowBytes(type, cols))}, torch::kUInt8);
    quant::QuantizeRows(type, w.data_ptr<float>(), bytes.data_ptr<uint8_t>(), rows, cols);
    out.tensors[name] = bytes;
    out.packed[name] = Checkpoint::Packed{type, cols};
  }
  return out;
}

absl::Status ValidateCheckpoint(const Checkpoint& ckpt) {
  for (const auto& [name, shape] : ExpectedShapes(ckpt.config)) {
    auto it = ckpt.tensors.find(name);
    if (it == ckpt.tensors.end())
      return absl::NotFoundError(absl::StrCat(ckpt.source, ": tensor '", name, "' is missing"));
    std::vector<int64_t> logical = it->second.sizes().vec();
    if (auto packed = ckpt.packed.find(name); packed != ckpt.packed.end()) {
      // Packed: [rows, bytes per row] must be whole rows of `cols` values in its type.
      if (logical.size() != 2 || packed->second.cols % quant::BlockColumns(packed->second.type) != 0 ||
          logical[1] != static_cast<int64_t>(quant::RowBytes(packed->second.type, packed->second.cols)))
        return absl::InvalidArgumentError(absl::StrCat(ckpt.source, ": tensor '", name, "' (",
                                                       quant::WeightTypeName(packed->second.type),
                                                       ") is not whole rows of its type"));
      logical[1] = packed->second.cols;
    }
    if (logical != shape) {
      auto origin = ckpt.origin.find(name);
      return absl::InvalidArgumentError(absl::StrCat(
          origin == ckpt.origin.end() ? ckpt.source : origin->second, ": tensor '", name,
          "' has shape [", absl::StrJoin(logical, ","), "], the config implies [",
          absl::StrJoin(shape, ","), "]"));
    }
  }
  return absl::OkStatus();
}

Checkpoint RandomCheckpoint(const ModelConfig& config, uint64_t seed) {
  torch::manual_seed(seed);
  Checkpoint ckpt;
  ckpt.config = config;
  ckpt.source = "random";
  for (const auto& [name, shape] : ExpectedShapes(config)) {
    bool is_norm = shape.size() == 1;
    ckpt.tensors[name] = is_norm ? torch::ones(shape) : torch::randn(shape) * 0.02;
    ckpt.origin[name] = "random";
  }
  return ckpt;
}

absl::StatusOr<ModelConfig> ParseShapeSpec(const std::string& spec) {
  ModelConfig c;
  c.tied_embeddings = false;
  for (absl::string_view item : absl::StrSplit(spec, ',', absl::SkipEmpty())) {
    std::pair<std::string, std::string> kv = absl::StrSplit(item, absl::MaxSplits('=', 1));
    double value = 0;
    if (!absl::SimpleAtod(kv.second, &value))
      return absl::InvalidArgumentError(absl::StrCat("shape spec: '", item, "' is not key=number"));
    const std::string& k = kv.first;
    int iv = static_cast<int>(value);
    if (k == "dim") c.dim = iv;
    else if (k == "layers") c.n_layers = iv;
    else if (k == "heads") c.n_heads = iv;
    else if (k == "kv_heads") c.n_kv_heads = iv;
    else if (k == "hidden") c.hidden_dim = iv;
    else if (k == "vocab") c.vocab_size = iv;
    else if (k == "ctx") c.max_seq_len = iv;
    else if (k == "theta") c.rope_theta = value;
    else if (k == "tied") c.tied_embeddings = iv != 0;
    else
      return absl::InvalidArgumentError(absl::StrCat(
          "shape spec: unknown key '", k,
          "' (known: dim, layers, heads, kv_heads, hidden, vocab, ctx, theta, tied)"));
  }
  if (c.n_kv_heads == 0) c.n_kv_heads = c.n_heads;
  auto status = ValidateConfig(c, "shape spec");
  if (!status.ok()) return status;
  return c;
}

}  // namespace stave
