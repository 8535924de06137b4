// The stave subcommands. Each Add*Command registers its flags on the app and a callback that runs
// it; failures are reported as absl::Status and turned into an exit code once, in main.
#pragma once

#include <CLI/CLI.hpp>

#include "absl/status/status.h"

namespace stave::cli {

// Set by a subcommand's callback; main prints it and exits non-zero when not OK.
absl::Status& CommandStatus();

void AddGenerateCommand(CLI::App& app);
void AddConvertCommand(CLI::App& app);
void AddBenchCommand(CLI::App& app);
void AddBasesCommand(CLI::App& app);
void AddWaveformCommand(CLI::App& app);
void AddTrainCommand(CLI::App& app);
void AddEvalCommand(CLI::App& app);
void AddTrainRouterCommand(CLI::App& app);
void AddHealthCommand(CLI::App& app);
void AddConfigCommand(CLI::App& app);
void AddLoadtestCommand(CLI::App& app);
void AddTokenizeCommand(CLI::App& app);

}  // namespace stave::cli
