// Router-only MoICE training: gradients reach the routers only, the auxiliary loss, determinism,
// data reading, and a short training run lowering held-out loss.
#include <torch/torch.h>

#include <fstream>

#include "core/checkpoint.h"
#include "core/generate.h"
#include "core/kv_cache.h"
#include "core/model.h"
#include "core/position_cache.h"
#include "lab/router_training.h"
#include "core/transformer.h"
#include "tests/test_support.h"

namespace stave {
namespace {

TEST(RouterTraining, GradientsReachRouterParametersOnly) {
  auto config = ParseShapeSpec("dim=32,layers=2,heads=4,kv_heads=2,hidden=48,vocab=40,ctx=16");
  ASSERT_TRUE(config.ok());
  auto ckpt = RandomCheckpoint(*config, 2);
  auto model = Model::FromCheckpoint(ckpt, nullptr);
  auto routers = MoiceRouters::Random(*config, {10000, 20000, 40000}, 2, 1);
  for (auto& l : routers.layers)
    for (at::Tensor* t : {&l.w1, &l.w2, &l.w3}) t->set_requires_grad(true);
  auto tables = StackRopeTables(model->config(), routers.expert_bases);
  auto cache = KvCache::Allocate(*config, 1, 12, 3);
  auto tokens = torch::randint(0, 40, {1, 13}, torch::kLong);
  std::vector<at::Tensor> probs;
  auto logits = model->transformer().Forward(tokens.narrow(1, 0, 12), cache, *tables, true, &routers, &probs);
  ASSERT_EQ(probs.size(), 2u);
  auto loss = torch::nn::functional::cross_entropy(logits.view({12, -1}), tokens.narrow(1, 1, 12).reshape(-1)) +
              0.3 * LoadBalancingLoss(probs, 2);
  loss.backward();
  for (const auto& l : routers.layers)
    for (const at::Tensor* t : {&l.w1, &l.w2, &l.w3}) {
      ASSERT_TRUE(t->grad().defined());
      EXPECT_GT(t->grad().abs().sum().item<float>(), 0);
    }
  for (const auto& [name, t] : ckpt.tensors) {
    EXPECT_FALSE(t.requires_grad()) << name;
    EXPECT_FALSE(t.grad().defined()) << name;
  }
}

TEST(RouterTraining, AuxLossIsConstantOnlyWhenKEqualsN) {
  torch::manual_seed(0);
  auto a = torch::softmax(torch::randn({2, 7, 4, 5}) * 3, -1);
  auto b = torch::softmax(torch::randn({2, 7, 4, 5}) * 3, -1);
  EXPECT_NEAR(LoadBalancingLoss({a}, 5).item<float>(), 5.0, 1e-5);
  EXPECT_NEAR(LoadBalancingLoss({b, a}, 5).item<float>(), 5.0, 1e-5);
  EXPECT_GT(std::abs(LoadBalancingLoss({a}, 2).item<float>() - LoadBalancingLoss({b}, 2).item<float>()), 1e-4);
  // Perfectly balanced uniform routing gives K (the minimum of the Switch loss scaled by K).
  EXPECT_NEAR(LoadBalancingLoss({torch::full({10, 5}, 0.2)}, 1).item<float>(), 1.0, 1e-5);
}

TEST(RouterTraining, DeterministicGivenASeed) {
  auto config = ParseShapeSpec("dim=32,layers=2,heads=4,hidden=48,vocab=40,ctx=32");
  ASSERT_TRUE(config.ok());
  auto model = Model::FromCheckpoint(RandomCheckpoint(*config, 2), nullptr);
  std::vector<int> stream;
  for (int i = 0; i < 400; ++i) stream.push_back((i * 7 + i / 3) % 40);
  RouterTrainingOptions o{.expert_bases = {10000, 20000, 30000}, .top_k = 2, .steps = 3, .batch = 2, .seq_len = 16, .lr = 1e-2, .seed = 5};
  auto a = TrainRouters(*model, stream, o);
  auto b = TrainRouters(*model, stream, o);
  ASSERT_TRUE(a.ok() && b.ok()) << a.status();
  for (size_t l = 0; l < a->layers.size(); ++l) EXPECT_TRUE(torch::equal(a->layers[l].w2, b->layers[l].w2));
  auto untrained = MoiceRouters::Random(*config, o.expert_bases, 2, 5);
  EXPECT_FALSE(torch::equal(a->layers[0].w2, untrained.layers[0].w2));
  EXPECT_FALSE(a->layers[0].w2.requires_grad());
  o.seq_len = 1;
  EXPECT_FALSE(TrainRouters(*model, stream, o).ok());
  o.seq_len = 16;
  EXPECT_FALSE(TrainRouters(*model, {1, 2, 3}, o).ok());  // too little data
}

TEST(RouterTraining, ReadsTextAndJsonl) {
  testing::TempDir dir;
  std::ofstream(dir / "a.txt") << "one document\nwith two lines";
  std::ofstream(dir / "b.jsonl") << "{\"text\": \"first\"}\n\n{\"text\": \"second\", \"id\": 2}\n";
  std::ofstream(dir / "c.jsonl") << "{\"text\": \"ok\"}\n{\"body\": \"no text\"}\n";
  EXPECT_EQ(*ReadDocuments(dir / "a.txt"), std::vector<std::string>{"one document\nwith two lines"});
  EXPECT_EQ(*ReadDocuments(dir / "b.jsonl"), (std::vector<std::string>{"first", "second"}));
  auto bad = ReadDocuments(dir / "c.jsonl");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), ::testing::HasSubstr("c.jsonl:2"));
  EXPECT_FALSE(ReadDocuments(dir / "absent.txt").ok());
}

