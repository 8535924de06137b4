#include "core/scheduler.h"

#include <torch/torch.h>

#include <algorithm>
#include <map>

#include "absl/strings/str_cat.h"
#include "core/transformer.h"

namespace stave {

Scheduler::Scheduler(const Model& model, KvPool pool, SchedulerOptions options)
    : model_(model), pool_(std::move(pool)), options_(options) {}

absl::Status Scheduler::Add(Sequence* seq) {
  const auto& rt = seq->runtime();
  const int64_t needed = pool_.BlocksFor(rt.key_rows(), rt.value_rows(), seq->capacity());
  if (needed > pool_.total_blocks()) {
    const int64_t block_bytes = KvPool::BlockBytes(model_.config(), pool_.block_size());
    return absl::ResourceExhaustedError(absl::StrCat(
        "KV cache: this request needs ", needed, " blocks (", (needed * block_bytes + (1 << 20) - 1) >> 20,
        " MiB for ", seq->capacity(), " positions x ", rt.key_rows() + rt.value_rows(),
        " cache rows) but the whole pool holds ", pool_.total_blocks(), " (",
        (pool_.total_blocks() * block_bytes) >> 20,
        " MiB, staved --kv-cache-mb); use fewer buckets or experts, fewer tokens or a larger pool"));
  }
  waiting_.push_back(seq);
  return absl::OkStatus();
}

void Scheduler::Remove(Sequence* seq) {
  pool_.Release(seq->kv());
  std::erase(running_, seq);
  std::erase(waiting_, seq);
}

void Scheduler::Preempt(Sequence* seq) {
  pool_.Release(seq->kv());
  std::erase(running_, seq);
  waiting_.push_front(seq);
  ++preemptions_;
}

bool Scheduler::Grow(Sequence* seq, int positions) {
  const auto& rt = seq->runtime();
  while (!pool_.Reserve(seq->kv(), rt.key_rows(), rt.value_rows(), positions)) {
    // Only sequences admitted after `seq` give way to it.
    auto self = std::find(running_.begin(), running_.end(), seq);
    if (self == running_.end() || std::next(self) == running_.end()) return false;
    Preempt(running_.back());
  }
  return true;
}

std::vector<Scheduler::Output> Scheduler::Step() {
  std::vector<BatchEntry> batch;
  std::vector<Sequence*> members;
  auto add = [&](Sequence* seq, int tokens) {
    const auto& rt = seq->runtime();
    BatchEntry e;
    e.kv = &seq->kv();
    e.tokens = seq->PendingTokens(tokens);
    e.rope = &rt.Rope(model_);
    e.moice = rt.routers.get();
    e.branches = rt.branches;
    e.all_logits = seq->scoring();
    batch.push_back(std::move(e));
    members.push_back(seq);
  };
  auto running = [&](Sequence* seq) { return std::find(running_.begin(), running_.end(), seq) != running_.end(); };
  // Every reservation that may preempt happens before any entry is added, so no entry ever
  // points at a sequence that lost its blocks (or is added twice after re-admission).
  // Decode rows first: every running sequence with one token to feed, oldest first; a sequence
  // that cannot grow even by preempting newer ones is preempted itself and waits.
  for (Sequence* seq : std::vector<Sequence*>(running_)) {
    if (seq->pending() != 1 || !running(seq)) continue;
    if (!Grow(seq, seq->kv().length + 1)) Preempt(seq);
  }
  int rows = 0;
  for (Sequence* seq : running_)
    if (seq->pending() == 1) rows += seq->branches();
  // Prompt chunks under the token budget: running sequences part-way through their prompt,
  // then waiting ones in arrival order (first come, first served: none overtakes the head). A
  // prompt that fits the budget goes in whole, so a burst of ordinary requests starts decoding
  // together. A longer one, while streams decode, takes at most as many rows a step as there are
  // decode rows (at least kMinPromptRows): each step then costs about two decode steps, and a
  // long prompt cannot stall the streams already decoding. Idle, prompts get the whole budget.
  constexpr int kMinPromptRows = 8;
  int budget = std::max(options_.max_batch_tokens - rows, 1);
  auto chunk_of = [&](Sequence* seq) {
    int allowance = budget;
    if (rows > 0 && static_cast<int>(seq->prompt_ids().size()) > options_.max_batch_tokens)
      allowance = std::min(allowance, std::max(rows, kMinPromptRows));
    return std::min(seq->pending(), std::max(1, allowance / seq->branches()));
  };
  std::map<Sequence*, int> chunks;  // running sequences part-way through their prompt
  for (Sequence* seq : std::vector<Sequence*>(running_)) {
    if (seq->pending() <= 1 || budget <= 0 || !running(seq)) continue;
    const int chunk = chunk_of(seq);
    if (!Grow(seq, seq->kv().length + chunk)) continue;  // waits for blocks (older streams finish)
    chunks[seq] = chunk;
    budget -= chunk * seq->branches();
  }
  // Growth may have preempted newer sequences: the batch is what is still running.
  for (Sequence* seq : running_) {
    if (seq->pending() == 1) add(seq, 1);
    else if (auto it = chunks.find(seq); it != chunks.end()) add(seq, it->second);
  }
  // Admission never preempts: waiting sequences take only free blocks.
  while (!waiting_.empty() && budget > 0 && static_cast<int>(running_.size()) < options_.max_running) {
    Sequence* seq = waiting_.front();
    const int chunk = chunk_of(seq);
    const auto& rt = seq->runtime();
    if (!pool_.Reserve(seq->kv(), rt.key_rows(), rt.value_rows(), seq->kv().length + chunk)) break;
    waiting_.pop_front();
    running_.push_back(seq);
    add(seq, chunk);
    budget -= chunk * seq->branches();
  }
  last_batch_rows_ = 0;
  for (const auto& e : batch) last_batch_rows_ += e.branches * static_cast<int>(e.tokens.size());
  if (batch.empty()) return {};

  last_members_ = members;  // if the forward throws, the engine fails exactly these
  c10::InferenceMode inference_mode;
  auto logits = model_.transformer().ForwardBatch(batch, pool_);
  std::vector<Output> outputs;
  for (size_t i = 0; i < members.size(); ++i) {
    Sequence* seq = members[i];
    if (seq->scoring()) {  // every position's logits count; done once everything is fed
      const int first = seq->kv().length - static_cast<int>(batch[i].tokens.size());
      Output out{seq, seq->AcceptPositions(logits[i], first)};
      if (!out.step.finished) continue;
      Remove(seq);
      outputs.push_back(std::move(out));
      continue;
    }
    if (seq->pending() != 0) continue;  // a prompt chunk short of the end: nothing to sample yet
    Output out{seq, seq->Accept(logits[i])};
    if (out.step.finished) Remove(seq);
    outputs.push_back(std::move(out));
  }
  return outputs;
}

}  // namespace stave
