// The waveform, its extrema, the shortest stave and the greedy base search.
#include "core/waveform.h"

#include <cmath>

#include "core/base_search.h"
#include "tests/test_support.h"

namespace stave {
namespace {

TEST(Waveform, ValueAtZeroIsSqrtOfHeadDim) {
  EXPECT_NEAR(WaveformValue(10000, 128, 0), 11.3137, 1e-4);
  EXPECT_NEAR(WaveformValue(500000, 64, 0), 8.0, 1e-12);
}

TEST(Waveform, HandCheckedValues) {
  // d = 2: a single frequency of 1 whatever the base: f(m) = sqrt(2) cos(m).
  EXPECT_NEAR(WaveformValue(10000, 2, M_PI), -std::sqrt(2.0), 1e-12);
  // d = 4, base 100: frequencies 1 and 1/10: f(m) = cos(m) + cos(m / 10).
  EXPECT_NEAR(WaveformValue(100, 4, 10), std::cos(10.0) + std::cos(1.0), 1e-12);
  auto curve = WaveformCurve(100, 4, 5, 7);
  ASSERT_EQ(curve.size(), 3u);
  EXPECT_NEAR(curve[1], std::cos(6.0) + std::cos(0.6), 1e-12);
}

TEST(Extrema, FindsCrestsAndTroughsOfAKnownCurve) {
  // cos(2 pi i / 100) on distances 1000..1499: maxima at 1100..1400, minima at 1050..1450.
  std::vector<double> curve;
  for (int i = 0; i < 500; ++i) curve.push_back(std::cos(2 * M_PI * i / 100.0));
  auto e = FindExtrema(curve, 1000);
  std::sort(e.crests.begin(), e.crests.end());
  std::sort(e.troughs.begin(), e.troughs.end());
  EXPECT_EQ(e.crests, (std::vector<int>{1100, 1200, 1300, 1400}));
  EXPECT_EQ(e.troughs, (std::vector<int>{1050, 1150, 1250, 1350, 1450}));
}

TEST(Extrema, ToleranceSeparationAndCount) {
  // A falling cosine: only crests close to the highest one are crests.
  std::vector<double> curve;
  for (int i = 0; i < 500; ++i) curve.push_back(std::cos(2 * M_PI * i / 100.0) - 0.003 * i);
  auto e = FindExtrema(curve, 0, {.value_tolerance = 0.1, .min_separation = 50, .max_count = 6});
  // Crests sit at 99, 199, ... (the slope pulls them left) with values 0.70, 0.40, 0.10, ...; the
  // range is ~3.5, so a tolerance of 0.35 keeps the first two.
  EXPECT_EQ(e.crests, (std::vector<int>{99, 199}));
  auto few = FindExtrema(curve, 0, {.value_tolerance = 1.0, .min_separation = 150, .max_count = 2});
  EXPECT_EQ(few.crests, (std::vector<int>{99, 299}));
}

TEST(Stave, EnvelopeMinimum) {
  // One base: the stave is the curve's minimum over the window.
  auto curve = WaveformCurve(10000, 128, 1000, 4090);
  auto lowest = std::min_element(curve.begin(), curve.end());
  auto s = ShortestStave({10000}, 128, 1000, 4090);
  EXPECT_DOUBLE_EQ(s.value, *lowest);
  EXPECT_EQ(s.distance, 1000 + (lowest - curve.begin()));
  // Adding a base can only raise the envelope.
  EXPECT_GE(ShortestStave({10000, 18000}, 128, 1000, 4090).value, s.value);
}

TEST(BaseSearch, DefaultsFollowTheReferenceScaledToTheModel) {
  auto o = ResolveBaseSearchOptions({.head_dim = 128, .context = 4096, .count = 6});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->m_lo, 1000);
  EXPECT_EQ(o->m_hi, 4090);
  EXPECT_EQ(o->min_base, 10000);
  EXPECT_EQ(o->max_base, 30000);
  EXPECT_EQ(o->step, 500);
  auto small = ResolveBaseSearchOptions({.head_dim = 8, .context = 512, .count = 3});
  ASSERT_TRUE(small.ok());
  EXPECT_EQ(small->m_lo, 125);
  EXPECT_EQ(small->m_hi, 506);
}

TEST(BaseSearch, DeterministicAndRaisesTheShortestStave) {
  BaseSearchOptions o{.head_dim = 128, .context = 4096, .count = 6};
  auto a = SearchBases(o);
  auto b = SearchBases(o);
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(a->bases, b->bases);
  ASSERT_EQ(a->bases.size(), 6u);
  EXPECT_EQ(a->bases.front(), 10000);
  std::vector<double> sorted = a->bases;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(std::unique(sorted.begin(), sorted.end()), sorted.end()) << "bases must be distinct";
  for (double base : a->bases) EXPECT_TRUE(base >= 10000 && base <= 30000);
  EXPECT_GE(a->stave.value, a->start_stave.value);
  EXPECT_DOUBLE_EQ(a->start_stave.value, ShortestStave({10000}, 128, 1000, 4090).value);
}

TEST(BaseSearch, CoverCountsClosePairs) {
  EXPECT_EQ(Cover({100, 200}, {102, 197, 300}, 3), 1);  // |100-102| = 2 < 3; |200-197| = 3 is not
  EXPECT_EQ(Cover({100}, {100, 101}, 3), 2);
  EXPECT_EQ(Cover({}, {1}, 3), 0);
}

TEST(BaseSearch, BadOptionsNameTheField) {
  EXPECT_THAT(std::string(SearchBases({.head_dim = 7, .context = 4096, .count = 3}).status().message()),
              ::testing::HasSubstr("head_dim"));
  EXPECT_THAT(std::string(SearchBases({.head_dim = 128, .context = 4096, .count = 0}).status().message()),
              ::testing::HasSubstr("count"));
  EXPECT_FALSE(SearchBases({.head_dim = 128, .context = 0, .count = 3}).ok());
  EXPECT_FALSE(SearchBases({.head_dim = 128, .context = 4096, .count = 3, .min_base = 5000, .max_base = 1000}).ok());
}

}  // namespace
}  // namespace stave
