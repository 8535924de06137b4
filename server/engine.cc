#include "server/engine.h"

#include <exception>

#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"

namespace stave::server {

Engine::Engine(const Model& model, KvPool pool, EngineOptions options)
    : options_(std::move(options)),
      scheduler_(model, std::move(pool),
                 SchedulerOptions{.max_batch_tokens = options_.max_batch_tokens, .max_running = options_.max_active}),
      pool_blocks_(scheduler_.pool().total_blocks()),
      block_bytes_(KvPool::BlockBytes(model.config(), scheduler_.pool().block_size())),
      block_size_(scheduler_.pool().block_size()),
      thread_([this] { Run(); }) {}

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

Sequence::Step FailedStep(absl::Status status) {
  Sequence::Step step;
  step.finished = true;
  step.finish_reason = "error";
  step.status = std::move(status);
  return step;
}

// Tells a job's caller it will not run (cancelled, abandoned or the engine stopping).
void ReportCancelled(EngineJob& job) {
  if (job.task) job.task(true);
  else job.on_step(CancelledStep());
}

}  // namespace

absl::Status Engine::CheckFits(const Sequence& seq) const {
  const auto& rt = seq.runtime();
  const int64_t rows = rt.key_rows() + rt.value_rows();
  const int64_t needed = rows * ((seq.capacity() + block_size_ - 1) / block_size_);
  if (needed <= pool_blocks_) return absl::OkStatus();
  return absl::ResourceExhaustedError(absl::StrCat(
      "KV cache: this request needs ", (needed * block_bytes_ + (1 << 20) - 1) >> 20, " MiB (", seq.capacity(),
      " positions x ", rows, " cache rows) but the whole pool holds ", (pool_blocks_ * block_bytes_) >> 20,
      " MiB (staved --kv-cache-mb); use fewer buckets or experts, fewer tokens or a larger pool"));
}

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
      job->submitted = std::chrono::steady_clock::now();
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
  wake_.notify_one();  // the engine thread drops a running one at its next step
}

int Engine::queued() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return static_cast<int>(queue_.size());
}

void Engine::Report(int queued, int batch_rows) {
  EngineLoad load;
  load.queued = queued + scheduler_.waiting();
  load.active = scheduler_.running();
  load.kv_blocks_total = scheduler_.pool().total_blocks();
  load.kv_blocks_used = load.kv_blocks_total - scheduler_.pool().free_blocks();
  load.preemptions = scheduler_.preemptions();
  load.batch_rows = batch_rows;
  active_ = load.active + scheduler_.waiting();
  const bool changed = load.queued != reported_.queued || load.active != reported_.active ||
                       load.kv_blocks_used != reported_.kv_blocks_used || load.preemptions != reported_.preemptions;
  if (options_.on_load && (changed || batch_rows > 0)) options_.on_load(load);
  reported_ = load;
}

void Engine::Run() {
  bool idle = false;  // the last step ran no row
  while (true) {
    int queued = 0;
    std::vector<std::shared_ptr<EngineJob>> gone, admitted;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      // Work: queued jobs, or sequences that ran last step. A step that ran nothing (which should
      // not happen: an empty pool always admits the head) waits instead of spinning.
      wake_.wait_for(lock, std::chrono::seconds(1),
                     [&] { return stopping_ || !queue_.empty() || (!jobs_.empty() && !idle); });
      if (stopping_) break;
      gone = TakeGoneLocked();
      // Into the scheduler up to max_active; it gives them KV memory when they fit.
      while (!queue_.empty() && static_cast<int>(jobs_.size() + admitted.size()) < options_.max_active) {
        admitted.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      queued = static_cast<int>(queue_.size());
    }
    for (auto& g : gone) ReportCancelled(*g);
    const auto now = std::chrono::steady_clock::now();
    for (auto& job : admitted) {
      job->admitted = now;
      if (options_.on_queue_time) options_.on_queue_time(std::chrono::duration<double>(now - job->submitted).count());
      if (job->task) {  // Score: runs once, between steps
        job->task(job->Gone());
        continue;
      }
      Sequence* seq = job->sequence.get();
      auto status = scheduler_.Add(seq);
      if (!status.ok()) {
        job->on_step(FailedStep(status));
        continue;
      }
      jobs_.emplace(seq, std::move(job));
    }
    // Cancelled or expired while running: out of the batch now, blocks freed.
    for (auto it = jobs_.begin(); it != jobs_.end();) {
      if (it->second->Gone()) {
        scheduler_.Remove(it->first);
        it->second->on_step(CancelledStep());
        it = jobs_.erase(it);
      } else {
        ++it;
      }
    }
    std::vector<Scheduler::Output> outputs;
    try {
      outputs = scheduler_.Step();
    } catch (const std::exception& e) {
      // The batch shared one forward: the requests in it fail, the others and the engine go on.
      const auto members = scheduler_.last_members();
      spdlog::error("an engine step failed; its {} requests fail: {}", members.size(), e.what());
      const auto status = absl::InternalError(absl::StrCat("generation failed inside the engine: ", e.what()));
      for (Sequence* seq : members) {
        scheduler_.Remove(seq);
        auto it = jobs_.find(seq);
        if (it == jobs_.end()) continue;
        it->second->on_step(FailedStep(status));
        jobs_.erase(it);
      }
    }
    for (auto& out : outputs) {
      auto it = jobs_.find(out.sequence);
      if (it == jobs_.end()) continue;
      it->second->on_step(out.step);
      if (out.step.finished) jobs_.erase(it);  // the scheduler has freed its blocks
    }
    idle = scheduler_.last_batch_rows() == 0;
    Report(queued, scheduler_.last_batch_rows());
  }
  std::deque<std::shared_ptr<EngineJob>> left;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    left.swap(queue_);
  }
  for (auto& [seq, job] : jobs_) {
    scheduler_.Remove(seq);
    ReportCancelled(*job);
  }
  jobs_.clear();
  for (auto& job : left) ReportCancelled(*job);
  Report(0, 0);
}

}  // namespace stave::server
