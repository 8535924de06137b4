#include "core/llama2c_checkpoint.h"

#include <torch/torch.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "core/mapped_file.h"

namespace stave {

at::Tensor InterleavedToHalves(const at::Tensor& w, int n_heads, int head_dim) {
  return w.view({n_heads, head_dim / 2, 2, w.size(1)}).transpose(1, 2).reshape(w.sizes());
}

absl::StatusOr<Checkpoint> LoadLlama2cCheckpoint(const std::string& path) {
  auto file_or = MappedFile::Open(path);
  if (!file_or.ok()) return file_or.status();
  auto file = *std::move(file_or);
  int32_t h[7];
  if (file->size() < sizeof(h))
    return absl::DataLossError(absl::StrCat(path, ": too short for a llama2.c header (",
                                            file->size(), " bytes)"));
  std::memcpy(h, file->data(), sizeof(h));
  Checkpoint ckpt;
  ckpt.source = path;
  ModelConfig& c = ckpt.config;
  c.format = CheckpointFormat::kLlama2c;
  c.dim = h[0];
  c.hidden_dim = h[1];
  c.n_layers = h[2];
  c.n_heads = h[3];
  c.n_kv_heads = h[4];
  c.tied_embeddings = h[5] > 0;
  c.vocab_size = h[5] > 0 ? h[5] : -h[5];
  c.max_seq_len = h[6];
  c.rope_theta = 10000.0;
  c.norm_eps = 1e-5;
  c.bos_id = 1;
  c.eos_id = 2;
  // Sanity bounds before any size arithmetic, so a mangled header cannot overflow it.
  for (int v : h)
    if (v == 0 || v > (1 << 24) || v < -(1 << 24))
      return absl::DataLossError(absl::StrCat(path, ": implausible llama2.c header value ", v,
                                              " (not a llama2.c checkpoint?)"));
  auto status = ValidateConfig(c, path);
  if (!status.ok()) return status;

  const int64_t hd = c.head_dim(), L = c.n_layers, dim = c.dim, hidden = c.hidden_dim;
  const int64_t q_dim = c.n_heads * hd, kv_dim = c.n_kv_heads * hd;
  struct Block {
    const char* name;
    std::vector<int64_t> shape;
  };
  std::vector<Block> blocks = {
      {"token_embedding_table", {c.vocab_size, dim}},
      {"rms_att_weight", {L, dim}},
      {"wq", {L, q_dim, dim}},
      {"wk", {L, kv_dim, dim}},
      {"wv", {L, kv_dim, dim}},
      {"wo", {L, dim, q_dim}},
      {"rms_ffn_weight", {L, dim}},
      {"w1", {L, hidden, dim}},
      {"w2", {L, dim, hidden}},
      {"w3", {L, hidden, dim}},
      {"rms_final_weight", {dim}},
      {"freq_cis_real", {c.max_seq_len, hd / 2}},  // unused: RoPE tables are computed from the base
      {"freq_cis_imag", {c.max_seq_len, hd / 2}},
  };
  if (!c.tied_embeddings) blocks.push_back({"wcls", {c.vocab_size, dim}});

  std::map<std::string, at::Tensor> raw;
  size_t offset = sizeof(h);
  for (const auto& b : blocks) {
    int64_t n = 1;
    for (auto d : b.shape) n *= d;
    size_t bytes = static_cast<size_t>(n) * sizeof(float);
    if (offset + bytes > file->size())
      return absl::DataLossError(absl::StrCat(path, ": truncated in tensor '", b.name, "': needs ",
                                              offset + bytes, " bytes, the file has ",
                                              file->size()));
    // The mapping is only guaranteed 4-byte aligned at these offsets, which fp32 needs; clone()
    // makes an owned copy so the file can be unmapped after loading.
    raw[b.name] = torch::from_blob(const_cast<unsigned char*>(file->data() + offset), b.shape,
                                   torch::kFloat)
                      .clone();
    offset += bytes;
  }
  if (offset != file->size())
    return absl::DataLossError(absl::StrCat(path, ": ", file->size() - offset,
                                            " unexpected trailing bytes after the last tensor "
                                            "(header and file disagree)"));

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
