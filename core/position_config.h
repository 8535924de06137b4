// How attention positions are encoded for a request: the model as trained (vanilla), Attention
// Buckets (N RoPE bases run as parallel branches, outputs fused) or MoICE (per-layer routers
// mixing RoPE bases). Plain data, validated against the model before use.
#pragma once

#include <string>
#include "absl/strings/string_view.h"
#include <vector>

#include "absl/status/statusor.h"
#include "core/model_config.h"

namespace stave {

enum class PositionMode { kVanilla, kBuckets, kMoice };
enum class Fusion { kLogits, kProbs };

inline constexpr int kMaxBuckets = 16;

struct PositionConfig {
  PositionMode mode = PositionMode::kVanilla;
  std::vector<double> bases;  // buckets: one branch per base
  Fusion fusion = Fusion::kLogits;
  std::vector<double> expert_bases;  // moice: the first is the router's reference base
  int top_k = 0;                     // moice: experts mixed per token and head
  std::string router_path;           // moice: router checkpoint; empty = untrained routers
};

absl::string_view PositionModeName(PositionMode mode);
absl::StatusOr<PositionMode> ParsePositionMode(absl::string_view name);
absl::string_view FusionName(Fusion fusion);
absl::StatusOr<Fusion> ParseFusion(absl::string_view name);

// `config` with its defaults filled in: MoICE top_k 0 (unset) selects every expert base. The one
// place this default is decided; the parsers (proto/position_proto.*, client/position_flags.*,
// staved's UpdateConfig and --config file through ApplyPositionUpdate) leave 0 and call this.
PositionConfig WithPositionDefaults(PositionConfig config);

// Every base finite and > 1, bucket count within 1..kMaxBuckets; errors name the field.
absl::Status ValidatePositionConfig(const PositionConfig& config);

// "10000,18000,..." -> bases; the error names `field`.
absl::StatusOr<std::vector<double>> ParseBaseList(absl::string_view text, absl::string_view field);

}  // namespace stave
