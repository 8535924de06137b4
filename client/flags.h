// Flag checks shared by the subcommands, so that a bad value is refused while parsing, with the
// same one-line message everywhere ("--threads: must be >= 0, got -1"), before any work starts.
#pragma once

#include <cstdint>
#include <string>

#include <CLI/CLI.hpp>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace stave::cli {

// An integer flag that must be at least `min`.
CLI::Validator AtLeast(int64_t min);
// A number (integer or not) that must be > 0.
CLI::Validator Positive();

// --threads help where 0 picks by model size (core/compute_threads.h, AutoThreads).
inline constexpr char kAutoThreadsHelp[] = "compute threads (0 = auto: one per usable CPU, 1 for models under 4M weights)";

// --threads N (0 = one per usable CPU), checked >= 0.
CLI::Option* AddThreadsFlag(CLI::App* cmd, int& threads,
                            const std::string& help = "compute threads (0 = one per usable CPU)");

// The whole failure on one line: "stave: MESSAGE (see --help)". CLI11's own message spans two
// and some of its validators' wording ("Number less or equal to 0") says little.
std::string OneLineFailure(const CLI::App* app, const CLI::Error& e);

// An output file (`flag` names it in the error) can be written: checked before the work that
// produces it, so that a typo costs a one-line error rather than a finished run whose result is
// lost, or PLplot's own multi-line abort. Leaves no file behind if there was none.
absl::Status CheckWritable(const std::string& path, absl::string_view flag);

}  // namespace stave::cli
