// A Hugging Face config.json's text -> ModelConfig, without LibTorch (LoadHfConfig reads the file
// and adds what needs rope.h; the fuzz target feeds it bytes).
#pragma once

#include <array>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/model_config.h"

namespace stave {

struct HfConfig {
  ModelConfig config;  // validated (ValidateConfig)
  // rope_scaling type "llama3": factor, low_freq_factor, high_freq_factor,
  // original_max_position_embeddings; the caller turns them into frequency divisors.
  std::optional<std::array<double, 4>> llama3;
};

// `file` names the source in errors.
absl::StatusOr<HfConfig> ParseHfConfig(absl::string_view json_text, const std::string& file);

}  // namespace stave
