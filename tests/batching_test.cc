// Continuous batching (issue #15): a request's tokens and logits do not depend on what else is in
// its batch (other lengths, modes, seeds), nor on being preempted and recomputed, and the KV pool
// gets every block back whatever way requests end.
#include <torch/torch.h>

#include <fstream>
#include <map>

#include "core/kv_cache.h"
#include "core/kv_pool.h"
#include "core/model.h"
#include "core/position_runtime.h"
#include "core/scheduler.h"
#include "core/score.h"
#include "core/sequence.h"
#include "core/transformer.h"
#include "nlohmann/json.hpp"
#include "tests/test_support.h"

namespace stave {
namespace {

constexpr char kGreedy[] = "golden/stories260K/greedy.jsonl";

// The mix every test runs a request among: vanilla, buckets of three bases, MoICE with untrained
// routers over two bases, MoICE keeping one expert.
std::vector<PositionConfig> Modes() {
  PositionConfig vanilla, buckets, moice, moice_top1;
  buckets.mode = PositionMode::kBuckets;
  buckets.bases = {10000, 17500, 25000};
  moice.mode = PositionMode::kMoice;
  moice.expert_bases = {10000, 20000};
  moice.top_k = 2;
  moice_top1 = moice;
  moice_top1.expert_bases = {10000, 15000, 30000};
  moice_top1.top_k = 1;
  return {vanilla, buckets, moice, moice_top1};
}

GenerationParams Params(const PositionConfig& position, int max_tokens, float temperature = 0, uint64_t seed = 0) {
  GenerationParams p;
  p.position = position;
  p.max_tokens = max_tokens;
  p.sampling.temperature = temperature;
  p.sampling.seed = seed;
  return p;
}

std::vector<int> Prompt(const Model& model, const std::string& text) { return model.tokenizer()->Encode(text, true); }

// Runs `seqs` together through one scheduler to the end; the tokens each one produced.
std::vector<std::vector<int>> RunTogether(const Model& model, std::vector<std::unique_ptr<Sequence>>& seqs,
                                          int64_t pool_blocks, int max_batch_tokens, Scheduler** out = nullptr,
                                          int64_t* preemptions = nullptr) {
  auto pool = KvPool::Create(model.config(), pool_blocks * KvPool::BlockBytes(model.config(), 16), 16);
  EXPECT_TRUE(pool.ok()) << pool.status();
  Scheduler scheduler(model, *std::move(pool), {.max_batch_tokens = max_batch_tokens, .max_running = 64});
  for (auto& s : seqs) EXPECT_TRUE(scheduler.Add(s.get()).ok());
  std::map<Sequence*, std::vector<int>> tokens;
  int guard = 0;
  while (scheduler.running() + scheduler.waiting() > 0 && ++guard < 100000)
    for (auto& out : scheduler.Step())
      if (out.step.token >= 0) tokens[out.sequence].push_back(out.step.token);
  EXPECT_EQ(scheduler.pool().free_blocks(), scheduler.pool().total_blocks()) << "blocks leaked";
  if (preemptions != nullptr) *preemptions = scheduler.preemptions();
  std::vector<std::vector<int>> result;
  for (auto& s : seqs) result.push_back(tokens[s.get()]);
  return result;
}

std::vector<int> RunAlone(const Model& model, std::vector<int> prompt, const GenerationParams& params) {
  auto seq = Sequence::Create(model, std::move(prompt), params);
  EXPECT_TRUE(seq.ok()) << seq.status();
  std::vector<int> tokens;
  while (!(*seq)->finished()) {
    auto step = (*seq)->Next();
    if (step.token >= 0) tokens.push_back(step.token);
  }
  return tokens;
}

std::vector<nlohmann::json> Golden() {
  std::vector<nlohmann::json> rows;
  std::ifstream in(testing::SharedPath(kGreedy));
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) rows.push_back(nlohmann::json::parse(line));
  return rows;
}

// stories260K, and the sequences a test runs together.
class Batching : public ::testing::Test {
 protected:
  void SetUp() override {
    SKIP_UNLESS_SHARED(testing::kStoriesModel);
    model = testing::LoadStories260K();
    ASSERT_NE(model, nullptr);
  }
  std::unique_ptr<Model> model;
  std::vector<std::unique_ptr<Sequence>> seqs;
  std::vector<std::vector<int>> alone;  // what each produced run on its own
};

TEST_F(Batching, GoldenGreedySequencesAreUnchangedInsideAMixedBatch) {
  SKIP_UNLESS_SHARED(kGreedy);
  std::vector<std::vector<int>> expected;
  for (const auto& row : Golden()) {
    auto prompt = Prompt(*model, row["prompt"].get<std::string>());
    const auto golden = row["tokens"].get<std::vector<int>>();
    const int steps = row["steps"].get<int>();
    seqs.push_back(*Sequence::Create(*model, prompt, Params({}, steps + 1 - static_cast<int>(prompt.size()))));
    std::vector<int> generated(golden.begin() + static_cast<long>(prompt.size()), golden.end());
    if (row["stopped_on_bos"].get<bool>()) generated.pop_back();  // the stop token is not a token
    expected.push_back(generated);
  }
  const size_t golden_count = seqs.size();
  // Neighbours of other lengths, modes and seeds.
  int i = 0;
  for (const auto& mode : Modes())
    for (const char* text : {"Lily", "One day, a big dog named Max went to the park with his friend"})
      seqs.push_back(*Sequence::Create(*model, Prompt(*model, text), Params(mode, 40 + 7 * i++, 0.8f, 100 + i)));
  // A small token budget: long prompts go in chunks next to the decoding streams.
  auto got = RunTogether(*model, seqs, 4096, 24);
  for (size_t g = 0; g < golden_count; ++g) EXPECT_EQ(got[g], expected[g]) << "golden sequence " << g;
}

TEST_F(Batching, EveryModeGivesTheSameTokensAloneAndBatchedSeededSamplingIncluded) {
  int i = 0;
  for (const auto& mode : Modes())
    for (float temperature : {0.0f, 1.0f}) {
      const std::string text = i % 2 == 0 ? "Once upon a time" : "The cat sat on the mat and looked at the bird";
      auto params = Params(mode, 30 + 5 * i, temperature, 7 + i);
      alone.push_back(RunAlone(*model, Prompt(*model, text), params));
      seqs.push_back(*Sequence::Create(*model, Prompt(*model, text), params));
      ++i;
    }
  auto batched = RunTogether(*model, seqs, 4096, 16);
  for (size_t s = 0; s < seqs.size(); ++s) EXPECT_EQ(batched[s], alone[s]) << "sequence " << s;
}

TEST_F(Batching, PreemptionAndRecomputeGiveTheSameTokensAndFreeEveryBlock) {
  int i = 0;
  for (const auto& mode : Modes())
    for (int k = 0; k < 2; ++k) {
      auto params = Params(mode, 120, k == 0 ? 0.0f : 0.9f, 31 + i++);
      params.ignore_stop_token = true;  // all of them run long enough to collide
      alone.push_back(RunAlone(*model, Prompt(*model, "Once upon a time"), params));
      seqs.push_back(*Sequence::Create(*model, Prompt(*model, "Once upon a time"), params));
    }
  // 64 blocks: far less than the 8 sequences need together (buckets alone take 6 tables).
  int64_t preemptions = 0;
  auto batched = RunTogether(*model, seqs, 64, 64, nullptr, &preemptions);
  EXPECT_GT(preemptions, 0) << "the pool was large enough: the test proves nothing";
  for (size_t s = 0; s < seqs.size(); ++s) EXPECT_EQ(batched[s], alone[s]) << "sequence " << s;
}

// A long prompt still being prefilled in chunks must be able to take blocks from a newer stream
// that is already decoding: the newer one is preempted before the step's batch is built (it
// used to be preempted with its decode row already in the batch: a crash, or a shifted stream).
// z (older) keeps decoding, so x's prompt goes in small chunks and y, newer, starts decoding
// while x is still being prefilled.
TEST_F(Batching, ALongPromptGrowingPreemptsANewerDecodingStreamCleanly) {
  std::vector<int> long_prompt{1};
  for (int i = 0; long_prompt.size() < 300; ++i) long_prompt.push_back(3 + (i * 37) % 500);
  auto params = [](int max_tokens) {
    auto p = Params({}, max_tokens);
    p.ignore_stop_token = true;
    return p;
  };
  const std::vector<std::pair<std::vector<int>, int>> specs = {
      {Prompt(*model, "The dog"), 200}, {long_prompt, 20}, {Prompt(*model, "Once upon a time"), 200}};
  for (const auto& [prompt, max_tokens] : specs) {
    alone.push_back(RunAlone(*model, prompt, params(max_tokens)));
    seqs.push_back(*Sequence::Create(*model, prompt, params(max_tokens)));
  }
  // 48 blocks: each fits alone (z and y 26, x 40); together they collide during x's prefill.
  Scheduler scheduler(*model, *KvPool::Create(model->config(), 48 * KvPool::BlockBytes(model->config(), 16), 16),
                      {.max_batch_tokens = 32, .max_running = 8});
  std::map<Sequence*, std::vector<int>> tokens;
  auto step = [&] {
    for (auto& out : scheduler.Step())
      if (out.step.token >= 0) tokens[out.sequence].push_back(out.step.token);
    for (auto& seq : seqs) ASSERT_GE(seq->pending(), 0) << "a cache ran ahead of its tokens";
  };
  for (auto& seq : seqs) {  // z, then x, then y, a step apart
    ASSERT_TRUE(scheduler.Add(seq.get()).ok());
    step();
  }
  for (int guard = 0; scheduler.running() + scheduler.waiting() > 0 && guard < 10000; ++guard) step();
  EXPECT_GT(scheduler.preemptions(), 0) << "no collision: the test proves nothing";
  for (size_t i = 0; i < seqs.size(); ++i) EXPECT_EQ(tokens[seqs[i].get()], alone[i]) << "sequence " << i;
  EXPECT_EQ(scheduler.pool().free_blocks(), scheduler.pool().total_blocks());
}

TEST_F(Batching, BlocksComeBackAfterFinishedCancelledAndNeverFittingRequests) {
  auto pool = *KvPool::Create(model->config(), 40 * KvPool::BlockBytes(model->config(), 16), 16);
  Scheduler scheduler(*model, std::move(pool), {.max_batch_tokens = 32, .max_running = 8});
  for (const auto& mode : Modes()) {
    auto params = Params(mode, 60, 0.7f, 5);
    params.ignore_stop_token = true;
    seqs.push_back(*Sequence::Create(*model, Prompt(*model, "Once upon a time"), params));
    ASSERT_TRUE(scheduler.Add(seqs.back().get()).ok());
  }
  // More than the pool could ever hold: refused at once, naming the need and the pool.
  PositionConfig many;
  many.mode = PositionMode::kBuckets;
  many.bases = std::vector<double>(16, 10000);
  auto huge = *Sequence::Create(*model, Prompt(*model, "Once"), Params(many, 400));
  auto refused = scheduler.Add(huge.get());
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(refused.message(), ::testing::HasSubstr("whole pool holds 40"));
  int steps = 0;
  while (scheduler.running() + scheduler.waiting() > 0 && ++steps < 100000) {
    scheduler.Step();
    if (steps == 5) scheduler.Remove(seqs[1].get());  // cancelled mid-generation
    EXPECT_LE(scheduler.pool().total_blocks() - scheduler.pool().free_blocks(), 40);
  }
  EXPECT_EQ(scheduler.pool().free_blocks(), scheduler.pool().total_blocks());
}

TEST_F(Batching, ScoringInABatchEqualsScoringAloneInEveryMode) {
  const auto prompt = Prompt(*model, "Once upon a time, there was a little girl");
  auto continuation = Prompt(*model, " named Lily. She liked to play");
  continuation.erase(continuation.begin());  // no BOS
  std::vector<ScoreResult> expected;
  for (const auto& mode : Modes()) {
    expected.push_back(*ScoreTokens(*model, prompt, continuation, mode));
    seqs.push_back(*Sequence::CreateScoring(*model, prompt, continuation, mode));
  }
  // Generating neighbours, and a small budget: the scored prompt goes in several chunks.
  for (const auto& mode : Modes()) seqs.push_back(*Sequence::Create(*model, Prompt(*model, "Lily"), Params(mode, 20)));
  RunTogether(*model, seqs, 4096, 6);
  for (size_t i = 0; i < expected.size(); ++i) {
    const ScoreResult& got = seqs[i]->score();
    ASSERT_TRUE(seqs[i]->finished()) << "mode " << i;
    EXPECT_EQ(got.token_ids, expected[i].token_ids);
    for (size_t t = 0; t < continuation.size(); ++t)
      EXPECT_NEAR(got.logprobs[t], expected[i].logprobs[t], 1e-4) << "mode " << i << " token " << t;
    EXPECT_NEAR(got.total_logprob, expected[i].total_logprob, 1e-3);
    EXPECT_EQ(got.is_greedy, expected[i].is_greedy);
  }
}

// The serving forward against the reference Forward, one sequence at a time, in every mode:
// prompt chunks of several sizes and decode steps, all sequences in the same batch.
TEST_F(Batching, BatchedLogitsMatchTheReferenceForwardWithin1e4) {
  c10::InferenceMode inference_mode;
  const auto& config = model->config();
  auto pool = *KvPool::Create(config, 512 * KvPool::BlockBytes(config, 16), 16);
  struct Run {
    PositionRuntime runtime;
    SequenceKv kv;
    KvCache reference;
    std::vector<int64_t> tokens;
  };
  std::vector<Run> runs;
  const std::vector<int64_t> text = {1, 403, 407, 261, 378, 436, 376, 8, 285, 363, 346, 269, 375, 417, 271, 264, 411, 40, 376, 8};
  for (const auto& mode : Modes()) {
    Run r;
    r.runtime = *PreparePosition(*model, mode);
    r.reference = r.runtime.AllocateCache(config, 64);
    r.tokens = text;
    runs.push_back(std::move(r));
  }
  // Feeds: chunks of different sizes per sequence, then single tokens.
  const std::vector<std::vector<int>> chunks = {{20}, {7, 13}, {1, 19}, {12, 1, 1, 6}};
  size_t step = 0;
  bool more = true;
  while (more) {
    more = false;
    std::vector<BatchEntry> batch;
    std::vector<size_t> who;
    std::vector<at::Tensor> reference;
    for (size_t i = 0; i < runs.size(); ++i) {
      Run& r = runs[i];
      const auto& plan = chunks[i];
      const int fed = r.kv.length;
      if (fed >= static_cast<int>(text.size()) + 6) continue;  // the prompt, then six decode steps
      more = true;
      const int n = step < plan.size() ? plan[step] : 1;
      while (fed + n > static_cast<int>(r.tokens.size())) r.tokens.push_back(100 + static_cast<int64_t>(step));
      ASSERT_TRUE(pool.Reserve(r.kv, r.runtime.key_rows(), r.runtime.value_rows(), fed + n));
      BatchEntry e;
      e.kv = &r.kv;
      e.tokens.assign(r.tokens.begin() + fed, r.tokens.begin() + fed + n);
      e.rope = &r.runtime.Rope(*model);
      e.moice = r.runtime.routers.get();
      e.branches = r.runtime.branches;
      auto ids = torch::tensor(e.tokens, torch::kLong).view({1, -1}).expand({e.branches, -1});
      reference.push_back(model->transformer().Forward(ids, r.reference, *e.rope, false, e.moice));
      batch.push_back(std::move(e));
      who.push_back(i);
    }
    if (batch.empty()) break;
    auto logits = model->transformer().ForwardBatch(batch, pool);
    for (size_t j = 0; j < batch.size(); ++j)
      EXPECT_LT((logits[j] - reference[j]).abs().max().item<float>(), 1e-4f) << "mode " << who[j] << " step " << step;
    ++step;
  }
}

}  // namespace
}  // namespace stave
