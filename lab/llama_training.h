// Training a Llama from scratch on key-value retrieval (kv_retrieval.h): how the embedded default
// model was made (#7; docs/default-model.md). A plain batched forward with
// autograd (no KV cache), next-token cross-entropy on the answer tokens (keys and values are
// random: nothing else is learnable) unless loss_on_all, AdamW with
// warm-up and cosine decay, gradient clipping. Deterministic given a seed: the batch of step s
// depends only on (seed, s), so a run resumed from a checkpoint continues exactly as an
// uninterrupted one would.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "absl/status/statusor.h"
#include "core/checkpoint.h"
#include "core/tokenizer.h"

namespace stave {

struct LlamaTrainingOptions {
  ModelConfig shape;  // dim, hidden_dim, n_layers, n_heads, vocab_size, max_seq_len, rope_theta
  int steps = 10000;
  int batch = 16;             // examples per step (all with the same record count)
  double lr = 2e-3;           // peak; cosine decay to lr * min_lr_ratio
  double min_lr_ratio = 0.1;
  int warmup = 100;
  double weight_decay = 0.01;  // matrices only
  double clip = 1.0;
  int min_records = 1, max_records = 12;
  // Curriculum: min_records per example for the first hold_steps steps, then the most records
  // per example grows linearly to max_records over ramp_steps. A model first learns to copy the
  // one value of a 1-record example (measured here: ~400 steps before it starts, far longer when
  // such examples are diluted among bigger ones), then to match keys among more and more records.
  int hold_steps = 600;
  int ramp_steps = 3000;
  // Adaptive curriculum instead (when > 0): start at min_records; every 50 steps, when the greedy
  // exact match on 64 held-out examples at the current most records reaches promote_at, allow one
  // record more.
  double promote_at = 0;
  int queries = 6;              // queries per training example (the first at a uniform position)
  // Next-token loss on every position, not only the answers. The idea: the random keys and values
  // add irreducible loss, but predicting the record structure calls for the previous-token heads
  // that matching and copying are built from. Not seen to help in a 350-step trial.
  bool loss_on_all = false;
  double copy_fraction = 0.3;   // share of examples that are the copying task (kv_retrieval.h)
  // Share of the queries after the first that are reverse queries (KvReverseQuery), among
  // records whose value is unique in the example.
  double reverse_fraction = 0;
  // InitLlamaParameters' shared embedding component (0 = plain Normal(0, 0.02) embeddings).
  double shared_embedding = 0;
  // InitLlamaParameters' planted previous-token head (see there). Without it no run here left
  // chance level; with it a 2-layer model learned retrieval at 12 records in ~2000 steps.
  bool previous_token_head = true;
  int checkpoint_every = 250;   // steps between saved training states (0 = only at the end)
  int eval_every = 500;         // steps between held-out accuracy checks (0 = never)
  int eval_examples = 128;
  uint64_t seed = 0;
};

struct LlamaTrainingProgress {
  int step = 0, steps = 0;
  double loss = 0, lr = 0, tokens_per_s = 0;
  double eval_accuracy = -1;  // exact match on held-out examples, when evaluated at this step
  // The same at the adaptive curriculum's current most records, while below --max-records.
  double cap_accuracy = -1;
  // At held-out checks: PreviousTokenAttention per layer on held-out examples at the current most
  // records.
  std::vector<double> previous_token_attention;
  bool checkpointed = false;
  int records_cap = 0;  // adaptive curriculum: the most records per example now
};

// Token ids and targets (-100 = not trained on) of one batch, padded to the longest row.
struct KvTrainingBatch {
  at::Tensor tokens;   // [B, T] int64
  at::Tensor targets;  // [B, T] int64: the token each position must predict, or -100
};

// The batch of step `step`: `batch` examples with the same record count. With `first_query_only`
// only the first query's answer is a target (held-out evaluation).
KvTrainingBatch MakeKvTrainingBatch(const Tokenizer& tokenizer, const LlamaTrainingOptions& options,
                                    uint64_t seed, int64_t step, bool first_query_only = false);

// Parameters in Hugging Face names (tied embeddings), Normal(0, 0.02) with residual output
// projections scaled by 1/sqrt(2 layers), unit norms. `shared_embedding` > 0 adds one random
// vector (std shared_embedding x 0.02) to every token's embedding: a component all tokens share
// from the start, which a bias-free attention layer needs for purely positional heads such as
// "attend to the previous token" (an experiment: not seen to speed up retrieval so far).
//
// `previous_token_head` plants one such head at initialisation (layer 0, head 0), then trains it
// like every other weight. Why: retrieval is an induction circuit, a head that copies each token's
// predecessor into its position (so a value's position knows its key) composed with a later head
// that matches the query key against those predecessors. Neither half lowers the loss alone, so
// from a random start training sits at chance for a long plateau (measured here: 21000 steps,
// ~10M tokens, never left it). How: embedding dimension 0 becomes a constant shared by every
// token (the tied output adds the same logit to every token, which softmax ignores); head 0's
// query and key read only that constant, the key rotated by one position's RoPE angle in each of
// the head's highest-frequency planes, so q.k peaks at distance 1 whatever the tokens are. For
// the head to survive training, token embeddings then start at std 1 (not 0.02) and the final
// norm's gain at 0.1 (llama_training.cc says why and what was measured).
std::map<std::string, at::Tensor> InitLlamaParameters(const ModelConfig& shape, uint64_t seed,
                                                      double shared_embedding = 0,
                                                      bool previous_token_head = false);

// Logits [B, T, V] for tokens [B, T] from positions 0.. (differentiable). With `attention`, each
// layer's attention probabilities [B, heads, T, T] are appended to it (diagnostics).
at::Tensor TrainingForward(const std::map<std::string, at::Tensor>& params,
                           const ModelConfig& shape, const at::Tensor& tokens,
                           std::vector<at::Tensor>* attention = nullptr);

// How much each head attends to the previous token: per layer, the mean over rows and positions
// t >= 1 of the probability at t - 1, the largest over the layer's heads. Retrieval is built on
// such a head (a value's position learns its key from it), so this shows whether it has formed:
// about 1 for a previous-token head, far lower for spread or content-driven attention.
std::vector<double> PreviousTokenAttention(const std::vector<at::Tensor>& attention);

// Fraction of rows whose every target is the argmax prediction: with greedy decoding each such
// row reproduces its answer exactly.
double ExactMatch(const at::Tensor& logits, const at::Tensor& targets);

// Trains, saving the training state to `state_dir`/train_state.pt every checkpoint_every steps and
// resuming from it when present (the options must be the same); with `export_dir`, the model so
// far is also written there (HF layout) at every checkpoint. Returns the trained model.
absl::StatusOr<Checkpoint> TrainLlama(
    const Tokenizer& tokenizer, const LlamaTrainingOptions& options, const std::string& state_dir,
    const std::function<void(const LlamaTrainingProgress&)>& on_step = nullptr,
    const std::string& export_dir = "");

}  // namespace stave
