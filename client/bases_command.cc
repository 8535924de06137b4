// stave bases search: propose complementary RoPE bases (greedy crest/trough cover search).
#include <cstdio>

#include "absl/strings/str_join.h"
#include "client/commands.h"
#include "core/base_search.h"
#include "nlohmann/json.hpp"

namespace stave::cli {
namespace {

struct SearchOptions {
  BaseSearchOptions search;
  bool json = false;
};

absl::Status RunSearch(const SearchOptions& o) {
  auto result = SearchBases(o.search);
  if (!result.ok()) return result.status();
  if (o.json) {
    nlohmann::json j = {
        {"bases", result->bases},
        {"window", {result->m_lo, result->m_hi}},
        {"shortest_stave", {{"value", result->stave.value}, {"distance", result->stave.distance}}},
        {"start_base_shortest_stave",
         {{"value", result->start_stave.value}, {"distance", result->start_stave.distance}}},
    };
    std::puts(j.dump().c_str());
    return absl::OkStatus();
  }
  std::printf("bases: %s\n", absl::StrJoin(result->bases, ",").c_str());
  std::printf("window: distances %d..%d\n", result->m_lo, result->m_hi);
  std::printf("shortest stave of the set:        %.4f at m=%d\n", result->stave.value, result->stave.distance);
  std::printf("shortest stave of base %g alone: %.4f at m=%d\n", result->bases.front(),
              result->start_stave.value, result->start_stave.distance);
  return absl::OkStatus();
}

}  // namespace

void AddBasesCommand(CLI::App& app) {
  auto* bases = app.add_subcommand("bases", "RoPE base tools");
  bases->require_subcommand(1);
  auto o = std::make_shared<SearchOptions>();
  auto* cmd = bases->add_subcommand("search", "greedy search for complementary bases (METHODS.md section 3)");
  cmd->add_option("--head-dim", o->search.head_dim, "attention head dimension")->required();
  cmd->add_option("--context", o->search.context, "model context length (sets the default window)");
  cmd->add_option("--count", o->search.count, "number of bases, the start base included")->required();
  cmd->add_option("--start", o->search.start_base, "the model's own base")->capture_default_str();
  cmd->add_option("--min", o->search.min_base, "smallest candidate (default: start)");
  cmd->add_option("--max", o->search.max_base, "largest candidate (default: 3 x start)");
  cmd->add_option("--step", o->search.step, "candidate step (default: start / 20)");
  cmd->add_option("--window-lo", o->search.m_lo, "smallest distance (default: context x 1000/4096)");
  cmd->add_option("--window-hi", o->search.m_hi, "largest distance (default: context - 6)");
  cmd->add_flag("--json", o->json, "print one JSON object");
  cmd->callback([o] { CommandStatus() = RunSearch(*o); });
}

}  // namespace stave::cli
