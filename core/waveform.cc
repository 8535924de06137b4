#include "core/waveform.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace stave {

double WaveformValue(double base, int head_dim, double distance) {
  double sum = 0;
  for (int j = 0; j < head_dim / 2; ++j)
    sum += std::cos(distance * std::pow(base, -2.0 * j / head_dim));
  return 2.0 / std::sqrt(static_cast<double>(head_dim)) * sum;
}

std::vector<double> WaveformCurve(double base, int head_dim, int m_lo, int m_hi) {
  std::vector<double> curve;
  curve.reserve(std::max(0, m_hi - m_lo + 1));
  for (int m = m_lo; m <= m_hi; ++m) curve.push_back(WaveformValue(base, head_dim, m));
  return curve;
}

namespace {

// Positions of local extrema of `sign * curve` (sign = +1 maxima, -1 minima), best first, kept
// when within the tolerance of the best and far enough from those already kept.
std::vector<int> SelectExtrema(const std::vector<double>& curve, int m_lo, double sign,
                               const ExtremaOptions& o) {
  if (curve.size() < 3) return {};
  const auto [lo, hi] = std::minmax_element(curve.begin(), curve.end());
  const double tolerance = o.value_tolerance * (*hi - *lo);
  std::vector<std::pair<double, int>> candidates;  // (sign * value, index)
  for (size_t i = 1; i + 1 < curve.size(); ++i) {
    const double v = sign * curve[i];
    if (v > sign * curve[i - 1] && v >= sign * curve[i + 1]) candidates.push_back({v, static_cast<int>(i)});
  }
  std::sort(candidates.begin(), candidates.end(),
            [](const auto& a, const auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); });
  std::vector<int> kept;
  for (const auto& [v, i] : candidates) {
    if (static_cast<int>(kept.size()) >= o.max_count || v < candidates.front().first - tolerance) break;
    bool far = std::all_of(kept.begin(), kept.end(),
                           [&](int k) { return std::abs(k - (m_lo + i)) >= o.min_separation; });
    if (far) kept.push_back(m_lo + i);
  }
  return kept;
}

}  // namespace

Extrema FindExtrema(const std::vector<double>& curve, int m_lo, const ExtremaOptions& options) {
  return {SelectExtrema(curve, m_lo, +1.0, options), SelectExtrema(curve, m_lo, -1.0, options)};
}

Stave ShortestStave(const std::vector<double>& bases, int head_dim, int m_lo, int m_hi) {
  std::vector<double> envelope(std::max(0, m_hi - m_lo + 1), -std::numeric_limits<double>::infinity());
  for (double b : bases) {
    auto curve = WaveformCurve(b, head_dim, m_lo, m_hi);
    for (size_t i = 0; i < curve.size(); ++i) envelope[i] = std::max(envelope[i], curve[i]);
  }
  Stave s{std::numeric_limits<double>::infinity(), m_lo};
  for (size_t i = 0; i < envelope.size(); ++i)
    if (envelope[i] < s.value) s = {envelope[i], m_lo + static_cast<int>(i)};
  return s;
}

}  // namespace stave
