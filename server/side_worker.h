// One thread for slow, bounded configuration work (the base search), so that it never holds one
// of gRPC's request threads: with requests able to take those, two slow calls could stall every
// RPC, health checks included. One job at a time; a caller arriving while one runs is told to
// retry (RESOURCE_EXHAUSTED) instead of queueing work nobody bounds.
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/status.h"

namespace stave::server {

class SideWorker {
 public:
  explicit SideWorker(std::string what);  // `what` names the work in the busy message
  ~SideWorker();  // waits for the running job (bounded by its caller), then stops

  // Runs `job` on the worker thread. RESOURCE_EXHAUSTED when a job is running; UNAVAILABLE when
  // the worker is stopping.
  absl::Status TrySubmit(std::function<void()> job);

 private:
  void Run();

  const std::string what_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::function<void()> job_;
  bool busy_ = false, stopping_ = false;
  std::thread thread_;
};

}  // namespace stave::server
