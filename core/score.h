// Scoring: the log-probability of a continuation given a prompt, token by token, under a position
// config (the fused distribution in buckets mode), in one forward pass over both.
#pragma once

#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "core/model.h"
#include "core/position_config.h"

namespace stave {

struct ScoreResult {
  std::vector<int> token_ids;    // the continuation's tokens
  std::vector<double> logprobs;  // natural log, one per continuation token
  double total_logprob = 0;
  bool is_greedy = true;  // every continuation token was the most probable one
};

// prompt_ids (BOS included, non-empty) followed by continuation_ids (non-empty).
absl::StatusOr<ScoreResult> ScoreTokens(const Model& model, const std::vector<int>& prompt_ids,
                                        const std::vector<int>& continuation_ids,
                                        const PositionConfig& position, int64_t kv_budget_mb = 4096);

// A prompt and continuation as the model tokenises the joined text: prompt_ids (BOS first) and
// continuation_ids. Cheap next to scoring; servers run it before queueing the forward pass.
struct ScoreTokensInput {
  std::vector<int> prompt_ids, continuation_ids;
};
absl::StatusOr<ScoreTokensInput> TokenizeForScoring(const Tokenizer& tokenizer, std::string_view prompt,
                                                    std::string_view continuation);

// Text form. Tokens are split where Encode(prompt) and Encode(prompt + continuation) diverge, so
// the continuation is scored as the model would have tokenised the joined text (a word split
// across the boundary is scored whole, as part of the continuation).
absl::StatusOr<ScoreResult> ScoreText(const Model& model, std::string_view prompt,
                                      std::string_view continuation, const PositionConfig& position,
                                      int64_t kv_budget_mb = 4096);

}  // namespace stave
