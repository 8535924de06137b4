#include "core/llama2c_checkpoint.h"

#include <torch/torch.h>

#include "absl/strings/str_cat.h"
#include "core/llama2c_header.h"
#include "core/mapped_file.h"

namespace stave {

at::Tensor InterleavedToHalves(const at::Tensor& w, int n_heads, int head_dim) {
  return w.view({n_heads, head_dim / 2, 2, w.size(1)}).transpose(1, 2).reshape(w.sizes());
}

absl::StatusOr<Checkpoint> LoadLlama2cCheckpoint(const std::string& path) {
  auto file_or = MappedFile::Open(path);
  if (!file_or.ok()) return file_or.status();
  auto file = *std::move(file_or);
  auto layout = ParseLlama2cLayout(file->data(), file->size(), path);
  if (!layout.ok()) return layout.status();
  Checkpoint ckpt;
  ckpt.source = path;
  ckpt.config = layout->config;
  const ModelConfig& c = ckpt.config;
  const int64_t hd = c.head_dim(), L = c.n_layers;
  std::map<std::string, at::Tensor> raw;
  for (const auto& b : layout->blocks)
    // The mapping is only guaranteed 4-byte aligned at these offsets, which fp32 needs; clone()
    // makes an owned copy so the file can be unmapped after loading.
    raw[b.name] = torch::from_blob(const_cast<unsigned char*>(file->data() + b.offset), b.shape,
                                   torch::kFloat)
                      .clone();

  auto put = [&](const std::string& name, at::Tensor t) {
    ckpt.tensors[name] = std::move(t);
    ckpt.origin[name] = path;
  };
  put("model.embed_tokens.weight", raw["token_embedding_table"]);
  put("model.norm.weight", raw["rms_final_weight"]);
  if (!c.tied_embeddings) put("lm_head.weight", raw["wcls"]);
  for (int l = 0; l < L; ++l) {
    put(LayerTensorName(l, "input_layernorm.weight"), raw["rms_att_weight"][l]);
    put(LayerTensorName(l, "self_attn.q_proj.weight"),
        InterleavedToHalves(raw["wq"][l], c.n_heads, hd));
    put(LayerTensorName(l, "self_attn.k_proj.weight"),
        InterleavedToHalves(raw["wk"][l], c.n_kv_heads, hd));
    put(LayerTensorName(l, "self_attn.v_proj.weight"), raw["wv"][l]);
    put(LayerTensorName(l, "self_attn.o_proj.weight"), raw["wo"][l]);
    put(LayerTensorName(l, "post_attention_layernorm.weight"), raw["rms_ffn_weight"][l]);
    put(LayerTensorName(l, "mlp.gate_proj.weight"), raw["w1"][l]);
    put(LayerTensorName(l, "mlp.down_proj.weight"), raw["w2"][l]);
    put(LayerTensorName(l, "mlp.up_proj.weight"), raw["w3"][l]);
  }
  return ckpt;
}

}  // namespace stave
