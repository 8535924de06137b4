// Reading a small text file whole (a config file, a token, a PEM bundle), with an error that
// names the path and the reason. Only regular files of bounded size are read, and opening never
// blocks: a config path replaced by a directory, a FIFO or a link to /dev/zero is an error, not
// an empty config, a hang or unbounded memory.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace stave {

inline constexpr int64_t kMaxTextFileBytes = int64_t{16} << 20;

// NOT_FOUND "cannot read PATH: <reason>" when the file cannot be opened; FAILED_PRECONDITION
// when PATH is not a regular file or is larger than max_bytes.
absl::StatusOr<std::string> ReadTextFile(const std::string& path, int64_t max_bytes = kMaxTextFileBytes);

}  // namespace stave
