#include "server/engine.h"

#include "absl/strings/str_cat.h"

namespace stave::server {

Engine::Engine(int queue_limit) : queue_limit_(queue_limit), thread_([this] { Run(); }) {}

Engine::~Engine() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

absl::Status Engine::Submit(std::shared_ptr<EngineJob> job) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (static_cast<int>(queue_.size()) >= queue_limit_)
      return absl::ResourceExhaustedError(absl::StrCat(
          "the admission queue is full (", queue_limit_, " requests waiting; staved --queue-size)"));
    queue_.push_back(std::move(job));
  }
  wake_.notify_one();
  return absl::OkStatus();
}

int Engine::queued() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return static_cast<int>(queue_.size());
}

void Engine::Run() {
  std::list<std::shared_ptr<EngineJob>> running;
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || !queue_.empty() || !running.empty(); });
      if (stopping_) break;
      while (!queue_.empty()) {
        running.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    active_ = static_cast<int>(running.size());
    // One step of every running sequence, round robin.
    for (auto it = running.begin(); it != running.end();) {
      EngineJob& job = **it;
      Sequence::Step step;
      if (job.cancelled) {
        step.finished = true;
        step.finish_reason = "cancelled";
      } else {
        step = job.sequence->Next();
      }
      job.on_step(step);
      if (step.finished) {
        job.sequence.reset();  // frees the KV cache now
        it = running.erase(it);
      } else {
        ++it;
      }
    }
    active_ = static_cast<int>(running.size());
  }
  for (auto& job : running) {
    Sequence::Step step;
    step.finished = true;
    step.finish_reason = "cancelled";
    job->on_step(step);
  }
}

}  // namespace stave::server