TEST(RouterTraining, ReadsPromptCompletionJsonl) {
  testing::TempDir dir;
  testing::ByteTokenizer tok;
  std::ofstream(dir / "a.jsonl") << "{\"prompt\": \"ab\", \"completion\": \"cde\"}\n\n{\"prompt\": \"\", \"completion\": \"x\"}\n";
  std::ofstream(dir / "b.jsonl") << "{\"prompt\": \"ab\", \"completion\": \"c\"}\n{\"prompt\": \"ab\"}\n";
  std::ofstream(dir / "c.jsonl") << "{\"text\": \"plain\"}\n";
  EXPECT_TRUE(IsPromptCompletionJsonl(dir / "a.jsonl"));
  EXPECT_FALSE(IsPromptCompletionJsonl(dir / "c.jsonl"));
  EXPECT_FALSE(IsPromptCompletionJsonl(dir / "absent.jsonl"));
  auto examples = ReadScoredExamples(dir / "a.jsonl", tok);
  ASSERT_TRUE(examples.ok()) << examples.status();
  ASSERT_EQ(examples->size(), 2u);
  EXPECT_EQ((*examples)[0].tokens, (std::vector<int>{1, 3 + 'a', 3 + 'b', 3 + 'c', 3 + 'd', 3 + 'e'}));
  EXPECT_EQ((*examples)[0].prompt_tokens, 3);  // BOS, a, b
  EXPECT_EQ((*examples)[1].prompt_tokens, 1);
  auto bad = ReadScoredExamples(dir / "b.jsonl", tok);
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), ::testing::HasSubstr("b.jsonl:2"));
}

