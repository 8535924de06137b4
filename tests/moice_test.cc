// MoICE: identities with vanilla, forced routing, router weights and checkpoints.
#include <torch/torch.h>

#include <fstream>

#include "core/checkpoint.h"
#include "core/rope.h"
#include "core/generate.h"
#include "core/hf_checkpoint.h"
#include "core/model.h"
#include "core/position_cache.h"
#include "core/moice_router.h"
#include "nlohmann/json.hpp"
#include "tests/test_support.h"

namespace stave {
namespace {


GenerationParams Moice(std::vector<double> bases, int top_k, std::string router = "") {
  GenerationParams p;
  p.sampling.temperature = 0;
  p.position.mode = PositionMode::kMoice;
  p.position.expert_bases = std::move(bases);
  p.position.top_k = top_k;
  p.position.router_path = std::move(router);
  return p;
}

TEST(Moice, ExpertsAllAtTheModelBaseAreVanillaWhateverTheRouter) {
  SKIP_UNLESS_SHARED(testing::kStoriesModel);
  auto model = testing::LoadStories260K();
  ASSERT_NE(model, nullptr);
  // Routers far from uniform, so the mixture weights really vary by token and head.
  auto routers = MoiceRouters::Random(model->config(), {10000, 10000, 10000}, 2, 11);
  for (auto& l : routers.layers) {
    l.w1 *= 100;
    l.w2 *= 100;
    l.w3 *= 100;
  }
  testing::TempDir dir;
  ASSERT_TRUE(routers.Save(dir / "r.safetensors", model->config()).ok());
  std::ifstream in(testing::SharedPath("golden/stories260K/greedy.jsonl"));
  for (std::string line; std::getline(in, line);) {
    auto row = nlohmann::json::parse(line);
    const auto prompt = row["prompt"].get<std::string>();
    auto golden = row["tokens"].get<std::vector<int>>();
    if (row["stopped_on_bos"].get<bool>()) golden.pop_back();
    const size_t n_prompt = model->tokenizer()->Encode(prompt, true).size();
    for (const std::string& router : {std::string(), dir / "r.safetensors"}) {
      for (int k : {1, 3}) {
        auto params = Moice({10000, 10000, 10000}, k, router);
        params.max_tokens = row["steps"].get<int>() + 1 - static_cast<int>(n_prompt);
        auto result = Generate(*model, prompt, params);
        ASSERT_TRUE(result.ok()) << result.status();
        EXPECT_EQ(result->token_ids, std::vector<int>(golden.begin() + n_prompt, golden.end()))
            << "k=" << k << " router=" << router << " prompt: " << prompt;
      }
    }
  }
}

// Routers that send every token and head to expert `j`: with W1 = W3, silu(a) * a >= 0, so a W2
// whose row j is +C and the others -C gives r_j > 0 > r_other.
MoiceRouters ForcedRouters(const ModelConfig& config, std::vector<double> bases, int j) {
  auto r = MoiceRouters::Random(config, bases, 1, 3);
  for (auto& l : r.layers) {
    l.w3 = l.w1.clone();
    l.w2 = torch::full_like(l.w2, -10.0);
    l.w2[j].fill_(10.0);
  }
  return r;
}

TEST(Moice, TopOneForcedOntoABaseEqualsVanillaWithThatBase) {
  SKIP_UNLESS_SHARED(testing::kStoriesModel);
  auto model = testing::LoadStories260K();
  ASSERT_NE(model, nullptr);
  const std::vector<double> bases = {10000, 20000, 5000};
  testing::TempDir dir;
  for (int j = 0; j < 3; ++j) {
    const std::string path = dir / ("forced" + std::to_string(j) + ".safetensors");
    ASSERT_TRUE(ForcedRouters(model->config(), bases, j).Save(path, model->config()).ok());
    auto params = Moice(bases, 1, path);
    params.max_tokens = 80;
    GenerationParams single;  // vanilla with base j: one bucket
    single.sampling.temperature = 0;
    single.max_tokens = 80;
    single.position.mode = PositionMode::kBuckets;
    single.position.bases = {bases[j]};
    auto a = Generate(*model, "Once upon a time", params);
    auto b = Generate(*model, "Once upon a time", single);
    ASSERT_TRUE(a.ok() && b.ok()) << a.status() << b.status();
    EXPECT_EQ(a->token_ids, b->token_ids) << "forced onto base " << bases[j];
  }
}

TEST(Moice, RouteWeightsAreTopKRenormalised) {
  auto config = ParseShapeSpec("dim=32,layers=1,heads=4,hidden=32,vocab=16,ctx=8");
  ASSERT_TRUE(config.ok());
  auto r = MoiceRouters::Random(*config, {1e4, 2e4, 3e4, 4e4, 5e4}, 2, 1);
  r.layers[0].w2 *= 50;
  auto q = torch::randn({3, 4, 8});
  at::Tensor probs;
  auto w = RouteWeights(r.layers[0], q, 2, &probs);
  EXPECT_TRUE(torch::allclose(w.sum(-1), torch::ones({3, 4})));
  EXPECT_TRUE(torch::equal(w.gt(0).sum(-1), torch::full({3, 4}, 2, torch::kLong)));
  // The kept experts are the two most probable, in proportion to their probabilities.
  auto top = std::get<1>(probs.topk(2, -1));
  auto kept = w.gather(-1, top);
  auto expected = probs.gather(-1, top) / probs.gather(-1, top).sum(-1, true);
  EXPECT_TRUE(torch::allclose(kept, expected));
  EXPECT_TRUE(torch::allclose(RouteWeights(r.layers[0], q, 5), probs));  // K = N: softmax itself
}

TEST(Moice, UntrainedRoutersAreNearUniform) {
  auto config = ParseShapeSpec("dim=64,layers=2,heads=4,hidden=32,vocab=16,ctx=8");
  ASSERT_TRUE(config.ok());
  auto r = MoiceRouters::Random(*config, {1e4, 2e4, 3e4, 4e4}, 4, 0);
  at::Tensor probs;
  RouteWeights(r.layers[1], torch::randn({10, 16}), 4, &probs);
  EXPECT_LT((probs - 0.25).abs().max().item<float>(), 0.01);
}

TEST(RouterCheckpoint, RoundTripAndMismatchesRejected) {
  auto config = ParseShapeSpec("dim=32,layers=3,heads=4,hidden=32,vocab=16,ctx=8");
  ASSERT_TRUE(config.ok());
  auto r = MoiceRouters::Random(*config, {10000, 17500, 25000}, 2, 4);
  testing::TempDir dir;
  ASSERT_TRUE(r.Save(dir / "r.safetensors", *config).ok());
  auto back = MoiceRouters::Load(dir / "r.safetensors", *config);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->expert_bases, r.expert_bases);
  EXPECT_EQ(back->top_k, 2);
  ASSERT_EQ(back->layers.size(), 3u);
  for (int l = 0; l < 3; ++l) {
    EXPECT_TRUE(torch::equal(back->layers[l].w1, r.layers[l].w1));
    EXPECT_TRUE(torch::equal(back->layers[l].w2, r.layers[l].w2));
    EXPECT_TRUE(torch::equal(back->layers[l].w3, r.layers[l].w3));
  }
  // Another model shape.
  auto other = ParseShapeSpec("dim=32,layers=2,heads=4,hidden=32,vocab=16,ctx=8");
  auto wrong_model = MoiceRouters::Load(dir / "r.safetensors", *other);
  EXPECT_EQ(wrong_model.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(wrong_model.status().message()), ::testing::HasSubstr("3 layers"));
  // Not a router file at all.
  ASSERT_TRUE(SaveHfCheckpoint(RandomCheckpoint(*config, 1), dir / "hf").ok());
  EXPECT_THAT(std::string(MoiceRouters::Load(dir / "hf/model.safetensors", *config).status().message()),
              ::testing::HasSubstr("not a router checkpoint"));
  EXPECT_FALSE(MoiceRouters::Load(dir / "absent.safetensors", *config).ok());
  // A model refuses routers trained for other expert bases, and a missing router file.
  auto model = Model::FromCheckpoint(RandomCheckpoint(*config, 1), nullptr);
  PositionConfig c;
  c.mode = PositionMode::kMoice;
  c.expert_bases = {10000, 17500, 30000};
  c.top_k = 2;
  c.router_path = dir / "r.safetensors";
  EXPECT_THAT(std::string(LoadRouters(model->config(), c).status().message()), ::testing::HasSubstr("expert bases"));
  c.expert_bases = {10000, 17500, 25000};
  EXPECT_TRUE(LoadRouters(model->config(), c).ok());
  c.router_path = dir / "missing.safetensors";
  EXPECT_FALSE(LoadRouters(model->config(), c).ok());
}

TEST(Moice, InvalidConfigsNameTheField) {
  PositionConfig c;
  c.mode = PositionMode::kMoice;
  EXPECT_THAT(std::string(ValidatePositionConfig(c).message()), ::testing::HasSubstr("expert_bases"));
  c.expert_bases = {10000, 20000};
  c.top_k = 0;
  EXPECT_THAT(std::string(ValidatePositionConfig(c).message()), ::testing::HasSubstr("top_k"));
  c.top_k = 3;
  EXPECT_FALSE(ValidatePositionConfig(c).ok());
  c.top_k = 2;
  EXPECT_TRUE(ValidatePositionConfig(c).ok());
}

}  // namespace
}  // namespace stave

