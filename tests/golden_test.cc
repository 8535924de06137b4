// Parity with the llama2.c reference runner on stories260K: greedy sequences token for token and
// logits at every position of one run.
#include <torch/torch.h>

#include <fstream>

#include "core/generate.h"
#include "core/score.h"
#include "core/kv_cache.h"
#include "core/model.h"
#include "core/rope.h"
#include "core/transformer.h"
#include "nlohmann/json.hpp"
#include "tests/test_support.h"

namespace stave {
namespace {

constexpr char kGreedy[] = "golden/stories260K/greedy.jsonl";
constexpr char kLogits[] = "golden/stories260K/logits-prompt2.jsonl";

TEST(Golden, PromptEncodingMatchesReference) {
  SKIP_UNLESS_SHARED(kGreedy);
  auto model = testing::LoadStories260K();
  ASSERT_NE(model, nullptr);
  for (const auto& row : testing::ReadJsonl(testing::SharedPath(kGreedy))) {
    auto ids = model->tokenizer()->Encode(row["prompt"].get<std::string>(), true);
    auto golden = row["tokens"].get<std::vector<int>>();
    ASSERT_LE(ids.size(), golden.size());
    EXPECT_EQ(ids, std::vector<int>(golden.begin(), golden.begin() + ids.size()))
        << "prompt: " << row["prompt"];
  }
}

TEST(Golden, GreedyGenerationReproducesEverySequence) {
  SKIP_UNLESS_SHARED(kGreedy);
  auto model = testing::LoadStories260K();
  ASSERT_NE(model, nullptr);
  for (const auto& row : testing::ReadJsonl(testing::SharedPath(kGreedy))) {
    const auto prompt = row["prompt"].get<std::string>();
    const auto golden = row["tokens"].get<std::vector<int>>();
    const int steps = row["steps"].get<int>();
    const size_t n_prompt = model->tokenizer()->Encode(prompt, true).size();
    GenerationParams params;
    params.sampling.temperature = 0;
    // The reference feeds positions 0 .. steps-1; each yields one token after the prompt.
    params.max_tokens = steps + 1 - static_cast<int>(n_prompt);
    auto result = Generate(*model, prompt, params);
    ASSERT_TRUE(result.ok()) << result.status();
    // When the reference stopped on BOS it recorded that BOS last; we report it as finish "eos".
    const bool stopped = row["stopped_on_bos"].get<bool>();
    if (stopped) ASSERT_EQ(golden.back(), model->config().stop_id());
    std::vector<int> expected(golden.begin() + n_prompt, golden.end() - (stopped ? 1 : 0));
    EXPECT_EQ(result->token_ids, expected) << "prompt: " << prompt;
    EXPECT_EQ(result->finish_reason, stopped ? "eos" : "length");
    // The reference prints the prompt (decoded) and then the continuation.
    auto prompt_text = model->tokenizer()->Decode(
        std::span<const int>(result->prompt_token_ids).subspan(1), result->prompt_token_ids[0]);
    EXPECT_EQ(prompt_text + result->text, row["text"].get<std::string>());
  }
}

class GoldenLogits : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(testing::SharedPath(kLogits)))
      GTEST_SKIP() << "reference data " << testing::SharedPath(kLogits)
                   << " not found; set STAVE_SHARED_DIR to the shared/ folder";
    model_ = testing::LoadStories260K();
    ASSERT_NE(model_, nullptr);
    for (const auto& row : testing::ReadJsonl(testing::SharedPath(kLogits))) {
      tokens_.push_back(row["token"].get<int64_t>());
      logits_.push_back(torch::tensor(row["logits"].get<std::vector<float>>()));
    }
  }
  void ExpectClose(const at::Tensor& got, size_t pos) {
    float diff = (got - logits_[pos]).abs().max().item<float>();
    EXPECT_LT(diff, 1e-4) << "position " << pos;
  }
  std::unique_ptr<Model> model_;
  std::vector<int64_t> tokens_;
  std::vector<at::Tensor> logits_;
};

