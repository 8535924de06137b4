#include "lab/router_training.h"

#include "core/position_cache.h"

#include <torch/torch.h>

#include <chrono>
#include <fstream>
#include <random>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/kv_cache.h"
#include "core/position_config.h"
#include "core/rope.h"
#include "core/transformer.h"
#include "nlohmann/json.hpp"

namespace stave {

std::vector<int> TokenStream(const Tokenizer& tokenizer, const std::vector<std::string>& documents) {
  std::vector<int> stream;
  for (const auto& d : documents) {
    auto ids = tokenizer.Encode(d, /*add_bos=*/true);
    stream.insert(stream.end(), ids.begin(), ids.end());
  }
  return stream;
}

absl::StatusOr<std::vector<std::string>> ReadDocuments(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open data file ", path));
  std::string text((std::istreambuf_iterator<char>(in)), {});
  if (!absl::EndsWith(path, ".jsonl")) return std::vector<std::string>{text};
  std::vector<std::string> docs;
  size_t line_no = 0, start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    ++line_no;
    std::string line = text.substr(start, end - start);
    start = end + 1;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("text") || !j["text"].is_string())
      return absl::InvalidArgumentError(absl::StrCat(path, ":", line_no, ": not a JSON object with a string field \"text\""));
    docs.push_back(j["text"].get<std::string>());
  }
  return docs;
}

bool IsPromptCompletionJsonl(const std::string& path) {
  if (!absl::EndsWith(path, ".jsonl")) return false;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    auto j = nlohmann::json::parse(line, nullptr, false);
    return j.is_object() && j.contains("prompt") && j.contains("completion");
  }
  return false;
}

absl::StatusOr<std::vector<ScoredExample>> ReadScoredExamples(const std::string& path,
                                                               const Tokenizer& tokenizer) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open data file ", path));
  std::vector<ScoredExample> examples;
  std::string line;
  for (size_t line_no = 1; std::getline(in, line); ++line_no) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = absl::StrCat(path, ":", line_no);
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("prompt") || !j["prompt"].is_string() ||
        !j.contains("completion") || !j["completion"].is_string())
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": not a JSON object with string fields \"prompt\" and \"completion\""));
    ScoredExample ex;
    ex.tokens = tokenizer.Encode(j["prompt"].get<std::string>(), /*add_bos=*/true);
    ex.prompt_tokens = static_cast<int>(ex.tokens.size());
    auto completion = tokenizer.Encode(j["completion"].get<std::string>(), /*add_bos=*/false);
    if (completion.empty()) return absl::InvalidArgumentError(absl::StrCat(where, ": empty completion"));
    ex.tokens.insert(ex.tokens.end(), completion.begin(), completion.end());
    examples.push_back(std::move(ex));
  }
  if (examples.empty()) return absl::InvalidArgumentError(absl::StrCat(path, ": no examples"));
  return examples;
}

absl::StatusOr<RouterData> ReadRouterData(const std::string& path, const Tokenizer& tokenizer) {
  RouterData data;
  if (IsPromptCompletionJsonl(path)) {
    auto examples = ReadScoredExamples(path, tokenizer);
    if (!examples.ok()) return examples.status();
    data.examples = *std::move(examples);
  } else {
    auto docs = ReadDocuments(path);
    if (!docs.ok()) return docs.status();
    data.stream = TokenStream(tokenizer, *docs);
  }
  return data;
}

at::Tensor LoadBalancingLoss(const std::vector<at::Tensor>& router_probs, int top_k) {
  std::vector<at::Tensor> flat;
  for (const auto& p : router_probs) flat.push_back(p.reshape({-1, p.size(-1)}));
  auto probs = torch::cat(flat);  // [decisions, N]
  const int64_t n = probs.size(1);
  auto choices = std::get<1>(probs.topk(top_k, -1));  // [decisions, K]
  // f[k, e]: fraction of decisions whose k-th choice is e (not differentiable, as in Switch).
  auto f = torch::one_hot(choices, n).to(torch::kFloat).mean(0);  // [K, N]
  auto mean_p = probs.mean(0);                                    // [N]
  return n * (f * mean_p.unsqueeze(0)).sum();
}

