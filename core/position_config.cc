#include "core/position_config.h"

#include <cmath>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace stave {

absl::string_view PositionModeName(PositionMode mode) {
  switch (mode) {
    case PositionMode::kVanilla: return "vanilla";
    case PositionMode::kBuckets: return "buckets";
    case PositionMode::kMoice: return "moice";
  }
  return "?";
}

absl::StatusOr<PositionMode> ParsePositionMode(absl::string_view name) {
  for (auto m : {PositionMode::kVanilla, PositionMode::kBuckets, PositionMode::kMoice})
    if (name == PositionModeName(m)) return m;
  return absl::InvalidArgumentError(
      absl::StrCat("mode: unknown position mode '", name, "' (known: vanilla, buckets, moice)"));
}

absl::string_view FusionName(Fusion fusion) { return fusion == Fusion::kLogits ? "logits" : "probs"; }

absl::StatusOr<Fusion> ParseFusion(absl::string_view name) {
  if (name == "logits") return Fusion::kLogits;
  if (name == "probs") return Fusion::kProbs;
  return absl::InvalidArgumentError(absl::StrCat("fusion: unknown fusion '", name, "' (known: logits, probs)"));
}

PositionConfig WithPositionDefaults(PositionConfig config) {
  if (config.top_k == 0) config.top_k = static_cast<int>(config.expert_bases.size());
  return config;
}

namespace {
absl::Status ValidateBases(const std::vector<double>& bases, absl::string_view field) {
  if (bases.empty()) return absl::InvalidArgumentError(absl::StrCat(field, ": at least one base is needed"));
  if (bases.size() > static_cast<size_t>(kMaxBuckets))
    return absl::InvalidArgumentError(absl::StrCat(field, ": ", bases.size(), " bases exceed the limit of ", kMaxBuckets));
  for (double b : bases)
    if (!std::isfinite(b) || !(b > 1.0))
      return absl::InvalidArgumentError(absl::StrCat(field, ": every base must be a finite number > 1, got ", b));
  return absl::OkStatus();
}
}  // namespace

absl::Status ValidatePositionConfig(const PositionConfig& c) {
  switch (c.mode) {
    case PositionMode::kVanilla: return absl::OkStatus();
    case PositionMode::kBuckets: return ValidateBases(c.bases, "bases");
    case PositionMode::kMoice: {
      auto status = ValidateBases(c.expert_bases, "expert_bases");
      if (!status.ok()) return status;
      if (c.top_k < 1 || c.top_k > static_cast<int>(c.expert_bases.size()))
        return absl::InvalidArgumentError(absl::StrCat("top_k: must be in 1..", c.expert_bases.size(),
                                                       " (the number of expert bases), got ", c.top_k));
      return absl::OkStatus();
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<double>> ParseBaseList(absl::string_view text, absl::string_view field) {
  std::vector<double> bases;
  for (absl::string_view item : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    double b = 0;
    if (!absl::SimpleAtod(absl::StripAsciiWhitespace(item), &b))
      return absl::InvalidArgumentError(absl::StrCat(field, ": '", item, "' is not a number"));
    bases.push_back(b);
  }
  return bases;
}

}  // namespace stave
