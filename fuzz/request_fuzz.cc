// A stave.v1.GenerateRequest or ScoreRequest from wire bytes, then the model-free part of request
// validation: the position override through FromProto (enums, router_path refused) and
// ValidatePositionConfig, as PositionFromRequest runs them before ValidateForModel. The first
// byte picks the message. (The size limits and ValidateForModel live in inference_service.cc
// with the model and engine; see fuzz/README.md.)
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/position_config.h"
#include "fuzz/fuzz_check.h"
#include "proto/position_proto.h"
#include "stave/v1/stave.pb.h"

namespace {

bool SameBits(const std::vector<double>& a, const std::vector<double>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0);
}

void CheckPosition(const stave::v1::PositionConfig& position) {
  auto config = stave::FromProto(position);
  if (!config.ok()) return;
  FUZZ_CHECK(config->router_path.empty());
  if (!stave::ValidatePositionConfig(*config).ok()) return;
  // A valid config survives the round trip to the wire and back.
  auto again = stave::FromProto(stave::ToProto(*config));
  FUZZ_CHECK(again.ok());
  // Bit patterns, not ==: fields the mode ignores are not validated and may hold NaN (first
  // found as a FUZZ_CHECK failure of this target: regress-nan-in-unused-field.pb).
  FUZZ_CHECK(again->mode == config->mode && again->top_k == config->top_k);
  FUZZ_CHECK(SameBits(again->bases, config->bases) && SameBits(again->expert_bases, config->expert_bases));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const bool score = data[0] & 1;
  ++data;
  --size;
  if (score) {
    stave::v1::ScoreRequest request;
    if (!request.ParseFromArray(data, static_cast<int>(size))) return 0;
    CheckPosition(request.position());
  } else {
    stave::v1::GenerateRequest request;
    if (!request.ParseFromArray(data, static_cast<int>(size))) return 0;
    CheckPosition(request.position());
  }
  return 0;
}
