#include "server/side_worker.h"

#include "absl/strings/str_cat.h"

namespace stave::server {

SideWorker::SideWorker(std::string what) : what_(std::move(what)), thread_([this] { Run(); }) {}

SideWorker::~SideWorker() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

absl::Status SideWorker::TrySubmit(std::function<void()> job) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) return absl::UnavailableError("staved is shutting down");
    if (busy_) return absl::ResourceExhaustedError(absl::StrCat("another ", what_, " is running; retry when it ends"));
    busy_ = true;
    job_ = std::move(job);
  }
  wake_.notify_one();
  return absl::OkStatus();
}

void SideWorker::Run() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (true) {
    wake_.wait(lock, [this] { return stopping_ || job_ != nullptr; });
    if (job_ == nullptr) return;  // stopping, nothing left
    auto job = std::move(job_);
    job_ = nullptr;
    lock.unlock();
    job();
    lock.lock();
    busy_ = false;
  }
}

}  // namespace stave::server
