#include "server/engine.h"

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

absl::Status Engine::Submit(std::shared_ptr<EngineJob> job) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) return absl::UnavailableError("staved is shutting down");
    if (static_cast<int>(queue_.size()) >= options_.queue_limit)
      return absl::ResourceExhaustedError(absl::StrCat(
          "the admission queue is full (", options_.queue_limit, " requests waiting behind ",
          options_.max_active, " running; staved --queue-size / --max-active); retry later"));
    queue_.push_back(std::move(job));
  }
  wake_.notify_one();
  return absl::OkStatus();
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

namespace {
Sequence::Step Cancelled() {
  Sequence::Step step;
  step.finished = true;
  step.finish_reason = "cancelled";
  return step;
}
}  // namespace

void Engine::Run() {
  std::list<std::shared_ptr<EngineJob>> running;
  while (true) {
    int queued = 0;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || !queue_.empty() || !running.empty(); });
      if (stopping_) break;
      while (!queue_.empty() && static_cast<int>(running.size()) < options_.max_active) {
        running.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      queued = static_cast<int>(queue_.size());
    }
    ReportLoad(queued, static_cast<int>(running.size()));
    // One step of every running sequence, round robin; tasks run once.
    for (auto it = running.begin(); it != running.end();) {
      EngineJob& job = **it;
      bool done = true;
      if (job.task) {
        job.task(job.cancelled);
      } else {
        const Sequence::Step step = job.cancelled ? Cancelled() : job.sequence->Next();
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
  for (auto& job : running) {
    if (job->task) job->task(true);
    else job->on_step(Cancelled());
  }
  ReportLoad(0, 0);
}

}  // namespace stave::server
