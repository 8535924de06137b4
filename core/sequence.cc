#include "core/sequence.h"

#include <torch/torch.h>

#include <stdexcept>

#include "absl/strings/str_cat.h"
#include "core/bucket_fusion.h"
#include "core/scheduler.h"
#include "core/utf8.h"

namespace stave {
namespace {

// Length of the longest suffix of `text` that is a proper prefix of some stop string: text that
// may still turn into a stop string and must not be released yet.
size_t StopPrefixHoldback(const std::string& text, const std::vector<std::string>& stops) {
  size_t hold = 0;
  for (const auto& s : stops)
    for (size_t n = std::min(s.size() - 1, text.size()); n > hold; --n)
      if (text.compare(text.size() - n, n, s, 0, n) == 0) {
        hold = n;
        break;
      }
  return hold;
}

// Bytes at the end of `text` that begin a UTF-8 character not yet complete.
size_t IncompleteUtf8Tail(const std::string& text) {
  for (size_t back = 1; back <= std::min<size_t>(4, text.size()); ++back) {
    unsigned char c = static_cast<unsigned char>(text[text.size() - back]);
    if ((c & 0xC0) == 0x80) continue;  // continuation byte: keep looking for the lead byte
    size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    return need > back ? back : 0;
  }
  return 0;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Sequence>> Sequence::Create(const Model& model,
                                                           std::vector<int> prompt_ids,
                                                           const GenerationParams& params,
                                                           PositionCache* cache) {
  const int ctx = model.config().max_seq_len;
  if (prompt_ids.empty()) return absl::InvalidArgumentError("prompt: no tokens to start from");
  for (int id : prompt_ids)
    if (id < 0 || id >= model.config().vocab_size)
      return absl::InvalidArgumentError(absl::StrCat("prompt: token id ", id, " outside the vocabulary"));
  if (static_cast<int>(prompt_ids.size()) >= ctx)
    return absl::InvalidArgumentError(absl::StrCat("prompt: ", prompt_ids.size(),
                                                   " tokens leave no room in the model's context of ",
                                                   ctx, " tokens"));
  if (params.max_tokens <= 0)
    return absl::InvalidArgumentError(absl::StrCat("max_tokens must be >= 1, got ", params.max_tokens));
  for (const auto& s : params.stop)
    if (s.empty()) return absl::InvalidArgumentError("stop: stop strings must not be empty");
  auto status = ValidateSamplingParams(params.sampling);
  if (!status.ok()) return status;
  // Room for the prompt and every generated token but the last (which is never fed back).
  const int capacity = static_cast<int>(
      std::min<int64_t>(ctx, static_cast<int64_t>(prompt_ids.size()) + params.max_tokens));
  auto runtime = PreparePosition(model, params.position, cache);
  if (!runtime.ok()) return runtime.status();
  // Buckets multiply the KV cache by the branch count: check it fits before running.
  if (params.kv_budget_mb > 0) {
    status = CheckKvBudget(*runtime, model.config(), capacity, params.kv_budget_mb);
    if (!status.ok()) return status;
  }
  return std::unique_ptr<Sequence>(
      new Sequence(model, std::move(prompt_ids), params, capacity, *std::move(runtime)));
}

Sequence::Sequence(const Model& model, std::vector<int> prompt_ids, const GenerationParams& params,
                   int capacity, PositionRuntime runtime)
    : model_(model),
      prompt_ids_(std::move(prompt_ids)),
      params_(params),
      sampler_(params.sampling),
      runtime_(std::move(runtime)),
      capacity_(capacity) {}

Sequence::~Sequence() = default;

absl::StatusOr<std::unique_ptr<Sequence>> Sequence::CreateScoring(const Model& model, std::vector<int> prompt_ids,
                                                                  std::vector<int> continuation_ids,
                                                                  const PositionConfig& position,
                                                                  PositionCache* cache) {
  if (prompt_ids.empty()) return absl::InvalidArgumentError("prompt: no tokens to score from");
  if (continuation_ids.empty()) return absl::InvalidArgumentError("continuation: must not be empty");
  const int total = static_cast<int>(prompt_ids.size() + continuation_ids.size());
  if (total > model.config().max_seq_len)
    return absl::InvalidArgumentError(absl::StrCat("continuation: prompt and continuation are ", total,
                                                   " tokens, over the model's context of ",
                                                   model.config().max_seq_len));
  for (int id : prompt_ids)
    if (id < 0 || id >= model.config().vocab_size)
      return absl::InvalidArgumentError(absl::StrCat("prompt: token id ", id, " outside the vocabulary"));
  for (int id : continuation_ids)
    if (id < 0 || id >= model.config().vocab_size)
      return absl::InvalidArgumentError(absl::StrCat("continuation: token id ", id, " outside the vocabulary"));
  auto runtime = PreparePosition(model, position, cache);
  if (!runtime.ok()) return runtime.status();
  const int prompt_length = static_cast<int>(prompt_ids.size());
  std::vector<int> fed = std::move(prompt_ids);
  fed.insert(fed.end(), continuation_ids.begin(), continuation_ids.end() - 1);  // the last is never fed
  GenerationParams params;
  params.position = position;
  params.max_tokens = 1;
  const int capacity = static_cast<int>(fed.size());
  auto seq = std::unique_ptr<Sequence>(new Sequence(model, std::move(fed), params, capacity, *std::move(runtime)));
  seq->scoring_ = true;
  seq->continuation_start_ = prompt_length;
  seq->score_.token_ids = continuation_ids;
  seq->score_.logprobs.assign(continuation_ids.size(), 0.0);
  seq->score_greedy_.assign(continuation_ids.size(), true);
  seq->continuation_ = std::move(continuation_ids);
  return seq;
}

Sequence::Step Sequence::AcceptPositions(const at::Tensor& logits, int first) {
  c10::InferenceMode inference_mode;
  for (int64_t t = 0; t < logits.size(1); ++t) {
    // Position p predicts token p + 1: the continuation's token i sits at continuation_start_ + i.
    const int i = first + static_cast<int>(t) + 1 - continuation_start_;
    if (i < 0 || i >= static_cast<int>(continuation_.size())) continue;
    auto fused = FuseBranchLogits(logits.select(1, t), params_.position.fusion).to(torch::kDouble);
    auto logp = torch::log_softmax(fused, -1);
    score_.logprobs[i] = logp[continuation_[i]].item<double>();
    score_greedy_[i] = logp.argmax().item<int64_t>() == continuation_[i];
  }
  Step step;
  if (pending() > 0) return step;
  finished_ = true;
  step.finished = true;
  step.finish_reason = "scored";
  score_.total_logprob = 0;
  score_.is_greedy = true;
  for (size_t i = 0; i < continuation_.size(); ++i) {
    score_.total_logprob += score_.logprobs[i];
    score_.is_greedy = score_.is_greedy && score_greedy_[i];
  }
  return step;
}

int Sequence::pending() const {
  return static_cast<int>(prompt_ids_.size() + token_ids_.size()) - kv_.length;
}

std::vector<int64_t> Sequence::PendingTokens(int n) const {
  std::vector<int64_t> tokens;
  const int prompt = static_cast<int>(prompt_ids_.size());
  for (int p = kv_.length; p < kv_.length + n; ++p)
    tokens.push_back(p < prompt ? prompt_ids_[p] : token_ids_[p - prompt]);
  return tokens;
}

std::string Sequence::Release(bool everything) {
  size_t end = text_.size();
  if (!everything) end -= std::max(StopPrefixHoldback(text_, params_.stop), IncompleteUtf8Tail(text_));
  if (end <= released_) return "";
  // Released pieces end on character boundaries (see above); byte-fallback tokens can still
  // produce stray bytes, which clients must never receive.
  std::string out = ToValidUtf8(std::string_view(text_).substr(released_, end - released_));
  released_ = end;
  return out;
}

Sequence::Step Sequence::Next() {
  if (finished_) {
    Step step;
    step.finished = true;
    return step;
  }
  if (own_scheduler_ == nullptr) {
    // Its own pool: just the blocks this sequence can need (Create checked the budget).
    SchedulerOptions options;
    options.max_batch_tokens = 1 << 30;  // the prompt in one forward, as a single stream wants
    options.max_running = 1;
    const int block = 16;
    const int64_t blocks = int64_t{runtime_.key_rows() + runtime_.value_rows()} * ((capacity_ + block - 1) / block);
    auto pool = KvPool::Create(model_.config(), blocks * KvPool::BlockBytes(model_.config(), block), block);
    if (!pool.ok()) throw std::runtime_error(std::string(pool.status().message()));
    own_scheduler_ = std::make_unique<Scheduler>(model_, *std::move(pool), options);
    auto added = own_scheduler_->Add(this);
    if (!added.ok()) throw std::runtime_error(std::string(added.message()));
  }
  while (true) {
    auto outputs = own_scheduler_->Step();
    for (auto& out : outputs)
      if (out.sequence == this) return std::move(out.step);
  }
}

Sequence::Step Sequence::Accept(const at::Tensor& branch_logits) {
  Step step;
  c10::InferenceMode inference_mode;
  auto logits = FuseBranchLogits(branch_logits, params_.position.fusion).contiguous();
  const int token = sampler_.Sample(
      std::span<const float>(logits.data_ptr<float>(), static_cast<size_t>(logits.size(-1))));

  auto finish = [&](const char* reason) {
    finished_ = true;
    step.finished = true;
    step.finish_reason = reason;
  };
  if (token == model_.config().stop_id() && !params_.ignore_stop_token) {
    finish("eos");
    step.text = Release(true);
    return step;
  }
  const int prev = token_ids_.empty() ? prompt_ids_.back() : token_ids_.back();
  token_ids_.push_back(token);
  step.token = token;
  if (params_.logprobs) step.logprob = torch::log_softmax(logits.reshape({-1}).to(torch::kDouble), -1)[token].item<double>();
  if (model_.tokenizer() != nullptr) text_ += model_.tokenizer()->DecodeToken(prev, token);

  // A stop string ends the text right before it. Only the tail can hold a new match.
  size_t longest_stop = 0;
  for (const auto& s : params_.stop) longest_stop = std::max(longest_stop, s.size());
  const size_t search_from = released_ > longest_stop ? released_ - longest_stop : 0;
  size_t cut = std::string::npos;
  for (const auto& s : params_.stop) cut = std::min(cut, text_.find(s, search_from));
  if (cut != std::string::npos) {
    text_.resize(cut);
    finish("stop");
  } else if (static_cast<int>(token_ids_.size()) >= params_.max_tokens ||
             static_cast<int>(prompt_ids_.size() + token_ids_.size()) >= model_.config().max_seq_len) {
    finish("length");
  }
  step.text = Release(finished_);
  return step;
}

}  // namespace stave
