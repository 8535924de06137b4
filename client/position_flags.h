// The position-mode flags shared by generate and bench: --mode, --bases, --fusion.
#pragma once

#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "absl/status/statusor.h"
#include "core/position_config.h"

namespace stave::cli {

struct PositionFlags {
  std::string mode = "vanilla";
  std::string bases;  // "10000,18000,..."
  std::string fusion = "logits";

  void Register(CLI::App* cmd);
  absl::StatusOr<PositionConfig> ToConfig() const;
};

}  // namespace stave::cli
