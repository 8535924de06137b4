// The RoPE attention waveform of docs/methods.md section 1: with all-ones query and key, the score
// at relative distance m under base b is f_b(m) = (2 / sqrt(d)) * sum_{j<d/2} cos(m * b^(-2j/d)).
// Its crests and troughs, and the shortest stave of a base set (the lowest point of the upper
// envelope max_b f_b(m) over a window of distances).
#pragma once

#include <vector>

namespace stave {

double WaveformValue(double base, int head_dim, double distance);

// f_b(m) for m = m_lo .. m_hi (inclusive).
std::vector<double> WaveformCurve(double base, int head_dim, int m_lo, int m_hi);

struct ExtremaOptions {
  // A local maximum is a crest when within this fraction of the curve's range (over the window)
  // of the highest local maximum; troughs mirror this with the lowest local minimum.
  double value_tolerance = 0.05;
  int min_separation = 50;  // crests (troughs) kept at least this many positions apart
  int max_count = 6;        // at most this many, highest (lowest) first
};

struct Extrema {
  std::vector<int> crests;   // distances m, in descending order of f
  std::vector<int> troughs;  // distances m, in ascending order of f
};

// Extrema of curve[i] = f(m_lo + i); positions reported as distances.
Extrema FindExtrema(const std::vector<double>& curve, int m_lo, const ExtremaOptions& options = {});

struct Stave {
  double value = 0;  // min over the window of max_b f_b(m)
  int distance = 0;  // where that minimum is
};

Stave ShortestStave(const std::vector<double>& bases, int head_dim, int m_lo, int m_hi);

}  // namespace stave
