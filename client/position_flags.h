// The position-mode flags shared by generate and bench: --mode, --bases, --fusion (buckets),
// --expert-bases, --moice-top-k, --router (moice). MoICE's K is --moice-top-k because --top-k
// is already sampling's.
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
  std::string expert_bases;  // "10000,17500,..."
  int moice_top_k = 0;       // 0 = all experts
  std::string router;

  void Register(CLI::App* cmd);
  absl::StatusOr<PositionConfig> ToConfig() const;
};

}  // namespace stave::cli
