#include "core/llama2c_header.h"

#include <cstring>

#include "absl/strings/str_cat.h"

namespace stave {

absl::StatusOr<Llama2cLayout> ParseLlama2cLayout(const unsigned char* data, size_t size,
                                                 const std::string& path) {
  int32_t h[7];
  if (size < sizeof(h))
    return absl::DataLossError(absl::StrCat(path, ": too short for a llama2.c header (", size, " bytes)"));
  std::memcpy(h, data, sizeof(h));
  Llama2cLayout layout;
  ModelConfig& c = layout.config;
  c.format = CheckpointFormat::kLlama2c;
  c.dim = h[0];
  c.hidden_dim = h[1];
  c.n_layers = h[2];
  c.n_heads = h[3];
  c.n_kv_heads = h[4];
  c.tied_embeddings = h[5] > 0;
  // h[5] is bounded below before any use of the size; INT32_MIN would overflow the negation.
  c.vocab_size = h[5] > 0 ? h[5] : static_cast<int>(-static_cast<int64_t>(h[5]));
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
  layout.blocks = {
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
  if (!c.tied_embeddings) layout.blocks.push_back({"wcls", {c.vocab_size, dim}});

  size_t offset = sizeof(h);
  for (auto& b : layout.blocks) {
    // Three header values of up to 2^24 multiply to 2^72: checked arithmetic, since the bounds
    // above do not keep a [layers, hidden, dim] block inside 64 bits.
    uint64_t bytes = sizeof(float), end = 0;
    bool overflow = false;
    for (auto d : b.shape) overflow |= __builtin_mul_overflow(bytes, static_cast<uint64_t>(d), &bytes);
    overflow |= __builtin_add_overflow(static_cast<uint64_t>(offset), bytes, &end);
    if (overflow)
      return absl::DataLossError(absl::StrCat(path, ": truncated in tensor '", b.name,
                                              "': needs more than 2^64 bytes, the file has ", size));
    if (end > size)
      return absl::DataLossError(absl::StrCat(path, ": truncated in tensor '", b.name, "': needs ",
                                              end, " bytes, the file has ", size));
    b.offset = offset;
    offset = end;
  }
  if (offset != size)
    return absl::DataLossError(absl::StrCat(path, ": ", size - offset,
                                            " unexpected trailing bytes after the last tensor "
                                            "(header and file disagree)"));
  return layout;
}

}  // namespace stave