namespace {

// Next-token cross-entropy of one window [1, T + 1], MoICE routers applied, over the targets
// from index `first_scored` on (the tokens window[first_scored + 1 ..]); collects router
// probabilities when `router_probs` is given.
at::Tensor SequenceLoss(const Model& model, const RopeTable& tables, const MoiceRouters& routers,
                        const at::Tensor& window, std::vector<at::Tensor>* router_probs,
                        int64_t first_scored = 0) {
  const int64_t T = window.size(1) - 1;
  auto cache = KvCache::Allocate(model.config(), 1, static_cast<int>(T), routers.experts());
  auto logits = model.transformer().Forward(window.narrow(1, 0, T), cache, tables,
                                            /*all_positions=*/true, &routers, router_probs);
  return torch::nn::functional::cross_entropy(logits.view({T, -1}).narrow(0, first_scored, T - first_scored),
                                              window.narrow(1, first_scored + 1, T - first_scored).reshape(-1));
}

// One training or evaluation sequence: its tokens and the first scored target index.
struct Window {
  std::vector<int64_t> ids;
  int64_t first_scored = 0;
};

Window ExampleWindow(const ScoredExample& ex) {
  return {std::vector<int64_t>(ex.tokens.begin(), ex.tokens.end()), ex.prompt_tokens - 1};
}

// Every example fits the context and has a prompt (at least BOS) and a completion.
absl::Status ValidateExamples(const std::vector<ScoredExample>& examples, int64_t count, int context,
                              const char* what) {
  if (count < 1) return absl::InvalidArgumentError(absl::StrCat(what, " data: no examples"));
  for (int64_t i = 0; i < count; ++i) {
    const auto& ex = examples[i];
    if (static_cast<int>(ex.tokens.size()) > context)
      return absl::InvalidArgumentError(absl::StrCat(what, " example ", i + 1, " is longer than the model's context"));
    if (ex.prompt_tokens < 1 || ex.prompt_tokens >= static_cast<int>(ex.tokens.size()))
      return absl::InvalidArgumentError(absl::StrCat(what, " example ", i + 1, " needs a prompt and a completion"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<double> EvaluateLoss(const Model& model, const MoiceRouters& routers,
                                    const std::vector<int>& stream, int seq_len, int max_sequences) {
  c10::InferenceMode inference_mode;
  seq_len = std::min(seq_len, model.config().max_seq_len);
  const int64_t count = std::min<int64_t>(max_sequences, static_cast<int64_t>(stream.size()) / (seq_len + 1));
  if (count < 1)
    return absl::InvalidArgumentError(absl::StrCat("evaluation data: ", stream.size(),
                                                   " tokens, fewer than one sequence of ", seq_len + 1));
  auto tables = StackRopeTables(model.config(), routers.expert_bases);
  double total = 0;
  for (int64_t i = 0; i < count; ++i) {
    std::vector<int64_t> ids(stream.begin() + i * (seq_len + 1), stream.begin() + (i + 1) * (seq_len + 1));
    total += SequenceLoss(model, *tables, routers, torch::tensor(ids).view({1, -1}), nullptr).item<double>();
  }
  return total / count;
}

absl::StatusOr<double> EvaluateLoss(const Model& model, const MoiceRouters& routers,
                                    const std::vector<ScoredExample>& examples, int max_examples) {
  c10::InferenceMode inference_mode;
  const int64_t count = std::min<int64_t>(max_examples, static_cast<int64_t>(examples.size()));
  if (auto status = ValidateExamples(examples, count, model.config().max_seq_len, "evaluation"); !status.ok())
    return status;
  auto tables = StackRopeTables(model.config(), routers.expert_bases);
  double total = 0;
  for (int64_t i = 0; i < count; ++i) {
    auto w = ExampleWindow(examples[i]);
    total += SequenceLoss(model, *tables, routers, torch::tensor(w.ids).view({1, -1}), nullptr, w.first_scored).item<double>();
  }
  return total / count;
}

namespace {

// Trains on the windows `next_window` draws (it is given the seeded generator).
absl::StatusOr<MoiceRouters> Train(const Model& model, const std::function<Window(std::mt19937_64&)>& next_window,
                                   const RouterTrainingOptions& o,
                                   const std::function<void(const TrainingProgress&)>& on_step) {
  PositionConfig check;
  check.mode = PositionMode::kMoice;
  check.expert_bases = o.expert_bases;
  check.top_k = o.top_k;
  auto status = ValidatePositionConfig(check);
  if (!status.ok()) return status;

  MoiceRouters routers = MoiceRouters::Random(model.config(), o.expert_bases, o.top_k, o.seed);
  std::vector<at::Tensor> params;
  for (auto& l : routers.layers)
    for (at::Tensor* t : {&l.w1, &l.w2, &l.w3}) {
      t->set_requires_grad(true);
      params.push_back(*t);
    }
  torch::optim::AdamW optimizer(params, torch::optim::AdamWOptions(o.lr).weight_decay(0));
  auto tables = StackRopeTables(model.config(), o.expert_bases);
  std::mt19937_64 rng(o.seed);

  for (int step = 1; step <= o.steps; ++step) {
    auto t0 = std::chrono::steady_clock::now();
    optimizer.zero_grad();
    double step_loss = 0, step_aux = 0;
    int64_t step_tokens = 0;
    const int micro = o.batch * o.grad_accum;
    for (int i = 0; i < micro; ++i) {
      const Window w = next_window(rng);
      step_tokens += static_cast<int64_t>(w.ids.size()) - 1;
      std::vector<at::Tensor> probs;
      auto ce = SequenceLoss(model, *tables, routers, torch::tensor(w.ids).view({1, -1}), &probs, w.first_scored);
      auto aux = LoadBalancingLoss(probs, o.top_k);
      auto loss = (ce + o.aux_coef * aux) / micro;
      loss.backward();
      step_loss += ce.item<double>() / micro;
      step_aux += aux.item<double>() / micro;
    }
    torch::nn::utils::clip_grad_norm_(params, o.clip);
    optimizer.step();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (on_step) on_step({step, o.steps, step_loss, step_aux, step_tokens / seconds});
  }
  for (auto& l : routers.layers)
    for (at::Tensor* t : {&l.w1, &l.w2, &l.w3}) *t = t->detach().clone();
  return routers;
}

}  // namespace

namespace {

absl::Status ValidateOptions(const RouterTrainingOptions& o) {
  if (o.steps < 1 || o.batch < 1 || o.grad_accum < 1 || o.seq_len < 2)
    return absl::InvalidArgumentError("steps, batch and grad_accum must be >= 1 and seq_len >= 2");
  return absl::OkStatus();
}

absl::StatusOr<MoiceRouters> TrainCatching(const Model& model, const std::function<Window(std::mt19937_64&)>& next_window,
                                           const RouterTrainingOptions& options,
                                           const std::function<void(const TrainingProgress&)>& on_step) {
  try {
    return Train(model, next_window, options, on_step);
  } catch (const c10::Error& e) {  // LibTorch reports through exceptions; callers get a Status
    return absl::InternalError(absl::StrCat("router training failed: ", e.what_without_backtrace()));
  }
}

}  // namespace

absl::StatusOr<MoiceRouters> TrainRouters(const Model& model, const std::vector<int>& stream,
                                          const RouterTrainingOptions& options,
                                          const std::function<void(const TrainingProgress&)>& on_step) {
  if (auto status = ValidateOptions(options); !status.ok()) return status;
  const int seq_len = std::min(options.seq_len, model.config().max_seq_len);
  if (static_cast<int64_t>(stream.size()) < seq_len + 1)
    return absl::InvalidArgumentError(absl::StrCat("training data: ", stream.size(),
                                                   " tokens, fewer than one sequence of ", seq_len + 1));
  // Windows of seq_len + 1 consecutive tokens at uniform offsets, every target scored.
  std::uniform_int_distribution<int64_t> offset(0, static_cast<int64_t>(stream.size()) - seq_len - 1);
  return TrainCatching(model, [&](std::mt19937_64& rng) {
    const int64_t at = offset(rng);
    return Window{std::vector<int64_t>(stream.begin() + at, stream.begin() + at + seq_len + 1), 0};
  }, options, on_step);
}

absl::StatusOr<MoiceRouters> TrainRouters(const Model& model, const std::vector<ScoredExample>& examples,
                                          const RouterTrainingOptions& options,
                                          const std::function<void(const TrainingProgress&)>& on_step) {
  if (auto status = ValidateOptions(options); !status.ok()) return status;
  if (auto status = ValidateExamples(examples, static_cast<int64_t>(examples.size()), model.config().max_seq_len,
                                     "training");
      !status.ok())
    return status;
  std::uniform_int_distribution<size_t> pick(0, examples.size() - 1);
  return TrainCatching(model, [&](std::mt19937_64& rng) { return ExampleWindow(examples[pick(rng)]); },
                       options, on_step);
}

}  // namespace stave
