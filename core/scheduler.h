// Continuous batching: each Step() builds ONE batch from every running sequence (a decode row per
// sequence and bucket branch, plus chunks of waiting prompts under a token budget) and runs one
// forward pass for all of it, whatever their position modes. KV memory comes from one paged
// pool: a waiting sequence holds none; a running one grows a block at a time; when the pool runs
// dry mid-generation the newest running sequence is preempted (its blocks freed, it waits again
// and is recomputed from its prompt and tokens so far, as vLLM does), so the oldest streams keep
// going. Not thread-safe: one engine thread owns it.
#pragma once

#include <cstdint>
#include <deque>
#include <vector>

#include "absl/status/status.h"
#include "core/kv_pool.h"
#include "core/model.h"
#include "core/sequence.h"

namespace stave {

struct SchedulerOptions {
  // Rows one step may compute: decode rows first, prompt chunks fill the rest. A prompt longer
  // than this is prefilled in chunks at the pace of the decoding streams (as many rows as they
  // have), so it cannot stall them; shorter ones go in whole.
  int max_batch_tokens = 256;
  int max_running = 64;  // sequences holding KV memory at once
};

class Scheduler {
 public:
  Scheduler(const Model& model, KvPool pool, SchedulerOptions options);

  // Queues `seq` (not owned; Remove it before destroying it). RESOURCE_EXHAUSTED, naming what it
  // needs and what the pool holds, when it could never fit even in an empty pool.
  absl::Status Add(Sequence* seq);
  // Takes `seq` out wherever it is and frees its blocks (finished, cancelled or failed).
  void Remove(Sequence* seq);

  struct Output {
    Sequence* sequence;
    Sequence::Step step;
  };
  // One forward over the batch it builds; the sequences that produced a token (finished ones
  // are removed). Empty when there was nothing to run.
  std::vector<Output> Step();

  int running() const { return static_cast<int>(running_.size()); }
  int waiting() const { return static_cast<int>(waiting_.size()); }
  const KvPool& pool() const { return pool_; }
  int64_t preemptions() const { return preemptions_; }
  int last_batch_rows() const { return last_batch_rows_; }
  // The sequences of the last batch built (those a failed forward concerns).
  const std::vector<Sequence*>& last_members() const { return last_members_; }

 private:
  // Frees `seq`'s blocks and puts it at the head of the waiting queue.
  void Preempt(Sequence* seq);
  // Reserves room for `positions` in `seq`'s tables, preempting the newest other running
  // sequences while the pool is short. False when even that is not enough.
  bool Grow(Sequence* seq, int positions);

  const Model& model_;
  KvPool pool_;
  const SchedulerOptions options_;
  std::vector<Sequence*> running_;  // admission order: the newest is preempted first
  std::deque<Sequence*> waiting_;
  int64_t preemptions_ = 0;
  int last_batch_rows_ = 0;
  std::vector<Sequence*> last_members_;
};

}  // namespace stave
