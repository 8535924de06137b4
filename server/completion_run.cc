#include "server/completion_run.h"

namespace stave::server {

absl::StatusOr<std::unique_ptr<CompletionRun>> CompletionRun::Start(Engine& engine, Metrics& metrics,
                                                                    std::vector<std::unique_ptr<Sequence>> sequences) {
  std::unique_ptr<CompletionRun> run(new CompletionRun(engine, static_cast<int>(sequences.size())));
  const auto arrived = std::chrono::steady_clock::now();
  for (size_t i = 0; i < sequences.size(); ++i) {
    auto job = std::make_shared<EngineJob>();
    job->sequence = std::move(sequences[i]);
    // Engine thread: record, queue, wake the request's thread; never block on the client.
    // The job owns this callback, so the raw pointer lives as long as any call of it.
    job->on_step = [queue = run->queue_, &metrics, index = static_cast<int>(i), arrived, job = job.get(),
                    last = std::chrono::steady_clock::time_point()](const Sequence::Step& step) mutable {
      const auto now = std::chrono::steady_clock::now();
      if (step.token >= 0) {
        if (last == std::chrono::steady_clock::time_point())
          metrics.TimeToFirstToken(std::chrono::duration<double>(now - arrived).count());
        else
          metrics.InterTokenLatency(std::chrono::duration<double>(now - last).count());
        last = now;
        metrics.TokensGenerated(1);
      }
      {
        std::lock_guard<std::mutex> lock(queue->mutex);
        queue->events.push_back({index, step});
        Timing& t = queue->timing;
        if (index == 0 && !t.queue_seconds.has_value() && job->admitted.has_value())
          t.queue_seconds = std::chrono::duration<double>(*job->admitted - job->submitted).count();
        if (step.token >= 0 && !t.first_token.has_value()) t.first_token = now;
      }
      queue->ready.notify_one();
    };
    auto status = engine.Submit(job);
    if (!status.ok()) {
      run->Cancel();  // the ones already in: out of the queue now
      return status;
    }
    run->jobs_.push_back(std::move(job));
  }
  return run;
}

CompletionRun::~CompletionRun() {
  if (left_ > 0) Cancel();
}

void CompletionRun::Cancel() {
  if (cancelled_) return;
  cancelled_ = true;
  for (auto& job : jobs_) job->cancelled = true;
  if (!jobs_.empty()) engine_.Cancelled();  // queued jobs leave now; running ones at the next step
}

std::vector<CompletionRun::Event> CompletionRun::Wait(std::chrono::milliseconds timeout) {
  std::vector<Event> out;
  {
    std::unique_lock<std::mutex> lock(queue_->mutex);
    queue_->ready.wait_for(lock, timeout, [&] { return !queue_->events.empty(); });
    out.assign(std::make_move_iterator(queue_->events.begin()), std::make_move_iterator(queue_->events.end()));
    queue_->events.clear();
  }
  for (const auto& e : out)
    if (e.step.finished) --left_;
  return out;
}

bool CompletionRun::done() const { return left_ == 0; }

CompletionRun::Timing CompletionRun::timing() const {
  std::lock_guard<std::mutex> lock(queue_->mutex);
  return queue_->timing;
}

}  // namespace stave::server
