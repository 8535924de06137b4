// The kv-retrieval figure: exact-match accuracy against gold position, one line per position
// mode with 95 % interval bars, one panel per record count. Drawn with PLplot (cairo driver).
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "lab/kv_retrieval_eval.h"

namespace stave {

// --plot's format from its extension: .png or .svg (checked before the evaluation runs).
absl::Status CheckPlotPath(const std::string& path);

absl::Status PlotKvEval(const std::string& path, const std::vector<KvEvalCell>& cells,
                        const std::vector<std::string>& modes, const std::vector<int>& records);

}  // namespace stave
