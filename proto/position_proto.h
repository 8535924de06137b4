// Conversions between the wire PositionConfig (stave.v1) and core's stave::PositionConfig, shared
// by staved and the stave client so both read the enums and defaults the same way.
#pragma once

#include "absl/status/statusor.h"
#include "core/position_config.h"
#include "stave/v1/stave.pb.h"

namespace stave {

// Everything but the router, which answers give by name (the server's RouterDirectory).
stave::v1::PositionConfig ToProto(const PositionConfig& config);

// POSITION_MODE_UNSPECIFIED reads as vanilla; FUSION_UNSPECIFIED as logits; top_k 0 is filled in by
// core's WithPositionDefaults (all expert bases). Checks only the enums and refuses router_path
// (ValidatePositionConfig checks the rest). The `router` name is left to the caller: only the
// server can resolve it to a file.
absl::StatusOr<PositionConfig> FromProto(const stave::v1::PositionConfig& config);

stave::v1::PositionMode ToProto(PositionMode mode);
stave::v1::Fusion ToProto(Fusion fusion);
// Unknown enum numbers (a newer client) are INVALID_ARGUMENT naming the field.
absl::StatusOr<PositionMode> FromProto(stave::v1::PositionMode mode);
absl::StatusOr<Fusion> FromProto(stave::v1::Fusion fusion);

}  // namespace stave
