#include "core/generate.h"

#include <chrono>

namespace stave {

absl::StatusOr<GenerationResult> Generate(const Model& model, std::string_view prompt,
                                          const GenerationParams& params,
                                          const TokenCallback& on_token) {
  if (model.tokenizer() == nullptr)
    return absl::FailedPreconditionError("the model has no tokenizer to encode the prompt with");
  auto seq_or = Sequence::Create(model, model.tokenizer()->Encode(prompt, /*add_bos=*/true), params);
  if (!seq_or.ok()) return seq_or.status();
  Sequence& seq = **seq_or;
  GenerationResult result;
  result.prompt_token_ids = seq.prompt_ids();
  using Clock = std::chrono::steady_clock;
  auto t0 = Clock::now();
  bool first = true;
  while (!seq.finished()) {
    Sequence::Step step = seq.Next();
    if (first) {
      result.prefill_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
      t0 = Clock::now();
      first = false;
    }
    if (step.finished) result.finish_reason = step.finish_reason;
    if (on_token && (step.token >= 0 || !step.text.empty()) && !on_token(step.token, step.text)) {
      if (!step.finished) result.finish_reason = "cancelled";
      break;
    }
  }
  result.decode_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  result.token_ids = seq.token_ids();
  result.text = seq.text();
  return result;
}

}  // namespace stave
