// One generation in progress: prompt, KV cache, sampler, the text produced so far, and the rules
// that end it (stop token, stop strings, max tokens, context limit). Next() runs the prefill on
// its first call and one decode step after that, so a scheduler can interleave sequences.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/model.h"
#include "core/position_config.h"
#include "core/position_runtime.h"
#include "core/sampler.h"

namespace stave {


struct GenerationParams {
  int max_tokens = 256;
  SamplingParams sampling;
  std::vector<std::string> stop;  // stop strings; the text ends before the first one found
  bool ignore_stop_token = false;  // benchmarks: always run max_tokens steps
  PositionConfig position;         // vanilla, or buckets with their bases and fusion
  int64_t kv_budget_mb = 4096;     // refuse sequences whose KV caches would need more
};

class Sequence {
 public:
  struct Step {
    int token = -1;        // -1 when the step produced no token (stop token reached)
    std::string text;      // newly releasable text (held back while it may start a stop
                           // string or ends inside a UTF-8 character)
    bool finished = false;
    std::string finish_reason;  // "length", "stop" or "eos" once finished
    absl::Status status;        // not OK: the step failed (set by a caller's error boundary)
  };

  // Validates the prompt and params against the model; allocates the KV cache (one per branch
  // in buckets mode).
  static absl::StatusOr<std::unique_ptr<Sequence>> Create(const Model& model,
                                                          std::vector<int> prompt_ids,
                                                          const GenerationParams& params);
  ~Sequence();

  Step Next();

  bool finished() const { return finished_; }
  const std::vector<int>& prompt_ids() const { return prompt_ids_; }
  const std::vector<int>& token_ids() const { return token_ids_; }  // generated only
  const std::string& text() const { return text_; }
  int branches() const { return runtime_.branches; }

 private:
  Sequence(const Model& model, std::vector<int> prompt_ids, const GenerationParams& params,
           int capacity, PositionRuntime runtime);
  std::string Release(bool everything);

  const Model& model_;
  std::vector<int> prompt_ids_;
  GenerationParams params_;
  Sampler sampler_;
  PositionRuntime runtime_;
  std::unique_ptr<KvCache> cache_;
  std::vector<int> token_ids_;
  std::string text_;
  size_t released_ = 0;
  bool finished_ = false;
};

}  // namespace stave