// Only the completion is scored: the loss equals the cross-entropy of the completion's tokens
// alone, and training on examples is deterministic and refuses examples beyond the context.
TEST(RouterTraining, ExamplesAreScoredOnTheirCompletion) {
  auto config = ParseShapeSpec("dim=32,layers=2,heads=4,hidden=48,vocab=40,ctx=32");
  ASSERT_TRUE(config.ok());
  auto model = Model::FromCheckpoint(RandomCheckpoint(*config, 2), nullptr);
  auto routers = MoiceRouters::Random(*config, {10000, 20000, 30000}, 2, 5);
  const ScoredExample ex{{1, 7, 9, 4, 22, 5, 13}, 4};  // targets 22, 5, 13 scored
  auto loss = EvaluateLoss(*model, routers, std::vector<ScoredExample>{ex}, 10);
  ASSERT_TRUE(loss.ok()) << loss.status();
  auto tables = StackRopeTables(model->config(), routers.expert_bases);
  auto cache = KvCache::Allocate(*config, 1, 6, 3);
  auto ids = torch::tensor(std::vector<int64_t>(ex.tokens.begin(), ex.tokens.end())).view({1, -1});
  auto logits = model->transformer().Forward(ids.narrow(1, 0, 6), cache, *tables, true, &routers, nullptr).view({6, -1});
  auto expected = torch::nn::functional::cross_entropy(logits.narrow(0, 3, 3), ids.view(-1).narrow(0, 4, 3));
  EXPECT_NEAR(*loss, expected.item<double>(), 1e-5);
  auto all = torch::nn::functional::cross_entropy(logits, ids.view(-1).narrow(0, 1, 6));
  EXPECT_GT(std::abs(*loss - all.item<double>()), 1e-3);  // it is not the loss over every token

  RouterTrainingOptions o{.expert_bases = {10000, 20000, 30000}, .top_k = 2, .steps = 3, .batch = 2, .lr = 1e-2, .seed = 5};
  const std::vector<ScoredExample> data{ex, {{1, 3, 3, 8, 9}, 2}};
  auto a = TrainRouters(*model, data, o);
  auto b = TrainRouters(*model, data, o);
  ASSERT_TRUE(a.ok() && b.ok()) << a.status();
  for (size_t l = 0; l < a->layers.size(); ++l) EXPECT_TRUE(torch::equal(a->layers[l].w1, b->layers[l].w1));
  EXPECT_FALSE(torch::equal(a->layers[0].w1, MoiceRouters::Random(*config, o.expert_bases, 2, 5).layers[0].w1));
  const std::vector<ScoredExample> too_long{{std::vector<int>(40, 3), 2}};
  EXPECT_FALSE(TrainRouters(*model, too_long, o).ok());
  EXPECT_FALSE(EvaluateLoss(*model, routers, too_long, 1).ok());
  const std::vector<ScoredExample> no_prompt{{{3, 4, 5}, 0}}, no_completion{{{1, 4, 5}, 3}};
  EXPECT_FALSE(TrainRouters(*model, no_prompt, o).ok());
  EXPECT_FALSE(EvaluateLoss(*model, routers, no_completion, 1).ok());
}

TEST(RouterTraining, ShortTrainingLowersHeldOutLossOnTheModelsOwnText) {
  SKIP_UNLESS_SHARED("models/stories260K/stories260K.bin");
  auto model = Model::Load(testing::SharedPath("models/stories260K/stories260K.bin"),
                           testing::SharedPath("models/stories260K/tok512.bin"));
  ASSERT_TRUE(model.ok());
  // Corpus: stories the model itself samples (seeds 1-6 train, 11-13 held out).
  auto corpus = [&](std::vector<uint64_t> seeds) {
    std::vector<std::string> docs;
    for (uint64_t s : seeds) {
      GenerationParams p;
      p.max_tokens = 400;
      p.sampling = {.temperature = 1.0f, .top_k = 0, .top_p = 0.9f, .seed = s};
      docs.push_back("Once" + Generate(**model, "Once", p)->text);
    }
    return TokenStream(*(*model)->tokenizer(), docs);
  };
  const auto train = corpus({1, 2, 3, 4, 5, 6}), held_out = corpus({11, 12, 13});
  RouterTrainingOptions o{.expert_bases = {10000, 17500, 18000, 19000, 20000, 22500, 25000},
                          .top_k = 2, .steps = 30, .batch = 4, .seq_len = 128, .lr = 1e-2, .seed = 0};
  auto untrained = MoiceRouters::Random((*model)->config(), o.expert_bases, o.top_k, o.seed);
  auto before = EvaluateLoss(**model, untrained, held_out, 128, 32);
  auto trained = TrainRouters(**model, train, o);
  ASSERT_TRUE(before.ok() && trained.ok()) << trained.status();
  auto after = EvaluateLoss(**model, *trained, held_out, 128, 32);
  ASSERT_TRUE(after.ok());
  std::printf("held-out loss: untrained routers %.4f, trained %.4f\n", *before, *after);
  EXPECT_LT(*after, *before);
}

}  // namespace
}  // namespace stave
