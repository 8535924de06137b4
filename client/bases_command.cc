// stave bases search: propose complementary RoPE bases (greedy crest/trough cover search), here
// or with --server by the server for its own model (Config.SearchBases).
#include <cstdio>

#include "absl/strings/str_join.h"
#include "client/channel.h"
#include "client/commands.h"
#include "core/base_search.h"
#include "nlohmann/json.hpp"
#include "stave/v1/stave.grpc.pb.h"

namespace stave::cli {
namespace {

struct SearchOptions {
  BaseSearchOptions search;
  ChannelOptions channel;  // --server set: the server searches for its model
  bool json = false;
  // Flags that describe the model; the server knows its own.
  std::vector<const CLI::Option*> model_flags;
};

// The server answers with the bases and the two shortest-stave values (no distances or window).
absl::Status RunRemoteSearch(const SearchOptions& o) {
  for (const CLI::Option* flag : o.model_flags)
    if (flag->count() > 0)
      return absl::InvalidArgumentError(flag->get_name() + " applies to the local search only; "
                                        "with --server the server uses its own model's values");
  auto channel = OpenChannel(o.channel);
  if (!channel.ok()) return channel.status();
  auto stub = stave::v1::Config::NewStub(*channel);
  stave::v1::SearchBasesRequest request;
  request.set_count(static_cast<uint32_t>(o.search.count));
  request.set_min_base(o.search.min_base);
  request.set_max_base(o.search.max_base);
  request.set_step(o.search.step);
  stave::v1::SearchBasesResponse response;
  grpc::ClientContext context;
  SetDeadline(context, o.channel.timeout_s);
  auto status = FromGrpc(stub->SearchBases(&context, request, &response), o.channel.server,
                         o.channel.timeout_s);
  if (!status.ok()) return status;
  if (o.json) {
    nlohmann::json j = {
        {"bases", std::vector<double>(response.bases().begin(), response.bases().end())},
        {"shortest_stave", {{"value", response.shortest_stave()}}},
        {"start_base_shortest_stave", {{"value", response.start_base_shortest_stave()}}},
    };
    std::puts(j.dump().c_str());
    return absl::OkStatus();
  }
  std::printf("bases: %s\n", absl::StrJoin(response.bases(), ",").c_str());
  std::printf("shortest stave of the set:        %.4f\n", response.shortest_stave());
  if (!response.bases().empty())
    std::printf("shortest stave of base %g alone: %.4f\n", response.bases(0),
                response.start_base_shortest_stave());
  return absl::OkStatus();
}

absl::Status RunSearch(const SearchOptions& o) {
  if (!o.channel.server.empty()) return RunRemoteSearch(o);
  if (o.search.head_dim <= 0)
    return absl::InvalidArgumentError(
        "--head-dim is required for the local search (or give --server to search on the server "
        "for its model)");
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
  auto* cmd = bases->add_subcommand("search", "greedy search for complementary bases (docs/methods.md section 3)");
  AddServerFlags(cmd, o->channel)->description("search on staved, for its model (then --head-dim, --context, --start and --window-* do not apply)");
  o->model_flags.push_back(cmd->add_option("--head-dim", o->search.head_dim, "attention head dimension (local search: required)"));
  o->model_flags.push_back(cmd->add_option("--context", o->search.context, "model context length (sets the default window)"));
  cmd->add_option("--count", o->search.count, "number of bases, the start base included")->required();
  o->model_flags.push_back(cmd->add_option("--start", o->search.start_base, "the model's own base")->capture_default_str());
  cmd->add_option("--min", o->search.min_base, "smallest candidate (default: start)");
  cmd->add_option("--max", o->search.max_base, "largest candidate (default: 3 x start)");
  cmd->add_option("--step", o->search.step, "candidate step (default: start / 20)");
  o->model_flags.push_back(cmd->add_option("--window-lo", o->search.m_lo, "smallest distance (default: context x 1000/4096)"));
  o->model_flags.push_back(cmd->add_option("--window-hi", o->search.m_hi, "largest distance (default: context - 6)"));
  cmd->add_flag("--json", o->json, "print one JSON object");
  cmd->callback([o] { CommandStatus() = RunSearch(*o); });
}

}  // namespace stave::cli
