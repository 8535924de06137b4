// Shape and conventions of a Llama-family model. Plain data, no LibTorch, so that every layer
// (client, server, tests) can include it cheaply.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"

namespace stave {

enum class CheckpointFormat { kLlama2c, kHuggingFace };

struct ModelConfig {
  int dim = 0;          // residual stream width
  int hidden_dim = 0;   // SwiGLU inner width
  int n_layers = 0;
  int n_heads = 0;
  int n_kv_heads = 0;   // < n_heads means grouped-query attention
  int vocab_size = 0;
  int max_seq_len = 0;  // context length
  double rope_theta = 10000.0;
  double rope_scaling = 1.0;  // linear position interpolation: positions are divided by this
  // Per-frequency divisors of RoPE's inverse frequencies, [head_dim / 2] (empty = none): Llama
  // 3.1's rope_scaling type "llama3" (computed from config.json at load) or a GGUF file's
  // rope_freqs tensor. Position methods that run other bases divide their frequencies by the
  // same divisors.
  std::vector<float> rope_freq_divisors;
  double norm_eps = 1e-5;
  bool tied_embeddings = true;
  int bos_id = 1;
  int eos_id = 2;
  CheckpointFormat format = CheckpointFormat::kHuggingFace;

  int head_dim() const { return dim / n_heads; }
  // The token that ends a generation: llama2.c's reference runner stops on BOS, HF models on EOS.
  int stop_id() const { return format == CheckpointFormat::kLlama2c ? bos_id : eos_id; }
  std::string ToString() const;
};

// Checks the relations between the shape fields (positive, divisible, even head dim). Here, not
// with the checkpoint loaders, so that header parsers without LibTorch (and their fuzz targets)
// validate exactly as the loaders do.
absl::Status ValidateConfig(const ModelConfig& config, const std::string& source);

}  // namespace stave
