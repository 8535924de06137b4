// Attention Buckets: identities with vanilla, fusion against an independent recomputation from
// separately run single-base models, branch KV caches kept apart, the KV budget.
#include <torch/torch.h>

#include <cmath>
#include <fstream>

#include "core/bucket_fusion.h"
#include "core/checkpoint.h"
#include "core/generate.h"
#include "core/kv_cache.h"
#include "core/model.h"
#include "core/position_cache.h"
#include "core/rope.h"
#include "core/transformer.h"
#include "nlohmann/json.hpp"
#include "tests/test_support.h"

namespace stave {
namespace {


std::vector<nlohmann::json> Golden() {
  std::vector<nlohmann::json> rows;
  std::ifstream in(testing::SharedPath("golden/stories260K/greedy.jsonl"));
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) rows.push_back(nlohmann::json::parse(line));
  return rows;
}

// Greedy generation with `bases` as buckets must reproduce every golden sequence.
void ExpectGoldenWithBuckets(const std::vector<double>& bases) {
  auto model = testing::LoadStories260K();
  ASSERT_NE(model, nullptr);
  for (const auto& row : Golden()) {
    const auto prompt = row["prompt"].get<std::string>();
    auto golden = row["tokens"].get<std::vector<int>>();
    if (row["stopped_on_bos"].get<bool>()) golden.pop_back();
    const size_t n_prompt = model->tokenizer()->Encode(prompt, true).size();
    GenerationParams params;
    params.sampling.temperature = 0;
    params.max_tokens = row["steps"].get<int>() + 1 - static_cast<int>(n_prompt);
    params.position.mode = PositionMode::kBuckets;
    params.position.bases = bases;
    auto result = Generate(*model, prompt, params);
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(result->token_ids, std::vector<int>(golden.begin() + n_prompt, golden.end()))
        << bases.size() << " buckets, prompt: " << prompt;
  }
}

TEST(Buckets, OneBucketWithTheModelBaseIsVanilla) {
  SKIP_UNLESS_SHARED(testing::kStoriesModel);
  ExpectGoldenWithBuckets({10000});
}

TEST(Buckets, ThreeIdenticalBasesAreVanilla) {
  SKIP_UNLESS_SHARED(testing::kStoriesModel);
  ExpectGoldenWithBuckets({10000, 10000, 10000});
}

// Fusion recomputed from scratch in double precision, from per-branch logits.
std::vector<double> ReferenceFusion(const std::vector<std::vector<float>>& branch, Fusion fusion) {
  const size_t n = branch.size(), v = branch[0].size();
  std::vector<std::vector<double>> values(n, std::vector<double>(v));
  std::vector<double> confidence(n);
  for (size_t j = 0; j < n; ++j) {
    double mx = *std::max_element(branch[j].begin(), branch[j].end()), z = 0;
    for (size_t i = 0; i < v; ++i) z += std::exp(branch[j][i] - mx);
    for (size_t i = 0; i < v; ++i)
      values[j][i] = fusion == Fusion::kLogits ? branch[j][i] : std::exp(branch[j][i] - mx) / z;
    confidence[j] = *std::max_element(values[j].begin(), values[j].end());
  }
  double cmax = *std::max_element(confidence.begin(), confidence.end()), cz = 0;
  for (double c : confidence) cz += std::exp(c - cmax);
  std::vector<double> fused(v, 0.0);
  for (size_t j = 0; j < n; ++j)
    for (size_t i = 0; i < v; ++i) fused[i] += std::exp(confidence[j] - cmax) / cz * values[j][i];
  if (fusion == Fusion::kProbs)
    for (auto& f : fused) f = std::log(f);
  return fused;
}

std::vector<float> Row(const at::Tensor& t) {
  auto c = t.contiguous();
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

class BucketsAgainstSeparateRuns : public ::testing::TestWithParam<Fusion> {};

TEST_P(BucketsAgainstSeparateRuns, FusedLogitsMatchAndCachesStayApart) {
  SKIP_UNLESS_SHARED(testing::kStoriesModel);
  c10::InferenceMode inference_mode;
  auto model = testing::LoadStories260K();
  ASSERT_NE(model, nullptr);
  const Fusion fusion = GetParam();
  const std::vector<double> bases = {10000, 15000, 40000};
  const int n = static_cast<int>(bases.size()), steps = 40;
  const auto& net = model->transformer();
  std::vector<int64_t> prompt = {1, 403, 407, 261, 378, 432, 383};

  // Buckets: one batched forward per step.
  auto tables = StackRopeTables(model->config(), bases);
  auto batched_cache = KvCache::Allocate(model->config(), n, 64);
  // Independent recomputation: one single-base model run per base, with its own cache.
  std::vector<KvCache> single_caches;
  std::vector<RopeTable> single_tables;
  for (double b : bases) {
    single_caches.push_back(KvCache::Allocate(model->config(), 1, 64));
    single_tables.push_back(MakeRopeTable(b, model->config().head_dim(), model->config().max_seq_len));
  }
  std::vector<int64_t> feed = prompt;
  for (int step = 0; step < steps; ++step) {
    auto tokens = torch::tensor(feed).view({1, -1});
    auto batched = net.Forward(tokens.expand({n, -1}), batched_cache, *tables);  // [n, V]
    std::vector<std::vector<float>> separate;
    for (int j = 0; j < n; ++j) {
      separate.push_back(Row(net.Forward(tokens, single_caches[j], single_tables[j])[0]));
      auto diff = (batched[j] - torch::tensor(separate[j])).abs().max().item<float>();
      ASSERT_LT(diff, 1e-4) << "branch " << j << " step " << step;
    }
    const auto expected = ReferenceFusion(separate, fusion);
    const auto fused = Row(FuseBranchLogits(batched, fusion));
    double worst = 0;
    for (size_t i = 0; i < fused.size(); ++i) worst = std::max(worst, std::abs(fused[i] - expected[i]));
    ASSERT_LT(worst, 1e-4) << "step " << step;
    // The fused greedy choice is fed to every branch.
    const int64_t next = std::max_element(expected.begin(), expected.end()) - expected.begin();
    feed = {next};
  }
  // Each branch's cache holds exactly what its own single-base run cached, and they differ.
  for (int l = 0; l < model->config().n_layers; ++l)
    for (int j = 0; j < n; ++j) {
      auto k = batched_cache.k[l][j].narrow(1, 0, batched_cache.length);
      auto v = batched_cache.v[l][j].narrow(1, 0, batched_cache.length);
      EXPECT_LT((k - single_caches[j].k[l][0].narrow(1, 0, batched_cache.length)).abs().max().item<float>(), 1e-4);
      EXPECT_LT((v - single_caches[j].v[l][0].narrow(1, 0, batched_cache.length)).abs().max().item<float>(), 1e-4);
      if (j > 0) EXPECT_FALSE(torch::allclose(k, batched_cache.k[l][0].narrow(1, 0, batched_cache.length)));
    }
}

INSTANTIATE_TEST_SUITE_P(Fusions, BucketsAgainstSeparateRuns,
                         ::testing::Values(Fusion::kLogits, Fusion::kProbs),
                         [](const auto& info) { return std::string(FusionName(info.param)); });

TEST(Buckets, GenerationFollowsTheFusedGreedyChoice) {
  SKIP_UNLESS_SHARED(testing::kStoriesModel);
  auto model = testing::LoadStories260K();
  ASSERT_NE(model, nullptr);
  GenerationParams vanilla;
  vanilla.sampling.temperature = 0;
  vanilla.max_tokens = 60;
  GenerationParams buckets = vanilla;
  buckets.position.mode = PositionMode::kBuckets;
  buckets.position.bases = {10000, 3000, 60000};
  auto a = Generate(*model, "Once upon a time", vanilla);
  auto b = Generate(*model, "Once upon a time", buckets);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(a->token_ids, b->token_ids) << "distinct bases should change this model's output";
}

TEST(Buckets, KvBudgetRefusesWithTheAmountNeeded) {
  auto config = ParseShapeSpec("dim=64,layers=2,heads=4,hidden=64,vocab=50,ctx=4096");
  ASSERT_TRUE(config.ok());
  auto model = Model::FromCheckpoint(RandomCheckpoint(*config, 1), nullptr);
  GenerationParams params;
  params.max_tokens = 4000;
  params.kv_budget_mb = 10;
  params.position.mode = PositionMode::kBuckets;
  params.position.bases = {10000, 20000, 30000, 40000};
  auto seq = Sequence::Create(*model, {1, 2, 3}, params);
  ASSERT_EQ(seq.status().code(), absl::StatusCode::kResourceExhausted);
  // 2 (k, v) x 2 layers x 4 branches x 4003 positions x 64 floats x 4 bytes = 15.6 MiB.
  EXPECT_THAT(std::string(seq.status().message()), ::testing::HasSubstr("need 16 MiB"));
  params.position.bases.resize(2);
  EXPECT_TRUE(Sequence::Create(*model, {1, 2, 3}, params).ok());
}

TEST(Buckets, InvalidBaseSetsAreRejected) {
  PositionConfig c;
  c.mode = PositionMode::kBuckets;
  EXPECT_FALSE(ValidatePositionConfig(c).ok());
  c.bases = {10000, NAN};
  EXPECT_THAT(std::string(ValidatePositionConfig(c).message()), ::testing::HasSubstr("bases"));
  c.bases = {10000, -5};
  EXPECT_FALSE(ValidatePositionConfig(c).ok());
  c.bases.assign(kMaxBuckets + 1, 10000);
  EXPECT_THAT(std::string(ValidatePositionConfig(c).message()), ::testing::HasSubstr("limit of 16"));
  c.bases.assign(kMaxBuckets, 10000);
  EXPECT_TRUE(ValidatePositionConfig(c).ok());
  EXPECT_FALSE(ParseBaseList("10000,abc", "--bases").ok());
  EXPECT_EQ(*ParseBaseList("10000, 2.5e4", "--bases"), (std::vector<double>{10000, 25000}));
}

}  // namespace
}  // namespace stave
