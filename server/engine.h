// The engine thread: owns the model's compute. Admitted work waits in a bounded queue; the thread
// runs up to max_active sequences and steps each in turn (one token each), so streams progress
// together, and hands each step to the sequence's sink. Cancellation is seen within one step,
// and a cancelled or expired request leaves the queue at once. A LibTorch error in one job fails
// that job (INTERNAL), never the process.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "core/sequence.h"

namespace stave::server {

// One request's work: a sequence to step, or a task run once (Score).
struct EngineJob {
  std::unique_ptr<Sequence> sequence;
  // Called on the engine thread with every step; the last has finished set (reason "cancelled"
  // when the client went away or the engine stopped).
  std::function<void(const Sequence::Step&)> on_step;
  // Instead of a sequence: run once on the engine thread. `cancelled` tells it the engine is
  // stopping or the caller left, so it should report cancellation instead of computing.
  std::function<void(bool cancelled)> task;
  std::atomic<bool> cancelled{false};
  // Optional: true once the caller is gone or its deadline passed (unary calls, which get no
  // cancellation callback). Checked with `cancelled` whenever the engine looks at the job.
  std::function<bool()> abandoned;

  bool Gone() const { return cancelled || (abandoned && abandoned()); }
};

struct EngineOptions {
  int queue_limit = 64;  // jobs waiting beyond max_active
  int max_active = 16;   // sequences stepped together
  // Called on the engine thread whenever the counts change (metrics).
  std::function<void(int queued, int active)> on_load;
};

class Engine {
 public:
  explicit Engine(EngineOptions options);
  ~Engine();  // stops the thread; jobs still queued or running are cancelled

  // RESOURCE_EXHAUSTED when the admission queue is full. Jobs cancelled or abandoned while
  // queued give up their place first, so they never keep a live request out.
  absl::Status Submit(std::shared_ptr<EngineJob> job);
  // A queued or running job was cancelled: leave the queue now rather than when the engine
  // reaches it (its cancellation is reported on the calling thread).
  void Cancelled();
  int active() const { return active_.load(); }
  int queued() const;

 private:
  void Run();
  void ReportLoad(int queued, int active);
  // Removes gone jobs from the queue (under mutex_) and returns them, to be reported as
  // cancelled by the caller once the lock is released.
  std::vector<std::shared_ptr<EngineJob>> TakeGoneLocked();

  const EngineOptions options_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::shared_ptr<EngineJob>> queue_;
  bool stopping_ = false;
  std::atomic<int> active_{0};
  int reported_queued_ = -1, reported_active_ = -1;  // engine thread only
  std::thread thread_;
};

}  // namespace stave::server
