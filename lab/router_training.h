// Router-only MoICE training (docs/methods.md section 4.3): every model weight frozen, the
// per-layer routers trained with next-token cross-entropy + coef x load-balancing auxiliary loss,
// AdamW (lr 1e-4 constant, weight decay 0), gradient clipping at 1.0. Deterministic given a seed.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/model.h"
#include "core/moice_router.h"

namespace stave {

struct RouterTrainingOptions {
  std::vector<double> expert_bases;
  int top_k = 0;
  int steps = 7;
  int batch = 8;            // sequences per micro-batch
  int grad_accum = 1;       // micro-batches per optimiser step
  int seq_len = 256;        // tokens per training sequence (context permitting)
  double lr = 1e-4;
  double aux_coef = 0.3;
  double clip = 1.0;
  uint64_t seed = 0;
};

struct TrainingProgress {
  int step = 0, steps = 0;
  double loss = 0, aux = 0, tokens_per_s = 0;
};

// Documents -> one token stream (BOS before each document).
std::vector<int> TokenStream(const Tokenizer& tokenizer, const std::vector<std::string>& documents);

// Reads a text file (one document) or JSONL (one document per line, field "text").
absl::StatusOr<std::vector<std::string>> ReadDocuments(const std::string& path);

// Prompt/completion examples (JSONL lines with string fields "prompt" and "completion"): each is
// a sequence of its own from position 0 (BOS, prompt, completion), scored on the completion's
// tokens only. For a model trained on answers alone (such as the default model: its mean loss
// over all tokens of held-out generated text is 25.5 nats, mostly on random keys and values it
// was never asked to predict) the loss over all text would train the routers on noise; this
// trains them on what the model does.
struct ScoredExample {
  std::vector<int> tokens;  // BOS, prompt, completion
  int prompt_tokens = 0;    // BOS and prompt: not scored
};
// Whether `path` is JSONL whose first object has "prompt" and "completion" (else: plain text or
// "text" JSONL, read with ReadDocuments).
bool IsPromptCompletionJsonl(const std::string& path);
absl::StatusOr<std::vector<ScoredExample>> ReadScoredExamples(const std::string& path,
                                                               const Tokenizer& tokenizer);
// Router training or held-out data in any of the formats: examples for prompt/completion JSONL,
// else one token stream.
struct RouterData {
  std::vector<int> stream;
  std::vector<ScoredExample> examples;
  bool scored() const { return !examples.empty(); }
};
absl::StatusOr<RouterData> ReadRouterData(const std::string& path, const Tokenizer& tokenizer);
// Load-balancing loss over router probabilities (each [..., N]) with top-K choices:
// N * sum_k sum_e f_{k,e} P_e. Constant N when K = N.
at::Tensor LoadBalancingLoss(const std::vector<at::Tensor>& router_probs, int top_k);

// Mean next-token cross-entropy of `model` in MoICE mode with `routers` over consecutive
// windows of `stream` (at most `max_sequences` of seq_len + 1 tokens).
absl::StatusOr<double> EvaluateLoss(const Model& model, const MoiceRouters& routers,
                                    const std::vector<int>& stream, int seq_len, int max_sequences);

// The same over the first `max_examples` examples, completion tokens only.
absl::StatusOr<double> EvaluateLoss(const Model& model, const MoiceRouters& routers,
                                    const std::vector<ScoredExample>& examples, int max_examples);
absl::StatusOr<MoiceRouters> TrainRouters(
    const Model& model, const std::vector<int>& stream, const RouterTrainingOptions& options,
    const std::function<void(const TrainingProgress&)>& on_step = nullptr);

// Trained on examples drawn uniformly (options.seq_len unused: each example is its own length).
absl::StatusOr<MoiceRouters> TrainRouters(
    const Model& model, const std::vector<ScoredExample>& examples, const RouterTrainingOptions& options,
    const std::function<void(const TrainingProgress&)>& on_step = nullptr);
}  // namespace stave