namespace stave {
namespace {

// The runtime's cache (staved's): built once per base set or router, shared by later requests;
// K applied per request on the same weights.
TEST(PositionCache, KeepsTablesAndRoutersBetweenRequests) {
  const ModelConfig config = *ParseShapeSpec("dim=16,layers=2,heads=2,kv_heads=2,hidden=32,vocab=16,ctx=64");
  PositionCache cache(config);
  auto a = cache.RopeTables({10000, 20000}), b = cache.RopeTables({10000, 20000});
  EXPECT_EQ(a.get(), b.get());
  EXPECT_NE(cache.RopeTables({10000, 30000}).get(), a.get());
  PositionConfig moice;
  moice.mode = PositionMode::kMoice;
  moice.expert_bases = {10000, 20000};
  moice.top_k = 2;
  auto two = *cache.Routers(moice);
  moice.top_k = 1;
  auto one = *cache.Routers(moice);
  EXPECT_EQ(two->top_k, 2);
  EXPECT_EQ(one->top_k, 1);
  EXPECT_TRUE(one->layers[0].w1.is_same(two->layers[0].w1));  // the same weights, another K
  // Uncached, the same maths.
  EXPECT_TRUE(torch::equal(StackRopeTables(config, {10000, 20000})->cos, a->cos));
  EXPECT_TRUE(torch::equal((*LoadRouters(config, moice))->layers[1].w2, one->layers[1].w2));
}

}  // namespace
}  // namespace stave
