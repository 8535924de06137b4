// stave waveform: plot (or tabulate) the RoPE waveform of a base set.
#include <cstdio>

#include "client/commands.h"
#include "client/flags.h"
#include "core/position_config.h"
#include "lab/waveform_plot.h"

namespace stave::cli {

void AddWaveformCommand(CLI::App& app) {
  struct Options {
    int head_dim = 0, max_distance = 0;
    std::string bases, out;
  };
  auto o = std::make_shared<Options>();
  auto* cmd = app.add_subcommand("waveform", "plot f_b(m) per base, the upper envelope and the shortest stave");
  cmd->add_option("--head-dim", o->head_dim, "attention head dimension")->required();
  cmd->add_option("--bases", o->bases, "comma-separated RoPE bases")->required();
  cmd->add_option("--max-distance", o->max_distance, "largest relative distance plotted")->required();
  cmd->add_option("--out", o->out, "output file: .png, .svg or .csv")->required();
  cmd->callback([o] {
    auto bases = ParseBaseList(o->bases, "--bases");
    if (!bases.ok()) {
      CommandStatus() = bases.status();
      return;
    }
    CommandStatus() = CheckWaveformArgs(o->out, o->head_dim, *bases, o->max_distance);
    if (CommandStatus().ok()) CommandStatus() = CheckWritable(o->out, "--out");
    if (CommandStatus().ok()) CommandStatus() = WriteWaveform(o->out, o->head_dim, *bases, o->max_distance);
    if (CommandStatus().ok()) std::fprintf(stderr, "wrote %s\n", o->out.c_str());
  });
}

}  // namespace stave::cli
