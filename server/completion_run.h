// The engine side of one HTTP completion: its n sequences submitted as engine jobs, and their
// steps queued for the request's own thread, which waits on them (the engine thread never waits
// for a client). Cancel() (the client left, or staved is stopping) makes every job leave the
// queue at once and the batch at the next step, its KV blocks freed; destroying the run cancels.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "core/sequence.h"
#include "server/engine.h"
#include "server/metrics.h"

namespace stave::server {

class CompletionRun {
 public:
  struct Event {
    int index = 0;  // which sequence (choice)
    Sequence::Step step;
  };

  // Submits the sequences in order; when one is refused (queue full, staved stopping) the ones
  // already submitted are cancelled and the refusal returned.
  static absl::StatusOr<std::unique_ptr<CompletionRun>> Start(Engine& engine, Metrics& metrics,
                                                              std::vector<std::unique_ptr<Sequence>> sequences);
  ~CompletionRun();

  // The steps reported since the last call, waiting up to `timeout` for one (empty on timeout).
  std::vector<Event> Wait(std::chrono::milliseconds timeout);
  // Every sequence has reported its last step (and Wait has returned it).
  bool done() const;
  void Cancel();

  // For the request's log line: how long its first sequence waited for the engine and when the
  // first token of any sequence came (unset: not yet).
  struct Timing {
    std::optional<double> queue_seconds;
    std::optional<std::chrono::steady_clock::time_point> first_token;
  };
  Timing timing() const;

 private:
  struct Queue {
    mutable std::mutex mutex;
    std::condition_variable ready;
    std::deque<Event> events;
    Timing timing;  // written by the engine thread under `mutex`
  };

  CompletionRun(Engine& engine, int choices) : engine_(engine), queue_(std::make_shared<Queue>()), left_(choices) {}

  Engine& engine_;
  std::shared_ptr<Queue> queue_;  // shared with the jobs' callbacks, which may outlive the run
  std::vector<std::shared_ptr<EngineJob>> jobs_;
  int left_;  // sequences whose last step has not been returned by Wait
  bool cancelled_ = false;
};

}  // namespace stave::server
