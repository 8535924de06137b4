#include "server/engine.h"

#include <exception>

#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"

namespace stave::server {

Engine::Engine(EngineOptions options) : options_(std::move(options)), thread_([this] { Run(); }) {}

Engine::~Engine() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

namespace {

Sequence::Step CancelledStep() {
  Sequence::Step step;
  step.finished = true;
  step.finish_reason = "cancelled";
  return step;
}

// Tells a job's caller it will not run (cancelled, abandoned or the engine stopping).
void ReportCancelled(EngineJob& job) {
  if (job.task) job.task(true);
  else job.on_step(CancelledStep());
}

// The exception boundary: a LibTorch error (or any other) in one job fails that job, and the
// engine goes on with the others.
Sequence::Step StepOrError(EngineJob& job) {
  try {
    return job.sequence->Next();
  } catch (const std::exception& e) {
    spdlog::error("a sequence failed and was dropped: {}", e.what());
    Sequence::Step step;
    step.finished = true;
    step.finish_reason = "error";
    step.status = absl::InternalError(absl::StrCat("generation failed inside the engine: ", e.what()));
    return step;
  }
}

}  // namespace

std::vector<std::shared_ptr<EngineJob>> Engine::TakeGoneLocked() {
  std::vector<std::shared_ptr<EngineJob>> gone;
  for (auto it = queue_.begin(); it != queue_.end();) {
    if ((*it)->Gone()) {
      gone.push_back(std::move(*it));
      it = queue_.erase(it);
    } else {
      ++it;
    }
  }
  return gone;
}

absl::Status Engine::Submit(std::shared_ptr<EngineJob> job) {
  std::vector<std::shared_ptr<EngineJob>> gone;
  absl::Status status;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    gone = TakeGoneLocked();
    if (stopping_) {
      status = absl::UnavailableError("staved is shutting down");
    } else if (static_cast<int>(queue_.size()) >= options_.queue_limit) {
      status = absl::ResourceExhaustedError(absl::StrCat(
          "the admission queue is full (", options_.queue_limit, " requests waiting behind ",
          options_.max_active, " running; staved --queue-size / --max-active); retry later"));
    } else {
      queue_.push_back(std::move(job));
    }
  }
  for (auto& g : gone) ReportCancelled(*g);  // outside the lock: callbacks take their own locks
  if (status.ok()) wake_.notify_one();
  return status;
}

void Engine::Cancelled() {
  std::vector<std::shared_ptr<EngineJob>> gone;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    gone = TakeGoneLocked();
  }
  for (auto& g : gone) ReportCancelled(*g);
  wake_.notify_one();  // the engine thread updates its load figures
}

int Engine::queued() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return static_cast<int>(queue_.size());
}

void Engine::ReportLoad(int queued, int active) {
  active_ = active;
  if (options_.on_load && (queued != reported_queued_ || active != reported_active_))
    options_.on_load(queued, active);
  reported_queued_ = queued;
  reported_active_ = active;
}

void Engine::Run() {
  std::list<std::shared_ptr<EngineJob>> running;
  while (true) {
    int queued = 0;
    std::vector<std::shared_ptr<EngineJob>> gone;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait_for(lock, std::chrono::seconds(1),
                     [&] { return stopping_ || !queue_.empty() || !running.empty(); });
      if (stopping_) break;
      gone = TakeGoneLocked();
      while (!queue_.empty() && static_cast<int>(running.size()) < options_.max_active) {
        running.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      queued = static_cast<int>(queue_.size());
    }
    for (auto& g : gone) ReportCancelled(*g);
    ReportLoad(queued, static_cast<int>(running.size()));
    // One step of every running sequence, round robin; tasks run once.
    for (auto it = running.begin(); it != running.end();) {
      EngineJob& job = **it;
      bool done = true;
      if (job.task) {
        job.task(job.Gone());
      } else {
        const Sequence::Step step = job.Gone() ? CancelledStep() : StepOrError(job);
        job.on_step(step);
        done = step.finished;
      }
      if (done) {
        job.sequence.reset();  // frees the KV cache now
        it = running.erase(it);
      } else {
        ++it;
      }
    }
    ReportLoad(queued, static_cast<int>(running.size()));
  }
  std::deque<std::shared_ptr<EngineJob>> left;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    left.swap(queue_);
  }
  for (auto& job : left) running.push_back(std::move(job));
  for (auto& job : running) ReportCancelled(*job);
  ReportLoad(0, 0);
}

}  // namespace stave::server
