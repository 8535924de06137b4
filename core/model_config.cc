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

}  // namespace stave
