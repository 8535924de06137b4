// The engine thread: owns the model's compute. Admitted work waits in a bounded queue holding no
// KV memory; the thread moves it into the Scheduler (core/scheduler.h), which runs every running
// sequence in ONE forward per step (continuous batching over a paged KV pool), and hands each
// step to the sequence's sink. A cancelled or expired request leaves the queue at once and the
// batch at the next step, its blocks freed. A LibTorch error fails the requests of that batch
// (they shared the forward), never the process.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "core/kv_pool.h"
#include "core/scheduler.h"
#include "core/sequence.h"

namespace stave::server {

// One request's work: a sequence to step, or a task run once (Score).
struct EngineJob {
  std::unique_ptr<Sequence> sequence;
  // Called on the engine thread with every step; the last has finished set (reason "cancelled"
  // when the client went away or the engine stopped; a status when it failed).
  std::function<void(const Sequence::Step&)> on_step;
  // Instead of a sequence: run once on the engine thread. `cancelled` tells it the engine is
  // stopping or the caller left, so it should report cancellation instead of computing.
  std::function<void(bool cancelled)> task;
  std::atomic<bool> cancelled{false};
  // Optional: true once the caller is gone or its deadline passed (unary calls, which get no
  // cancellation callback). Checked with `cancelled` whenever the engine looks at the job.
  std::function<bool()> abandoned;
  std::chrono::steady_clock::time_point submitted = std::chrono::steady_clock::now();
  // Set on the engine thread when the job leaves the queue, before its first on_step: a request's
  // own queue time for its log line (on_step runs on that thread and may read it).
  std::optional<std::chrono::steady_clock::time_point> admitted;

  bool Gone() const { return cancelled || (abandoned && abandoned()); }
};

// What the engine reports after every step (metrics).
struct EngineLoad {
  int queued = 0;  // waiting for KV memory: the admission queue and the scheduler's waiting line
  int active = 0;  // sequences holding KV memory
  int64_t kv_blocks_used = 0, kv_blocks_total = 0;
  int64_t preemptions = 0;  // since start
  int batch_rows = 0;       // rows of the step just run (0: none ran)
};

struct EngineOptions {
  int queue_limit = 256;         // jobs waiting beyond max_active
  int max_active = 64;           // sequences batched together
  int max_batch_tokens = 256;    // rows per step: decode rows first, prompt chunks fill the rest
  // Called on the engine thread after every step and whenever the counts change.
  std::function<void(const EngineLoad&)> on_load;
  // Called on the engine thread when a job leaves the queue, with the seconds it waited.
  std::function<void(double)> on_queue_time;
};

class Engine {
 public:
  Engine(const Model& model, KvPool pool, EngineOptions options);
  ~Engine();  // stops the thread; jobs still queued or running are cancelled

  // RESOURCE_EXHAUSTED when the admission queue is full. Jobs cancelled or abandoned while
  // queued give up their place first, so they never keep a live request out.
  absl::Status Submit(std::shared_ptr<EngineJob> job);
  // RESOURCE_EXHAUSTED, naming what it needs and the pool, when `sequence` could never fit in
  // the KV pool. Thread-safe (reads only the pool's fixed size).
  absl::Status CheckFits(const Sequence& sequence) const;
  // A queued or running job was cancelled: leave the queue now rather than when the engine
  // reaches it (its cancellation is reported on the calling thread).
  void Cancelled();
  int active() const { return active_.load(); }
  int queued() const;

 private:
  void Run();
  void Report(int queued, int batch_rows);
  // Removes gone jobs from the queue (under mutex_) and returns them, to be reported as
  // cancelled by the caller once the lock is released.
  std::vector<std::shared_ptr<EngineJob>> TakeGoneLocked();

  const EngineOptions options_;
  Scheduler scheduler_;  // engine thread only
  const int64_t pool_blocks_, block_bytes_;
  const int block_size_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::shared_ptr<EngineJob>> queue_;
  bool stopping_ = false;
  std::atomic<int> active_{0};
  std::map<Sequence*, std::shared_ptr<EngineJob>> jobs_;  // in the scheduler; engine thread only
  EngineLoad reported_;                                   // engine thread only
  std::thread thread_;
};

}  // namespace stave::server
