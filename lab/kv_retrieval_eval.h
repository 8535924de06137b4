// The key-value retrieval evaluation behind `stave eval kv-retrieval`: exact-match accuracy per
// position mode, record count and gold position, with Wilson 95 % confidence intervals. The model
// is behind a callback (in-process or through staved), so the bookkeeping is tested on its own.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace stave {

struct KvEvalOptions {
  std::vector<int> records;     // record counts
  std::vector<int> positions;   // 1-based gold positions (those beyond a record count are
                                // skipped for it); empty = every position
  int samples = 10;             // examples per (record count, position); the same in every mode
  std::vector<std::string> modes;
  uint64_t seed = 0;
};

struct Interval {
  double low = 0, high = 0;
};

// Wilson score interval for a binomial proportion (better than the normal approximation at the
// small counts and extreme accuracies seen here).
Interval WilsonInterval(int correct, int total, double z = 1.959964);

struct KvEvalCell {
  std::string mode;
  int records = 0, position = 0;  // position: 1-based; 0 = all positions together
  int correct = 0, total = 0;
  double accuracy = 0;
  Interval ci;
  double prompt_tokens = 0;  // mean, when the answerer reports it
};

struct KvAnswer {
  std::string completion;
  int prompt_tokens = 0;
};

// Answers `prompt` in `mode` (a label from KvEvalOptions::modes).
using KvAnswerer = std::function<absl::StatusOr<KvAnswer>(const std::string& mode, const std::string& prompt)>;

// Cells per (mode, records, position), then per (mode, records) over all positions (position 0).
absl::StatusOr<std::vector<KvEvalCell>> RunKvRetrievalEval(
    const KvEvalOptions& options, const KvAnswerer& answer,
    const std::function<void(int done, int total)>& progress = nullptr);

// "all" -> {} (every position), else a comma-separated list of positive integers.
absl::StatusOr<std::vector<int>> ParsePositions(const std::string& text);

// CSV with a header: mode,records,position,correct,total,accuracy,ci_low,ci_high,prompt_tokens.
std::string KvEvalCsv(const std::vector<KvEvalCell>& cells);

}  // namespace stave
