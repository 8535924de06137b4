// GGUF models of the `llama` architecture as a Checkpoint: hyperparameters from the llama.*
// metadata, tensors renamed to Hugging Face names, q/k rows permuted from GGUF's interleaved RoPE
// layout to rotate-half (as for llama2.c). Matrices stay in their storage type (F32, F16, BF16,
// Q8_0, Q4_0) and point into the file's mapping where no reordering is needed; norms become fp32.
#pragma once

#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "core/checkpoint.h"
#include "core/tokenizer.h"

namespace stave {

namespace gguf {
class File;
}

absl::StatusOr<Checkpoint> LoadGgufCheckpoint(const std::string& path);
// The same from an opened file (the tokenizer is read from the same file by the caller).
absl::StatusOr<Checkpoint> CheckpointFromGguf(const gguf::File& file);

// Writes `ckpt` as a GGUF `llama` model that llama.cpp reads: matrices in `type` (Q8_0/Q4_0 need
// rows that are whole blocks of 32), norms F32, q/k rows back in the interleaved RoPE layout, and
// the tokenizer's vocabulary when it is SentencePiece-style (else the file has none and needs
// --tokenizer). `progress` is called after each tensor with (done, total).
absl::Status SaveGgufCheckpoint(const Checkpoint& ckpt, quant::WeightType type, const Tokenizer* tokenizer,
                                const std::string& path,
                                const std::function<void(int, int)>& progress = nullptr);

}  // namespace stave
