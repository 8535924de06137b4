// Hugging Face Llama directories: config.json plus model.safetensors, or shards listed in
// model.safetensors.index.json. F32/F16/BF16 tensors (upcast to fp32), rope_theta, linear
// rope_scaling, tied or separate lm_head, grouped-query attention.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "core/checkpoint.h"

namespace stave {

absl::StatusOr<Checkpoint> LoadHfCheckpoint(const std::string& dir);

// Reads only config.json.
absl::StatusOr<ModelConfig> LoadHfConfig(const std::string& dir);

// Writes config.json + model.safetensors (fp32) into dir (created if needed).
absl::Status SaveHfCheckpoint(const Checkpoint& ckpt, const std::string& dir);

}  // namespace stave
