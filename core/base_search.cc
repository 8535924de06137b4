#include "core/base_search.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include "absl/strings/str_cat.h"

namespace stave {

int Cover(const std::vector<int>& crests, const std::vector<int>& troughs, int tolerance) {
  int n = 0;
  for (int c : crests)
    for (int t : troughs)
      if (std::abs(c - t) < tolerance) ++n;
  return n;
}

namespace {

// Sum over `from` of the squared distance to the nearest of `to` (tie-break between candidates).
double NearestSquaredDistance(const std::vector<int>& from, const std::vector<int>& to) {
  double total = 0;
  for (int f : from) {
    double best = std::numeric_limits<double>::infinity();
    for (int t : to) best = std::min(best, static_cast<double>(f - t) * (f - t));
    if (!to.empty()) total += best;
  }
  return total;
}

void Append(std::vector<int>& to, const std::vector<int>& from) { to.insert(to.end(), from.begin(), from.end()); }

}  // namespace

absl::StatusOr<BaseSearchOptions> ResolveBaseSearchOptions(BaseSearchOptions o) {
  auto bad = [](const std::string& why) { return absl::InvalidArgumentError(why); };
  if (o.head_dim <= 0 || o.head_dim % 2 != 0) return bad("head_dim must be a positive even number");
  if (o.count < 1 || o.count > 16) return bad(absl::StrCat("count must be in 1..16, got ", o.count));
  if (!(o.start_base > 1) || !std::isfinite(o.start_base)) return bad("the start base must be finite and > 1");
  if (o.m_lo == 0 && o.m_hi == 0) {
    if (o.context <= 16) return bad("context must be > 16 to derive the distance window (or give the window)");
    o.m_lo = static_cast<int>(std::lround(o.context * 1000.0 / 4096.0));
    o.m_hi = o.context - 6;
  }
  if (o.m_lo < 0 || o.m_hi - o.m_lo < 2) return bad(absl::StrCat("the window [", o.m_lo, ", ", o.m_hi, "] is empty"));
  if (o.min_base == 0) o.min_base = o.start_base;
  if (o.max_base == 0) o.max_base = 3 * o.start_base;
  if (o.step == 0) o.step = o.start_base / 20;
  if (!(o.min_base > 1) || !(o.max_base >= o.min_base) || !(o.step > 0) || !std::isfinite(o.max_base))
    return bad("candidate range: need 1 < min <= max and step > 0");
  // Bounded before any work: the search evaluates a waveform per candidate. A step below the
  // precision of the bases (1e16 + 0.5 == 1e16) would never advance.
  if (!(o.min_base + o.step > o.min_base) || !(o.max_base + o.step > o.max_base))
    return bad("candidate range: step is below the precision of the bases");
  if ((o.max_base - o.min_base) / o.step >= kMaxBaseCandidates)
    return bad(absl::StrCat("candidate range: more than ", kMaxBaseCandidates,
                            " candidates ((max - min) / step); use a larger step or a narrower range"));
  return o;
}

absl::StatusOr<BaseSearchResult> SearchBases(const BaseSearchOptions& options) {
  auto resolved = ResolveBaseSearchOptions(options);
  if (!resolved.ok()) return resolved.status();
  const BaseSearchOptions& o = *resolved;
  auto extrema_of = [&](double base) {
    return FindExtrema(WaveformCurve(base, o.head_dim, o.m_lo, o.m_hi), o.m_lo, o.extrema);
  };
  std::map<double, Extrema> candidates;
  // Counted, not accumulated: the loop ends after at most kMaxBaseCandidates iterations.
  const int64_t n = static_cast<int64_t>(std::floor((o.max_base - o.min_base) / o.step + 1e-9)) + 1;
  for (int64_t i = 0; i < n; ++i) {
    const double b = o.min_base + static_cast<double>(i) * o.step;
    candidates.emplace(b, extrema_of(b));
  }

  BaseSearchResult result;
  result.m_lo = o.m_lo;
  result.m_hi = o.m_hi;
  result.bases.push_back(o.start_base);
  Extrema chosen = extrema_of(o.start_base);
  while (static_cast<int>(result.bases.size()) < o.count) {
    double best_base = 0, best_distance = 0;
    int best_score = -1;
    for (const auto& [b, e] : candidates) {
      if (std::find(result.bases.begin(), result.bases.end(), b) != result.bases.end()) continue;
      const int score = Cover(e.crests, chosen.troughs, o.cover_tolerance) +
                        Cover(chosen.crests, e.troughs, o.cover_tolerance);
      const double distance = NearestSquaredDistance(e.crests, chosen.troughs) +
                              NearestSquaredDistance(chosen.crests, e.troughs);
      if (score > best_score || (score == best_score && distance < best_distance)) {
        best_base = b;
        best_score = score;
        best_distance = distance;
      }
    }
    if (best_score < 0)
      return absl::InvalidArgumentError(absl::StrCat("only ", result.bases.size(),
                                                     " distinct bases in the candidate range; widen it"));
    result.bases.push_back(best_base);
    Append(chosen.crests, candidates[best_base].crests);
    Append(chosen.troughs, candidates[best_base].troughs);
  }
  result.stave = ShortestStave(result.bases, o.head_dim, o.m_lo, o.m_hi);
  result.start_stave = ShortestStave({o.start_base}, o.head_dim, o.m_lo, o.m_hi);
  return result;
}

}  // namespace stave
