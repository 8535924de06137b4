#include "proto/position_proto.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace stave {

stave::v1::PositionMode ToProto(PositionMode mode) {
  switch (mode) {
    case PositionMode::kVanilla: return stave::v1::POSITION_MODE_VANILLA;
    case PositionMode::kBuckets: return stave::v1::POSITION_MODE_BUCKETS;
    case PositionMode::kMoice: return stave::v1::POSITION_MODE_MOICE;
  }
  return stave::v1::POSITION_MODE_UNSPECIFIED;
}

stave::v1::Fusion ToProto(Fusion fusion) {
  return fusion == Fusion::kProbs ? stave::v1::FUSION_PROBS : stave::v1::FUSION_LOGITS;
}

absl::StatusOr<PositionMode> FromProto(stave::v1::PositionMode mode) {
  switch (mode) {
    case stave::v1::POSITION_MODE_UNSPECIFIED:
    case stave::v1::POSITION_MODE_VANILLA: return PositionMode::kVanilla;
    case stave::v1::POSITION_MODE_BUCKETS: return PositionMode::kBuckets;
    case stave::v1::POSITION_MODE_MOICE: return PositionMode::kMoice;
    default: break;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "mode: unknown position mode ", static_cast<int>(mode), " (known: POSITION_MODE_VANILLA, POSITION_MODE_BUCKETS, POSITION_MODE_MOICE)"));
}

absl::StatusOr<Fusion> FromProto(stave::v1::Fusion fusion) {
  switch (fusion) {
    case stave::v1::FUSION_UNSPECIFIED:
    case stave::v1::FUSION_LOGITS: return Fusion::kLogits;
    case stave::v1::FUSION_PROBS: return Fusion::kProbs;
    default: break;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("fusion: unknown fusion ", static_cast<int>(fusion), " (known: FUSION_LOGITS, FUSION_PROBS)"));
}

stave::v1::PositionConfig ToProto(const PositionConfig& c) {
  stave::v1::PositionConfig p;
  p.set_mode(ToProto(c.mode));
  for (double b : c.bases) p.add_bases(b);
  p.set_fusion(ToProto(c.fusion));
  for (double b : c.expert_bases) p.add_expert_bases(b);
  p.set_top_k(static_cast<uint32_t>(c.top_k));
  // router_path stays empty: answers name routers (`router`), set by whoever knows the names.
  return p;
}

absl::StatusOr<PositionConfig> FromProto(const stave::v1::PositionConfig& p) {
  PositionConfig c;
  auto mode = FromProto(p.mode());
  if (!mode.ok()) return mode.status();
  auto fusion = FromProto(p.fusion());
  if (!fusion.ok()) return fusion.status();
  c.mode = *mode;
  c.fusion = *fusion;
  c.bases.assign(p.bases().begin(), p.bases().end());
  c.expert_bases.assign(p.expert_bases().begin(), p.expert_bases().end());
  // Clamped so that a huge value reads as "too many" in validation, not as a negative int.
  c.top_k = static_cast<int>(std::min<uint32_t>(p.top_k(), 1u << 20));
  if (!p.router_path().empty())
    return absl::InvalidArgumentError(
        "router_path: staved no longer opens files named by clients; name a router with `router` "
        "(GetModelInfo lists them)");
  return WithPositionDefaults(std::move(c));  // top_k 0: core's default
}
}  // namespace stave
