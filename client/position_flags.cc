#include "client/position_flags.h"

namespace stave::cli {

void PositionFlags::Register(CLI::App* cmd) {
  options_ = {
      cmd->add_option("--mode", mode, "position mode: vanilla, buckets or moice")->capture_default_str(),
      cmd->add_option("--bases", bases, "buckets: RoPE bases, comma-separated (e.g. 10000,17500,18000,19000,20000,25000)"),
      cmd->add_option("--fusion", fusion, "buckets: fuse branch logits (reference) or probabilities")
          ->check(CLI::IsMember({"logits", "probs"}))
          ->capture_default_str(),
      cmd->add_option("--expert-bases", expert_bases, "moice: expert RoPE bases, the model's own first (e.g. 10000,17500,18000,19000,20000,22500,25000)"),
      cmd->add_option("--moice-top-k", moice_top_k, "moice: experts mixed per token and head (default: all)"),
      cmd->add_option("--router", router, "moice: router checkpoint from stave train-router (with --server: a router name the server lists; default: untrained routers)"),
  };
}

bool PositionFlags::AnyGiven() const {
  for (const CLI::Option* option : options_)
    if (option->count() > 0) return true;
  return false;
}

absl::StatusOr<std::optional<PositionConfig>> PositionFlags::Override() const {
  if (!AnyGiven()) return std::nullopt;
  auto config = ToConfig();
  if (!config.ok()) return config.status();
  return *config;
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
  if (config.mode == PositionMode::kMoice) {
    auto b = ParseBaseList(expert_bases, "--expert-bases");
    if (!b.ok()) return b.status();
    config.expert_bases = *b;
    config.top_k = moice_top_k;  // 0: core's default (WithPositionDefaults)
    config.router_path = router;
  } else if (!expert_bases.empty() || !router.empty() || moice_top_k != 0) {
    return absl::InvalidArgumentError("--expert-bases, --moice-top-k and --router apply to --mode moice only");
  }
  config = WithPositionDefaults(std::move(config));
  auto status = ValidatePositionConfig(config);
  if (!status.ok()) return status;
  return config;
}

}  // namespace stave::cli
