// Writes the RoPE waveform of a base set (one curve per base, their upper envelope, the shortest
// stave marked) as CSV, or as PNG/SVG drawn with PLplot (Debian's libplplot + its cairo driver).
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"

namespace stave {

// The arguments' checks alone (head dim, distance, bases, the output's format), so a caller can
// check them before its own (an unwritable output) and before any work.
absl::Status CheckWaveformArgs(const std::string& path, int head_dim, const std::vector<double>& bases,
                               int max_distance);

absl::Status WriteWaveform(const std::string& path, int head_dim, const std::vector<double>& bases,
                           int max_distance);

}  // namespace stave
