// A model as read from disk: its config and its tensors, named as in Hugging Face Llama checkpoints
// and in the rotate-half RoPE layout (llama2.c and GGUF checkpoints are converted on load), on CPU.
// Every loader produces this; the transformer fuses it into its own working layout.
#pragma once

#include <map>
#include <string>

#include <ATen/core/Tensor.h>

#include "absl/status/statusor.h"
#include "core/model_config.h"
#include "core/weight.h"

namespace stave {

struct Checkpoint {
  ModelConfig config;
  // fp32 tensors, except those named in `packed`: GGUF matrices kept in their storage type, whose
  // tensor holds the raw rows (uint8 [rows, quant::RowBytes(type, cols)]).
  std::map<std::string, at::Tensor> tensors;
  struct Packed {
    quant::WeightType type;
    int64_t cols;
  };
  std::map<std::string, Packed> packed;
  std::map<std::string, std::string> origin;  // tensor name -> file it came from (for errors)
  std::string source;                          // the path the user gave
};

// Hugging Face tensor names.
std::string LayerTensorName(int layer, const std::string& suffix);  // "model.layers.<i>.<suffix>"

// A matrix of the checkpoint as the forward pass holds it (packed or fp32).
Weight CheckpointWeight(const Checkpoint& ckpt, const std::string& name);

// The checkpoint with every matrix stored as `type` (quantized in memory; norms stay fp32).
// Matrices whose rows are not whole blocks of the type are refused, naming the tensor.
absl::StatusOr<Checkpoint> PackWeights(const Checkpoint& ckpt, quant::WeightType type);

// Every tensor the config calls for is present with the expected shape; errors name file + tensor.
absl::Status ValidateCheckpoint(const Checkpoint& ckpt);

// A random-weight model (Normal(0, 0.02), unit norms) of the given shape, for benchmarks and tests.
Checkpoint RandomCheckpoint(const ModelConfig& config, uint64_t seed);

// "dim=768,layers=12,heads=12,kv_heads=12,hidden=2048,vocab=32000,ctx=1024[,theta=10000]".
absl::StatusOr<ModelConfig> ParseShapeSpec(const std::string& spec);

}  // namespace stave
