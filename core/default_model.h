// Where the embedded default model (models/default of the repository: a small Llama trained by
// `stave train` on key-value retrieval) is found when no --model is given.
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace stave {

// The first directory holding a config.json among: the source tree's models/default relative to
// the executable (build/bin/..), then /usr/share/stave/models/default (the container image).
absl::StatusOr<std::string> DefaultModelPath();

}  // namespace stave
