// stave config get|set: read or change staved's position configuration (Config.GetConfig,
// Config.UpdateConfig). Changes go to new requests only; running requests keep their snapshot.
#include <cstdio>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "client/channel.h"
#include "client/commands.h"
#include "core/text_file.h"
#include "nlohmann/json.hpp"
#include "proto/position_proto.h"
#include "stave/v1/stave.grpc.pb.h"

namespace stave::cli {
namespace {

// Enum names as the CLI flags spell them (vanilla, probs); a number the client does not know
// (a newer server) is shown as such rather than failing the whole read.
std::string ModeName(stave::v1::PositionMode mode) {
  auto m = FromProto(mode);
  return m.ok() ? std::string(PositionModeName(*m)) : absl::StrCat("unknown (", static_cast<int>(mode), ")");
}

std::string FusionDisplayName(stave::v1::Fusion fusion) {
  auto f = FromProto(fusion);
  return f.ok() ? std::string(FusionName(*f)) : absl::StrCat("unknown (", static_cast<int>(fusion), ")");
}

void PrintConfig(const stave::v1::PositionConfig& c, bool json) {
  if (json) {
    nlohmann::json j = {
        {"version", c.version()},
        {"mode", ModeName(c.mode())},
        {"bases", std::vector<double>(c.bases().begin(), c.bases().end())},
        {"fusion", FusionDisplayName(c.fusion())},
        {"expert_bases", std::vector<double>(c.expert_bases().begin(), c.expert_bases().end())},
        {"top_k", c.top_k()},
        {"router", c.router()},
        {"config_file", c.config_file()},
        {"config_file_error", c.config_file_error()},
    };
    std::puts(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    return;
  }
  std::printf("version:      %llu\n", static_cast<unsigned long long>(c.version()));
  std::printf("mode:         %s\n", ModeName(c.mode()).c_str());
  auto list = [](const auto& bases) {
    return bases.empty() ? std::string("(none)") : absl::StrJoin(bases, ",");
  };
  std::printf("bases:        %s\n", list(c.bases()).c_str());
  std::printf("fusion:       %s\n", FusionDisplayName(c.fusion()).c_str());
  std::printf("expert bases: %s\n", list(c.expert_bases()).c_str());
  std::printf("top_k:        %u%s\n", c.top_k(), c.top_k() == 0 ? " (all experts)" : "");
  std::printf("router:       %s\n", c.router().empty() ? "(untrained)" : c.router().c_str());
  if (!c.config_file().empty()) std::printf("config file:  %s\n", c.config_file().c_str());
  if (!c.config_file_error().empty())
    std::printf("config file error: %s\n", c.config_file_error().c_str());
}

struct GetOptions {
  ChannelOptions channel;
  bool json = false;
};

absl::Status RunGet(const GetOptions& o) {
  auto channel = OpenChannel(o.channel);
  if (!channel.ok()) return channel.status();
  auto stub = stave::v1::Config::NewStub(*channel);
  stave::v1::PositionConfig config;
  grpc::ClientContext context;
  SetDeadline(context, o.channel.timeout_s);
  auto status = FromGrpc(stub->GetConfig(&context, stave::v1::GetConfigRequest(), &config),
                         o.channel.server, o.channel.timeout_s);
  if (!status.ok()) return status;
  PrintConfig(config, o.json);
  return absl::OkStatus();
}

struct SetOptions {
  ChannelOptions channel;
  std::string mode, bases, fusion, expert_bases, router, token_file;
  int bucket_count = 0, moice_top_k = 0;
  uint64_t expected_version = 0;
  bool json = false;
  // Which of the fields were given: only those go into the update.
  CLI::Option *mode_flag = nullptr, *bases_flag = nullptr, *bucket_count_flag = nullptr,
              *fusion_flag = nullptr, *expert_bases_flag = nullptr, *top_k_flag = nullptr,
              *router_flag = nullptr;
};

// The admin token: --token-file, else $STAVE_ADMIN_TOKEN, else none (the server decides whether
// updates need one). Surrounding whitespace is dropped: files usually end with a newline.
absl::StatusOr<std::string> AdminToken(const std::string& token_file) {
  if (token_file.empty()) {
    const char* env = std::getenv("STAVE_ADMIN_TOKEN");
    return env == nullptr ? "" : std::string(absl::StripAsciiWhitespace(env));
  }
  auto text = ReadTextFile(token_file);
  if (!text.ok()) return absl::InvalidArgumentError(absl::StrCat("--token-file: ", text.status().message()));
  std::string token(absl::StripAsciiWhitespace(*text));
  if (token.empty())
    return absl::InvalidArgumentError(absl::StrCat("--token-file ", token_file, ": the file is empty"));
  return token;
}

absl::StatusOr<stave::v1::UpdateConfigRequest> BuildUpdate(const SetOptions& o) {
  stave::v1::UpdateConfigRequest update;
  if (o.mode_flag->count()) {
    auto mode = ParsePositionMode(o.mode);
    if (!mode.ok()) return mode.status();
    update.set_mode(ToProto(*mode));
  }
  if (o.bases_flag->count()) {
    auto bases = ParseBaseList(o.bases, "--bases");
    if (!bases.ok()) return bases.status();
    if (bases->empty()) return absl::InvalidArgumentError("--bases: give at least one base");
    for (double b : *bases) update.add_bases(b);
  }
  if (o.bucket_count_flag->count()) {
    if (o.bases_flag->count())
      return absl::InvalidArgumentError(
          "give --bases or --bucket-count, not both (--bucket-count alone lets the server search "
          "the bases)");
    if (o.bucket_count < 1 || o.bucket_count > kMaxBuckets)
      return absl::InvalidArgumentError(absl::StrCat("--bucket-count: must be in 1..", kMaxBuckets));
    update.set_bucket_count(static_cast<uint32_t>(o.bucket_count));
  }
  if (o.fusion_flag->count()) {
    auto fusion = ParseFusion(o.fusion);
    if (!fusion.ok()) return fusion.status();
    update.set_fusion(ToProto(*fusion));
  }
  if (o.expert_bases_flag->count()) {
    auto bases = ParseBaseList(o.expert_bases, "--expert-bases");
    if (!bases.ok()) return bases.status();
    if (bases->empty()) return absl::InvalidArgumentError("--expert-bases: give at least one base");
    for (double b : *bases) update.add_expert_bases(b);
  }
  if (o.top_k_flag->count()) {
    if (o.moice_top_k < 0) return absl::InvalidArgumentError("--moice-top-k: must be >= 0 (0 = all experts)");
    update.set_top_k(static_cast<uint32_t>(o.moice_top_k));
  }
  if (o.router_flag->count()) update.set_router(o.router);
  update.set_expected_version(o.expected_version);
  return update;
}

absl::Status RunSet(const SetOptions& o) {
  auto update = BuildUpdate(o);
  if (!update.ok()) return update.status();
  if (!update->has_mode() && update->bases().empty() && update->bucket_count() == 0 &&
      !update->has_fusion() && update->expert_bases().empty() && !update->has_top_k() &&
      !update->has_router())
    return absl::InvalidArgumentError(
        "nothing to change: give at least one of --mode, --bases, --bucket-count, --fusion, "
        "--expert-bases, --moice-top-k, --router");
  auto token = AdminToken(o.token_file);
  if (!token.ok()) return token.status();
  auto channel = OpenChannel(o.channel);
  if (!channel.ok()) return channel.status();
  auto stub = stave::v1::Config::NewStub(*channel);
  grpc::ClientContext context;
  SetDeadline(context, o.channel.timeout_s);
  if (!token->empty()) context.AddMetadata("authorization", absl::StrCat("Bearer ", *token));
  stave::v1::PositionConfig config;
  auto status = FromGrpc(stub->UpdateConfig(&context, *update, &config), o.channel.server,
                         o.channel.timeout_s);
  if (!status.ok()) return status;
  PrintConfig(config, o.json);
  return absl::OkStatus();
}

}  // namespace

void AddConfigCommand(CLI::App& app) {
  auto* config = app.add_subcommand("config", "read or change staved's position configuration");
  config->require_subcommand(1);

  auto g = std::make_shared<GetOptions>();
  auto* get = config->add_subcommand("get", "print the server's current position configuration");
  AddServerFlags(get, g->channel)->required();
  get->add_flag("--json", g->json, "print one JSON object");
  get->callback([g] { CommandStatus() = RunGet(*g); });

  auto s = std::make_shared<SetOptions>();
  auto* set = config->add_subcommand(
      "set", "change the server's position configuration (only the flags given); prints the result");
  AddServerFlags(set, s->channel)->required();
  s->mode_flag = set->add_option("--mode", s->mode, "position mode: vanilla, buckets or moice")
                     ->check(CLI::IsMember({"vanilla", "buckets", "moice"}));
  s->bases_flag = set->add_option("--bases", s->bases, "bucket RoPE bases, comma-separated (the bucket count is their number)");
  s->bucket_count_flag = set->add_option("--bucket-count", s->bucket_count, "bucket count alone: the server searches the bases");
  s->fusion_flag = set->add_option("--fusion", s->fusion, "buckets: fuse logits or probabilities")
                       ->check(CLI::IsMember({"logits", "probs"}));
  s->expert_bases_flag = set->add_option("--expert-bases", s->expert_bases, "moice: expert RoPE bases, the model's own first");
  s->top_k_flag = set->add_option("--moice-top-k", s->moice_top_k, "moice: experts mixed per token and head (0 = all)");
  s->router_flag = set->add_option("--router", s->router, "moice: router name on the server (GetModelInfo lists them; \"\" = untrained routers)");
  set->add_option("--expected-version", s->expected_version,
                  "apply only if the server is at this version (0 = unconditionally)")
      ->capture_default_str();
  set->add_option("--token-file", s->token_file, "file holding the admin token (default: $STAVE_ADMIN_TOKEN)");
  set->add_flag("--json", s->json, "print the resulting configuration as one JSON object");
  set->callback([s] { CommandStatus() = RunSet(*s); });
}

}  // namespace stave::cli
