#include "core/model_config.h"

#include "absl/strings/str_cat.h"

namespace stave {

std::string ModelConfig::ToString() const {
  return absl::StrCat("dim=", dim, " hidden=", hidden_dim, " layers=", n_layers, " heads=", n_heads,
                      " kv_heads=", n_kv_heads, " vocab=", vocab_size, " ctx=", max_seq_len,
                      " rope_theta=", rope_theta, rope_scaling != 1.0 ? absl::StrCat(" rope_scaling=", rope_scaling) : "",
                      tied_embeddings ? " tied" : "",
                      format == CheckpointFormat::kLlama2c ? " (llama2.c)" : " (hf)");
}

absl::Status ValidateConfig(const ModelConfig& c, const std::string& source) {
  auto bad = [&](const std::string& why) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": invalid model config: ", why));
  };
  if (c.dim <= 0 || c.hidden_dim <= 0 || c.n_layers <= 0 || c.n_heads <= 0 || c.n_kv_heads <= 0 ||
      c.vocab_size <= 0 || c.max_seq_len <= 0)
    return bad(absl::StrCat("every dimension must be positive (dim=", c.dim, " hidden=", c.hidden_dim,
                            " layers=", c.n_layers, " heads=", c.n_heads, " kv_heads=", c.n_kv_heads,
                            " vocab=", c.vocab_size, " ctx=", c.max_seq_len, ")"));
  if (c.dim % c.n_heads != 0) return bad("dim is not a multiple of the head count");
  if (c.n_heads % c.n_kv_heads != 0) return bad("heads is not a multiple of kv_heads");
  if (c.head_dim() % 2 != 0) return bad("the head dimension must be even for RoPE");
  if (!(c.rope_theta > 1.0)) return bad("rope_theta must be > 1");
  if (!(c.rope_scaling > 0.0)) return bad("rope_scaling factor must be > 0");
  return absl::OkStatus();
}

}  // namespace stave
