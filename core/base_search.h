// Greedy search for complementary RoPE bases (docs/methods.md section 3): starting from the model's
// base, repeatedly add the candidate whose crests best cover the chosen bases' troughs and whose
// troughs are best covered by their crests. Deterministic.
#pragma once

#include <vector>

#include "absl/status/statusor.h"
#include "core/waveform.h"

namespace stave {

// The search computes one waveform per candidate base: this bounds its work (and time).
inline constexpr int kMaxBaseCandidates = 1000;

struct BaseSearchOptions {
  int head_dim = 0;
  int context = 0;           // the model's context length; sets the default window
  int count = 0;             // bases wanted, the start base included
  double start_base = 10000;
  // 0 = derived: window [context * 1000 / 4096, context - 6] (the reference's 1000..4090 at
  // 4096), candidates start_base .. 3 * start_base step start_base / 20 (its 10000..30000
  // step 500).
  int m_lo = 0, m_hi = 0;
  double min_base = 0, max_base = 0, step = 0;
  int cover_tolerance = 3;  // a crest covers a trough closer than this many positions
  ExtremaOptions extrema;
};

struct BaseSearchResult {
  std::vector<double> bases;  // start base first, then in the order chosen
  int m_lo = 0, m_hi = 0;     // the window used
  Stave stave;                // shortest stave of the set
  Stave start_stave;          // shortest stave of the start base alone
};

// Fills in the derived defaults and checks the options; the error names the field.
absl::StatusOr<BaseSearchOptions> ResolveBaseSearchOptions(BaseSearchOptions options);

absl::StatusOr<BaseSearchResult> SearchBases(const BaseSearchOptions& options);

// Pairs (crest, trough) closer than `tolerance` positions.
int Cover(const std::vector<int>& crests, const std::vector<int>& troughs, int tolerance);

}  // namespace stave