TEST_F(GoldenLogits, OnePrefillMatchesEveryPosition) {
  c10::InferenceMode inference_mode;
  auto cache = KvCache::Allocate(model_->config(), 1, static_cast<int>(tokens_.size()));
  auto all = model_->transformer().Forward(torch::tensor(tokens_).view({1, -1}), cache,
                                           model_->rope(), true);
  for (size_t pos = 0; pos < tokens_.size(); ++pos) ExpectClose(all[0][pos], pos);
}

TEST_F(GoldenLogits, PrefillThenDecodeStepsMatch) {
  c10::InferenceMode inference_mode;
  auto cache = KvCache::Allocate(model_->config(), 1, static_cast<int>(tokens_.size()));
  const int64_t prefill = 7;
  auto first = model_->transformer().Forward(
      torch::tensor(std::vector<int64_t>(tokens_.begin(), tokens_.begin() + prefill)).view({1, -1}),
      cache, model_->rope(), true);
  for (int64_t pos = 0; pos < prefill; ++pos) ExpectClose(first[0][pos], pos);
  for (size_t pos = prefill; pos < tokens_.size(); ++pos) {
    auto logits = model_->transformer().Forward(torch::tensor({tokens_[pos]}).view({1, 1}), cache,
                                                model_->rope());
    ExpectClose(logits[0], pos);
  }
}

// Score's log-probabilities are the reference logits' log-softmax at each continuation token.
TEST_F(GoldenLogits, ScoreEqualsLogSoftmaxOfReferenceLogits) {
  const size_t split = 100, end = 140;
  std::vector<int> prompt(tokens_.begin(), tokens_.begin() + split);
  std::vector<int> continuation(tokens_.begin() + split, tokens_.begin() + end);
  auto scored = ScoreTokens(*model_, prompt, continuation, PositionConfig{});
  ASSERT_TRUE(scored.ok()) << scored.status();
  ASSERT_EQ(scored->logprobs.size(), continuation.size());
  double total = 0;
  bool greedy = true;
  for (size_t i = 0; i < continuation.size(); ++i) {
    const auto& logits = logits_[split + i - 1];
    const double expected = torch::log_softmax(logits.to(torch::kDouble), 0)[continuation[i]].item<double>();
    EXPECT_NEAR(scored->logprobs[i], expected, 1e-4) << "continuation token " << i;
    total += expected;
    greedy = greedy && logits.argmax().item<int64_t>() == continuation[i];
  }
  EXPECT_NEAR(scored->total_logprob, total, 1e-3);
  EXPECT_EQ(scored->is_greedy, greedy);
  // Buckets of the model's own base score exactly like vanilla.
  PositionConfig same_base{.mode = PositionMode::kBuckets, .bases = {10000, 10000}};
  auto bucketed = ScoreTokens(*model_, prompt, continuation, same_base);
  ASSERT_TRUE(bucketed.ok()) << bucketed.status();
  for (size_t i = 0; i < continuation.size(); ++i) EXPECT_NEAR(bucketed->logprobs[i], scored->logprobs[i], 1e-4);
  EXPECT_EQ(ScoreTokens(*model_, prompt, {}, PositionConfig{}).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(Score, AGreedyContinuationIsGreedyAndAnotherIsNot) {
  SKIP_UNLESS_SHARED(testing::kStoriesModel);
  auto model = testing::LoadStories260K();
  ASSERT_NE(model, nullptr);
  GenerationParams params;
  params.max_tokens = 30;
  params.sampling.temperature = 0;
  auto generated = Generate(*model, "Once upon a time", params);
  ASSERT_TRUE(generated.ok());
  auto scored = ScoreTokens(*model, generated->prompt_token_ids, generated->token_ids, PositionConfig{});
  ASSERT_TRUE(scored.ok()) << scored.status();
  EXPECT_TRUE(scored->is_greedy);
  for (double lp : scored->logprobs) EXPECT_LE(lp, 0.0);
  auto changed = generated->token_ids;
  changed.back() = changed.back() == 5 ? 6 : 5;
  auto other = ScoreTokens(*model, generated->prompt_token_ids, changed, PositionConfig{});
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE(other->is_greedy);
  EXPECT_LT(other->logprobs.back(), scored->logprobs.back());
}

}  // namespace
}  // namespace stave
