// One generation in progress: prompt, sampler, the text produced so far, the rules that end it
// (stop token, stop strings, max tokens, context limit) and its cache tables in a KV pool. A
// Scheduler runs many of them in one forward per step; Next() runs a sequence on its own (a
// one-sequence scheduler with a pool just large enough), for the CLI and the tests.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "absl/status/statusor.h"
#include "core/kv_pool.h"
#include "core/model.h"
#include "core/position_config.h"
#include "core/position_runtime.h"
#include "core/sampler.h"
#include "core/score.h"

namespace stave {

class Scheduler;

struct GenerationParams {
  int max_tokens = 256;
  SamplingParams sampling;
  std::vector<std::string> stop;  // stop strings; the text ends before the first one found
  bool ignore_stop_token = false;  // benchmarks: always run max_tokens steps
  bool logprobs = false;           // fill Step::logprob (an O(vocab) log-softmax per token)
  PositionConfig position;         // vanilla, or buckets with their bases and fusion
  // Refuse a sequence whose cache would need more (run on its own); 0 = no per-sequence cap (a
  // scheduler's pool decides).
  int64_t kv_budget_mb = 4096;
};

class Sequence {
 public:
  struct Step {
    int token = -1;        // -1 when the step produced no token (stop token reached)
    // With GenerationParams::logprobs: the token's natural-log probability under the model's
    // (fused) distribution before temperature and top-k/top-p, as OpenAI's logprobs report it.
    double logprob = 0;
    std::string text;      // newly releasable text (held back while it may start a stop
                           // string or ends inside a UTF-8 character)
    bool finished = false;
    std::string finish_reason;  // "length", "stop" or "eos" once finished
    absl::Status status;        // not OK: the step failed (set by a caller's error boundary)
  };

  // Validates the prompt and params against the model and prepares the position method. The
  // sequence holds no KV memory until a scheduler runs it.
  // `cache`: where RoPE tables and routers are kept between requests (a server's); null builds
  // them for this sequence.
  static absl::StatusOr<std::unique_ptr<Sequence>> Create(const Model& model,
                                                          std::vector<int> prompt_ids,
                                                          const GenerationParams& params,
                                                          PositionCache* cache = nullptr);
  ~Sequence();

  // Scoring instead of generating: feeds the prompt (BOS first) and the continuation but its last
  // token, and records each continuation token's log-probability under the (fused) distribution
  // (ScoreTokens' maths), in a batch like any sequence. Finishes with reason "scored".
  static absl::StatusOr<std::unique_ptr<Sequence>> CreateScoring(const Model& model, std::vector<int> prompt_ids,
                                                                 std::vector<int> continuation_ids,
                                                                 const PositionConfig& position,
                                                                 PositionCache* cache = nullptr);
  bool scoring() const { return scoring_; }
  const ScoreResult& score() const { return score_; }
  // Scoring: the logits [branches, T, V] of the T positions fed from `first` on.
  Step AcceptPositions(const at::Tensor& logits, int first);

  // On its own: the prefill on the first call (its own pool is allocated then, within
  // params.kv_budget_mb), one decode step after that.
  Step Next();

  bool finished() const { return finished_; }
  const std::vector<int>& prompt_ids() const { return prompt_ids_; }
  const std::vector<int>& token_ids() const { return token_ids_; }  // generated only
  const std::string& text() const { return text_; }
  int branches() const { return runtime_.branches; }

  // For a scheduler.
  const PositionRuntime& runtime() const { return runtime_; }
  SequenceKv& kv() { return kv_; }
  // Positions the sequence may need (prompt and every generated token but the last).
  int capacity() const { return capacity_; }
  // Tokens known but not yet in the cache: the prompt (all of it again after a preemption,
  // with what was generated so far), or the last sampled token.
  int pending() const;
  // The next `n` pending tokens, for a batch entry.
  std::vector<int64_t> PendingTokens(int n) const;
  // The fused logits of the last pending position: samples, applies the stop rules.
  Step Accept(const at::Tensor& branch_logits);

 private:
  Sequence(const Model& model, std::vector<int> prompt_ids, const GenerationParams& params,
           int capacity, PositionRuntime runtime);
  std::string Release(bool everything);

  const Model& model_;
  std::vector<int> prompt_ids_;
  GenerationParams params_;
  Sampler sampler_;
  PositionRuntime runtime_;
  int capacity_ = 0;
  SequenceKv kv_;
  std::unique_ptr<Scheduler> own_scheduler_;  // Next() only
  std::vector<int> token_ids_;
  std::string text_;
  size_t released_ = 0;
  bool finished_ = false;
  // Scoring: where the continuation starts among the fed tokens, its tokens, the result so far
  // (indexed by position, so a preempted and recomputed sequence overwrites, never adds twice).
  bool scoring_ = false;
  int continuation_start_ = 0;
  std::vector<int> continuation_;
  ScoreResult score_;
  std::vector<bool> score_greedy_;  // per continuation token: it was the argmax
};

}  // namespace stave
