// stave: the command-line client. Subcommands with their own flags are handled by CLI11 (Debian's
// libcli11-dev), which absl flags cannot do per subcommand.
#include <cstdio>

#include "client/commands.h"
#include "client/flags.h"
#include "client/version.h"
#include "core/compute_threads.h"

namespace stave::cli {
absl::Status& CommandStatus() {
  static absl::Status status;
  return status;
}
}  // namespace stave::cli

int main(int argc, char** argv) {
  stave::ReexecWithShortOpenMpSpin(argv);  // before any thread exists: see core/compute_threads.h
  CLI::App app{"stave: Llama inference with Attention Buckets and MoICE position modes"};
  // Before the subcommands: each copies its parent's failure message when it is created.
  app.failure_message(stave::cli::OneLineFailure);
  app.set_version_flag("--version", stave::cli::VersionString(), "print the version and build type, then exit");
  app.require_subcommand(1);
  stave::cli::AddGenerateCommand(app);
  stave::cli::AddConvertCommand(app);
  stave::cli::AddBenchCommand(app);
  stave::cli::AddBasesCommand(app);
  stave::cli::AddWaveformCommand(app);
  stave::cli::AddTrainCommand(app);
  stave::cli::AddEvalCommand(app);
  stave::cli::AddTrainRouterCommand(app);
  stave::cli::AddHealthCommand(app);
  stave::cli::AddConfigCommand(app);
  stave::cli::AddLoadtestCommand(app);
  stave::cli::AddTokenizeCommand(app);
  // The commands whose work is lab/ (making and studying models; staved has none of it) are
  // listed apart in --help; their names are unchanged.
  for (const char* lab : {"waveform", "train", "eval", "train-router"})
    app.get_subcommand(lab)->group("Lab subcommands (training, evaluation, figures: lab/)");
  CLI11_PARSE(app, argc, argv);
  const absl::Status& status = stave::cli::CommandStatus();
  if (!status.ok()) {
    std::fprintf(stderr, "stave: %s\n", std::string(status.message()).c_str());
    return 1;
  }
  return 0;
}
