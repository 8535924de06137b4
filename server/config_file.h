// staved --config FILE: the position config as a YAML or JSON file (JSON is YAML too, so one
// parser reads both), applied at start and re-applied whenever its content changes, so a fleet
// can share one file (a Kubernetes ConfigMap). A file that fails to parse or validate leaves the
// running config in force; the error is logged, counted and shown by GetConfig.
//
//   mode: buckets            # vanilla | buckets | moice
//   bases: [10000, 17500, 18000]   # or bucket_count: 6 (the base search picks them)
//   fusion: logits           # logits | probs
//   expert_bases: [10000, 20000]
//   top_k: 2
//   router_path: router.safetensors   # relative to the file's directory
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "server/config_store.h"

namespace stave::server {

// The file's text -> a whole-config update; errors name the key. `dir` resolves a relative
// router_path.
absl::StatusOr<ConfigUpdate> ParseConfigText(const std::string& text, const std::string& dir);

class ConfigFileWatcher {
 public:
  // on_result(ok) after every reading of changed content (metrics).
  ConfigFileWatcher(std::string path, ConfigStore& store, std::chrono::milliseconds poll,
                    std::function<void(bool ok)> on_result);
  ~ConfigFileWatcher();

  // Reads and applies the file now; at start-up an error here should stop the server.
  absl::Status Load();
  // Polls the file in the background from now on.
  void Start();

 private:
  absl::Status Apply(const std::string& text);
  void Run();

  const std::string path_;
  ConfigStore& store_;
  const std::chrono::milliseconds poll_;
  std::function<void(bool)> on_result_;
  std::string last_text_;  // the content last read, applied or not: re-read only on change
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace stave::server
