#include "client/flags.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace stave::cli {

CLI::Validator AtLeast(int64_t min) {
  return CLI::Validator(
      [min](std::string& text) -> std::string {
        int64_t value = 0;
        if (!absl::SimpleAtoi(text, &value)) return absl::StrCat("'", text, "' is not an integer");
        if (value < min) return absl::StrCat("must be >= ", min, ", got ", value);
        return "";
      },
      absl::StrCat("INT>=", min));
}

CLI::Validator Positive() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        double value = 0;
        if (!absl::SimpleAtod(text, &value)) return absl::StrCat("'", text, "' is not a number");
        if (!(value > 0)) return absl::StrCat("must be > 0, got ", text);
        return "";
      },
      "NUMBER>0");
}

CLI::Option* AddThreadsFlag(CLI::App* cmd, int& threads, const std::string& help) {
  return cmd->add_option("--threads", threads, help)->check(AtLeast(0))->capture_default_str();
}

std::string OneLineFailure(const CLI::App* app, const CLI::Error& e) {
  std::string message = absl::StrReplaceAll(e.what(), {{"\n", "; "}});
  return absl::StrCat("stave: ", message, " (see --help)\n");
}

absl::Status CheckWritable(const std::string& path, absl::string_view flag) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    return absl::InvalidArgumentError(absl::StrCat(flag, " ", path, ": is a directory, not a file"));
  const bool existed = std::filesystem::exists(path, ec);
  // Append mode: an existing file is opened for writing without being truncated.
  std::FILE* f = std::fopen(path.c_str(), "ab");
  if (f == nullptr)
    return absl::InvalidArgumentError(
        absl::StrCat(flag, " ", path, ": cannot write it (", std::strerror(errno), ")"));
  std::fclose(f);
  if (!existed) std::filesystem::remove(path, ec);
  return absl::OkStatus();
}

}  // namespace stave::cli
