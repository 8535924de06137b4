// llama2.c `.bin` checkpoints (the legacy "version 0" export of run.c): a header of 7 int32
// (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len; a negative vocab_size
// means a separate classifier follows), then fp32 weights. RoPE base 10000, interleaved pairs:
// wq/wk rows are permuted on load into the rotate-half layout the engine uses.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "core/checkpoint.h"

namespace stave {

absl::StatusOr<Checkpoint> LoadLlama2cCheckpoint(const std::string& path);

// Reorders the rows of a q/k projection from interleaved channel pairs (2i, 2i+1) to halves
// (i, i + d/2), per head: the permutation Hugging Face's conversion script applies.
at::Tensor InterleavedToHalves(const at::Tensor& w, int n_heads, int head_dim);

}  // namespace stave
