// stave loadtest's latency summaries: percentiles as numpy.percentile's default (linear
// interpolation between the closest ranks), mean and max, and the degenerate inputs.
#include "client/latency_stats.h"

#include <gtest/gtest.h>

namespace stave::cli {
namespace {

TEST(LatencyStats, PercentilesInterpolateBetweenClosestRanks) {
  // numpy.percentile([15, 20, 35, 40, 50], [50, 90, 99]) == [35, 46, 49.6]
  LatencySummary s = Summarize({50, 15, 40, 20, 35});  // order does not matter
  EXPECT_EQ(s.count, 5u);
  EXPECT_DOUBLE_EQ(s.p50, 35);
  EXPECT_DOUBLE_EQ(s.p90, 46);
  EXPECT_DOUBLE_EQ(s.p99, 49.6);
  EXPECT_DOUBLE_EQ(s.mean, 32);
  EXPECT_DOUBLE_EQ(s.max, 50);
}

TEST(LatencyStats, EvenCountMedianIsTheMidpoint) {
  // numpy.percentile(range(1, 11), [50, 90, 99]) == [5.5, 9.1, 9.91]
  LatencySummary s = Summarize({1, 2, 3, 4, 5, 6, 7, 8, 9, 10});
  EXPECT_DOUBLE_EQ(s.p50, 5.5);
  EXPECT_DOUBLE_EQ(s.p90, 9.1);
  EXPECT_DOUBLE_EQ(s.p99, 9.91);
  EXPECT_DOUBLE_EQ(s.mean, 5.5);
  EXPECT_DOUBLE_EQ(s.max, 10);
}

TEST(LatencyStats, PercentileEndsAreMinAndMax) {
  const std::vector<double> sorted = {1, 2, 3, 4};
  EXPECT_DOUBLE_EQ(Percentile(sorted, 0), 1);
  EXPECT_DOUBLE_EQ(Percentile(sorted, 25), 1.75);
  EXPECT_DOUBLE_EQ(Percentile(sorted, 100), 4);
}

TEST(LatencyStats, EmptyInputIsAllZero) {
  LatencySummary s = Summarize({});
  EXPECT_EQ(s.count, 0u);
  EXPECT_EQ(s.p50, 0);
  EXPECT_EQ(s.p99, 0);
  EXPECT_EQ(s.mean, 0);
  EXPECT_EQ(s.max, 0);
  EXPECT_EQ(Percentile({}, 50), 0);
}

TEST(LatencyStats, SingleValueIsEveryStatistic) {
  LatencySummary s = Summarize({7.25});
  EXPECT_EQ(s.count, 1u);
  EXPECT_DOUBLE_EQ(s.p50, 7.25);
  EXPECT_DOUBLE_EQ(s.p90, 7.25);
  EXPECT_DOUBLE_EQ(s.p99, 7.25);
  EXPECT_DOUBLE_EQ(s.mean, 7.25);
  EXPECT_DOUBLE_EQ(s.max, 7.25);
}

}  // namespace
}  // namespace stave::cli
