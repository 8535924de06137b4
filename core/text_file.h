// Reading a small text file whole (a config file, a token, a PEM bundle), with an error that
// names the path and the reason.
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace stave {

// NOT_FOUND "cannot read PATH: <reason>" when the file cannot be opened.
absl::StatusOr<std::string> ReadTextFile(const std::string& path);

}  // namespace stave
