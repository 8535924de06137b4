// The engine thread: owns the model's compute. Admitted sequences wait in a bounded queue; the
// thread steps every active sequence in turn (one token each), so streams progress together,
// and hands each step to the sequence's sink. Cancellation is seen within one step.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <thread>

#include "absl/status/status.h"
#include "core/sequence.h"

namespace stave::server {

struct EngineJob {
  std::unique_ptr<Sequence> sequence;
  std::atomic<bool> cancelled{false};
  // Called on the engine thread with every step; the last has finished set (reason "cancelled"
  // when the client went away).
  std::function<void(const Sequence::Step&)> on_step;
};

class Engine {
 public:
  explicit Engine(int queue_limit);
  ~Engine();  // stops the thread; jobs still queued or running are cancelled

  // RESOURCE_EXHAUSTED when the admission queue is full.
  absl::Status Submit(std::shared_ptr<EngineJob> job);
  int active() const { return active_.load(); }
  int queued() const;

 private:
  void Run();

  const int queue_limit_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::shared_ptr<EngineJob>> queue_;
  bool stopping_ = false;
  std::atomic<int> active_{0};
  std::thread thread_;
};

}  // namespace stave::server
