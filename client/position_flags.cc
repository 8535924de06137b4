#include "client/position_flags.h"

namespace stave::cli {

void PositionFlags::Register(CLI::App* cmd) {
  cmd->add_option("--mode", mode, "position mode: vanilla or buckets")->capture_default_str();
  cmd->add_option("--bases", bases, "buckets: RoPE bases, comma-separated (e.g. 10000,17500,18000,19000,20000,25000)");
  cmd->add_option("--fusion", fusion, "buckets: fuse branch logits (reference) or probabilities")
      ->check(CLI::IsMember({"logits", "probs"}))
      ->capture_default_str();
}

absl::StatusOr<PositionConfig> PositionFlags::ToConfig() const {
  PositionConfig config;
  auto m = ParsePositionMode(mode);
  if (!m.ok()) return m.status();
  config.mode = *m;
  auto f = ParseFusion(fusion);
  if (!f.ok()) return f.status();
  config.fusion = *f;
  if (config.mode == PositionMode::kBuckets) {
    auto b = ParseBaseList(bases, "--bases");
    if (!b.ok()) return b.status();
    config.bases = *b;
  } else if (!bases.empty()) {
    return absl::InvalidArgumentError("--bases applies to --mode buckets only");
  }
  auto status = ValidatePositionConfig(config);
  if (!status.ok()) return status;
  return config;
}

}  // namespace stave::cli
