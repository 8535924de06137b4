#include "core/score.h"

#include <torch/torch.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "core/bucket_fusion.h"
#include "core/position_runtime.h"
#include "core/transformer.h"

namespace stave {

absl::StatusOr<ScoreResult> ScoreTokens(const Model& model, const std::vector<int>& prompt_ids,
                                        const std::vector<int>& continuation_ids,
                                        const PositionConfig& position, int64_t kv_budget_mb) {
  const ModelConfig& config = model.config();
  if (prompt_ids.empty()) return absl::InvalidArgumentError("prompt: no tokens to score from");
  if (continuation_ids.empty()) return absl::InvalidArgumentError("continuation: must not be empty");
  const int total = static_cast<int>(prompt_ids.size() + continuation_ids.size());
  if (total > config.max_seq_len)
    return absl::InvalidArgumentError(absl::StrCat(
        "continuation: prompt and continuation are ", total,
        " tokens, over the model's context of ", config.max_seq_len));
  std::vector<int64_t> ids(prompt_ids.begin(), prompt_ids.end());
  ids.insert(ids.end(), continuation_ids.begin(), continuation_ids.end());
  for (int64_t id : ids)
    if (id < 0 || id >= config.vocab_size)
      return absl::InvalidArgumentError(absl::StrCat("token id ", id, " outside the vocabulary"));
  auto runtime = PreparePosition(model, position);
  if (!runtime.ok()) return runtime.status();
  // The last token is never fed: its logits would predict what follows the continuation.
  const int fed = total - 1;
  auto status = CheckKvBudget(*runtime, config, fed, kv_budget_mb);
  if (!status.ok()) return status;

  c10::InferenceMode inference_mode;
  KvCache cache = runtime->AllocateCache(config, fed);
  auto tokens = torch::tensor(std::vector<int64_t>(ids.begin(), ids.begin() + fed), torch::kLong)
                    .view({1, -1})
                    .expand({runtime->branches, -1});
  auto logits = model.transformer().Forward(tokens, cache, runtime->Rope(model), /*all_positions=*/true,
                                            runtime->routers.get());  // [branches, fed, V]
  ScoreResult result;
  result.token_ids = continuation_ids;
  for (size_t i = 0; i < continuation_ids.size(); ++i) {
    // Position p predicts token p + 1.
    const int64_t p = static_cast<int64_t>(prompt_ids.size() + i) - 1;
    auto fused = FuseBranchLogits(logits.select(1, p), position.fusion).to(torch::kDouble);
    auto logp = torch::log_softmax(fused, -1);
    const int token = continuation_ids[i];
    const double lp = logp[token].item<double>();
    result.logprobs.push_back(lp);
    result.total_logprob += lp;
    if (logp.argmax().item<int64_t>() != token) result.is_greedy = false;
  }
  return result;
}

absl::StatusOr<ScoreTokensInput> TokenizeForScoring(const Tokenizer& tok, std::string_view prompt,
                                                    std::string_view continuation) {
  if (prompt.empty()) return absl::InvalidArgumentError("prompt: must not be empty");
  if (continuation.empty()) return absl::InvalidArgumentError("continuation: must not be empty");
  const std::vector<int> alone = tok.Encode(prompt, /*add_bos=*/true);
  const std::vector<int> joined = tok.Encode(std::string(prompt) + std::string(continuation), true);
  size_t split = 0;
  while (split < alone.size() && split < joined.size() && alone[split] == joined[split]) ++split;
  split = std::max<size_t>(split, 1);  // BOS always belongs to the prompt
  if (split >= joined.size())
    return absl::InvalidArgumentError("continuation: encodes to no tokens after the prompt");
  return ScoreTokensInput{std::vector<int>(joined.begin(), joined.begin() + split),
                          std::vector<int>(joined.begin() + split, joined.end())};
}

absl::StatusOr<ScoreResult> ScoreText(const Model& model, std::string_view prompt,
                                      std::string_view continuation, const PositionConfig& position,
                                      int64_t kv_budget_mb) {
  auto input = TokenizeForScoring(*model.tokenizer(), prompt, continuation);
  if (!input.ok()) return input.status();
  return ScoreTokens(model, input->prompt_ids, input->continuation_ids, position, kv_budget_mb);
}

}  // namespace stave
