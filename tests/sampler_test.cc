#include "core/sampler.h"

#include <cmath>
#include <map>

#include "tests/test_support.h"

namespace stave {
namespace {

std::vector<float> LogitsFor(const std::vector<float>& probs) {
  std::vector<float> logits;
  for (float p : probs) logits.push_back(std::log(p));
  return logits;
}

TEST(Sampler, GreedyTakesTheFirstMaximum) {
  Sampler s({.temperature = 0});
  std::vector<float> logits = {0.1f, 3.0f, -1.0f, 3.0f};
  EXPECT_EQ(s.Sample(logits), 1);
}

TEST(Sampler, SameSeedSameTokensDifferentSeedDifferentTokens) {
  std::vector<float> logits(50);
  for (int i = 0; i < 50; ++i) logits[i] = std::sin(i * 1.3f);
  auto draw = [&](uint64_t seed) {
    Sampler s({.temperature = 1.0f, .top_k = 0, .top_p = 0.95f, .seed = seed});
    std::vector<int> out;
    for (int i = 0; i < 200; ++i) out.push_back(s.Sample(logits));
    return out;
  };
  EXPECT_EQ(draw(42), draw(42));
  EXPECT_NE(draw(42), draw(43));
}

TEST(Nucleus, KeepsTheSmallestSetReachingTopP) {
  std::vector<float> probs = {0.05f, 0.5f, 0.1f, 0.2f, 0.15f};
  auto c = NucleusCandidates(probs, 0, 0.8f);  // 0.5 + 0.2 = 0.7 < 0.8 <= 0.85
  ASSERT_EQ(c.size(), 3u);
  EXPECT_EQ(c[0].first, 1);
  EXPECT_EQ(c[1].first, 3);
  EXPECT_EQ(c[2].first, 4);
  EXPECT_NEAR(c[0].second, 0.5 / 0.85, 1e-6);
  EXPECT_EQ(NucleusCandidates(probs, 0, 0.69f).size(), 2u);
  EXPECT_EQ(NucleusCandidates(probs, 0, 0.4f).size(), 1u);
  EXPECT_EQ(NucleusCandidates(probs, 0, 1.0f).size(), 5u);
}

TEST(Nucleus, TopKThenTopPOnTheRenormalisedSet) {
  std::vector<float> probs = {0.05f, 0.5f, 0.1f, 0.2f, 0.15f};
  auto c = NucleusCandidates(probs, 2, 1.0f);
  ASSERT_EQ(c.size(), 2u);
  EXPECT_NEAR(c[0].second, 0.5 / 0.7, 1e-6);
  // Within the top 2 (renormalised 0.714, 0.286), p = 0.7 is reached by the first alone.
  EXPECT_EQ(NucleusCandidates(probs, 2, 0.7f).size(), 1u);
}

TEST(Sampler, DrawFrequenciesFollowTheDistribution) {
  std::vector<float> probs = {0.6f, 0.3f, 0.1f};
  Sampler s({.temperature = 1.0f, .top_k = 0, .top_p = 1.0f, .seed = 3});
  std::map<int, int> counts;
  const int n = 20000;
  for (int i = 0; i < n; ++i) counts[s.Sample(LogitsFor(probs))]++;
  for (int i = 0; i < 3; ++i) EXPECT_NEAR(counts[i] / double(n), probs[i], 0.015) << i;
}

TEST(Sampler, TopKOneIsGreedy) {
  std::vector<float> logits = {0.3f, 0.1f, 2.0f, 1.9f};
  Sampler s({.temperature = 2.0f, .top_k = 1, .top_p = 1.0f, .seed = 9});
  for (int i = 0; i < 100; ++i) EXPECT_EQ(s.Sample(logits), 2);
}

TEST(Sampler, TopPExcludesTheTail) {
  // With p = 0.8 the nucleus is {1, 3, 4}: tokens 0 and 2 are never drawn.
  std::vector<float> probs = {0.05f, 0.5f, 0.1f, 0.2f, 0.15f};
  Sampler s({.temperature = 1.0f, .top_k = 0, .top_p = 0.8f, .seed = 5});
  for (int i = 0; i < 2000; ++i) {
    int t = s.Sample(LogitsFor(probs));
    EXPECT_NE(t, 0);
    EXPECT_NE(t, 2);
  }
}

TEST(Sampler, ValidationNamesTheParameter) {
  EXPECT_THAT(std::string(ValidateSamplingParams({.temperature = -1}).message()), ::testing::HasSubstr("temperature"));
  EXPECT_THAT(std::string(ValidateSamplingParams({.temperature = NAN}).message()), ::testing::HasSubstr("temperature"));
  EXPECT_THAT(std::string(ValidateSamplingParams({.top_p = 0}).message()), ::testing::HasSubstr("top_p"));
  EXPECT_THAT(std::string(ValidateSamplingParams({.top_p = 1.5f}).message()), ::testing::HasSubstr("top_p"));
  EXPECT_TRUE(ValidateSamplingParams({.temperature = 0.7f, .top_k = 40, .top_p = 0.9f}).ok());
}

}  // namespace
}  // namespace stave
