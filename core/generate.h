// The plain generate loop: encode the prompt, run a Sequence to the end, hand each released
// piece of text to a callback as it appears.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "core/sequence.h"

namespace stave {

struct GenerationResult {
  std::vector<int> prompt_token_ids;  // BOS included
  std::vector<int> token_ids;         // generated only
  std::string text;                   // generated only
  std::string finish_reason;          // "length", "stop", "eos" or "cancelled"
  double prefill_seconds = 0;         // prompt processing + first token
  double decode_seconds = 0;          // every later token
};

// Called with each token and the text it released; returning false cancels the generation.
using TokenCallback = std::function<bool(int token_id, std::string_view text)>;

absl::StatusOr<GenerationResult> Generate(const Model& model, std::string_view prompt,
                                          const GenerationParams& params,
                                          const TokenCallback& on_token = nullptr);

}  // namespace stave
