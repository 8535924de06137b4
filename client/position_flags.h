// The position-mode flags shared by generate and bench: --mode, --bases, --fusion (buckets),
// --expert-bases, --moice-top-k, --router (moice). MoICE's K is --moice-top-k because --top-k
// is already sampling's.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

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

  // Whether any of the flags was on the command line (after parsing).
  bool AnyGiven() const;
  // For a request to a server: nullopt when no flag was given, so the server's own configuration
  // applies (the defaults above would otherwise silently force vanilla); else ToConfig().
  absl::StatusOr<std::optional<PositionConfig>> Override() const;

 private:
  std::vector<const CLI::Option*> options_;
};

}  // namespace stave::cli
