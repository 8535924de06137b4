#include "core/default_model.h"

#include <filesystem>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace stave {

absl::StatusOr<std::string> DefaultModelPath() {
  namespace fs = std::filesystem;
  std::vector<fs::path> candidates;
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) candidates.push_back(exe.parent_path().parent_path().parent_path() / "models" / "default");
  candidates.push_back("/usr/share/stave/models/default");
  std::vector<std::string> tried;
  for (const auto& dir : candidates) {
    const fs::path normal = dir.lexically_normal();
    if (fs::exists(normal / "config.json", ec)) return normal.string();
    tried.push_back(normal.string());
  }
  return absl::NotFoundError(absl::StrCat("no --model given and the embedded default model is not in ",
                                          absl::StrJoin(tried, " or "), "; give --model PATH"));
}

}  // namespace stave
