// Summaries of latency samples for stave loadtest: percentiles, mean and maximum. Plain maths, no
// gRPC, so it can be unit-tested on its own.
#pragma once

#include <cstddef>
#include <vector>

namespace stave::cli {

// The q-th percentile (q in [0, 100]) of ascending `sorted`, interpolating linearly between the
// closest ranks (numpy's default): rank q/100 * (n - 1). 0 for an empty input.
double Percentile(const std::vector<double>& sorted, double q);

struct LatencySummary {
  size_t count = 0;
  double p50 = 0, p90 = 0, p99 = 0, mean = 0, max = 0;  // all 0 when count is 0
};

LatencySummary Summarize(std::vector<double> values);

}  // namespace stave::cli
