#include "lab/kv_retrieval_eval.h"

#include <cmath>
#include <map>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "lab/kv_retrieval.h"

namespace stave {

Interval WilsonInterval(int correct, int total, double z) {
  if (total <= 0) return {0, 1};
  const double n = total, p = correct / n, z2 = z * z;
  const double center = (p + z2 / (2 * n)) / (1 + z2 / n);
  const double half = z * std::sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n);
  return {std::max(0.0, center - half), std::min(1.0, center + half)};
}

absl::StatusOr<std::vector<int>> ParsePositions(const std::string& text) {
  if (text == "all") return std::vector<int>{};
  std::vector<int> positions;
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    int p = 0;
    if (!absl::SimpleAtoi(part, &p) || p < 1)
      return absl::InvalidArgumentError(absl::StrCat("--positions: '", std::string(part),
                                                     "' is not a position (1-based) or 'all'"));
    positions.push_back(p);
  }
  return positions;
}

absl::StatusOr<std::vector<KvEvalCell>> RunKvRetrievalEval(
    const KvEvalOptions& o, const KvAnswerer& answer, const std::function<void(int, int)>& progress) {
  if (o.records.empty() || o.modes.empty() || o.samples < 1)
    return absl::InvalidArgumentError("give at least one record count, one mode and samples >= 1");
  for (int r : o.records)
    if (r < 1 || r > kKvMaxRecords)
      return absl::InvalidArgumentError(absl::StrCat("--records: ", r, " is not a record count in 1..",
                                                     kKvMaxRecords, " (there are ", kKvMaxRecords, " distinct keys)"));
  // The grid first, so progress knows the total.
  struct Job {
    int records, position;
  };
  std::vector<Job> jobs;
  for (int r : o.records) {
    if (o.positions.empty()) {
      for (int p = 1; p <= r; ++p) jobs.push_back({r, p});
    } else {
      for (int p : o.positions)
        if (p <= r) jobs.push_back({r, p});
    }
  }
  if (jobs.empty()) return absl::InvalidArgumentError("no --positions within the --records counts");
  const int total = static_cast<int>(jobs.size() * o.modes.size()) * o.samples;
  int done = 0;

  std::vector<KvEvalCell> cells;
  std::map<std::pair<std::string, int>, KvEvalCell> per_count;
  for (const auto& job : jobs) {
    for (const auto& mode : o.modes) {
      KvEvalCell cell;
      cell.mode = mode;
      cell.records = job.records;
      cell.position = job.position;
      double tokens = 0;
      for (int s = 0; s < o.samples; ++s) {
        // Seeded by the example, not the mode: every mode answers the same prompts.
        auto ex = MakeKvRetrievalExample(job.records, job.position - 1, 1,
                                         MixSeed(o.seed, job.records, job.position, s));
        auto got = answer(mode, ex.prompt);
        if (!got.ok()) return got.status();
        cell.correct += ExtractKvValue(got->completion) == ex.records[job.position - 1].value;
        cell.total += 1;
        tokens += got->prompt_tokens;
        if (progress) progress(++done, total);
      }
      cell.accuracy = static_cast<double>(cell.correct) / cell.total;
      cell.ci = WilsonInterval(cell.correct, cell.total);
      cell.prompt_tokens = tokens / cell.total;
      auto& sum = per_count[{mode, job.records}];
      sum.mode = mode;
      sum.records = job.records;
      sum.prompt_tokens = (sum.prompt_tokens * sum.total + tokens) / (sum.total + cell.total);
      sum.correct += cell.correct;
      sum.total += cell.total;
      cells.push_back(cell);
    }
  }
  for (int r : o.records)
    for (const auto& mode : o.modes) {
      auto it = per_count.find({mode, r});
      if (it == per_count.end()) continue;
      KvEvalCell sum = it->second;
      sum.accuracy = static_cast<double>(sum.correct) / sum.total;
      sum.ci = WilsonInterval(sum.correct, sum.total);
      cells.push_back(sum);
      per_count.erase(it);  // a record count listed twice is reported once
    }
  return cells;
}

std::string KvEvalCsv(const std::vector<KvEvalCell>& cells) {
  std::string csv = "mode,records,position,correct,total,accuracy,ci_low,ci_high,prompt_tokens\n";
  for (const auto& c : cells) {
    // Mode labels may hold commas (buckets:B1,B2): quoted.
    absl::StrAppendFormat(&csv, "\"%s\",%d,%d,%d,%d,%.4f,%.4f,%.4f,%.1f\n", c.mode, c.records, c.position,
                          c.correct, c.total, c.accuracy, c.ci.low, c.ci.high, c.prompt_tokens);
  }
  return csv;
}

}  // namespace stave
