#include "server/generate_request.h"

#include <algorithm>
#include <filesystem>
#include <random>

#include "absl/strings/str_cat.h"
#include "proto/position_proto.h"

namespace stave::server {

absl::Status CheckTextSize(absl::string_view field, absl::string_view text) {
  if (text.size() <= kMaxRequestTextBytes) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", text.size(), " bytes, over the limit of ",
                                                 kMaxRequestTextBytes, " bytes per request"));
}

absl::StatusOr<PositionConfig> PositionFromRequest(const ServerState& state,
                                                   const stave::v1::PositionConfig& position) {
  auto config = FromProto(position);
  if (!config.ok()) return config.status();
  auto router = state.routers.PathOf(position.router());
  if (!router.ok()) return router.status();
  config->router_path = *router;
  auto status = ValidateForModel(state.model, *config, &state.position_cache);
  if (!status.ok()) return absl::InvalidArgumentError(state.routers.Redact(std::string(status.message())));
  return config;
}

absl::StatusOr<ResolvedPosition> ResolvePosition(const ServerState& state, bool has_override,
                                                 const stave::v1::PositionConfig& override) {
  if (!has_override || override.mode() == stave::v1::POSITION_MODE_UNSPECIFIED) {
    auto snapshot = state.config.Current();
    return ResolvedPosition{snapshot->position, snapshot->version};
  }
  auto config = PositionFromRequest(state, override);
  if (!config.ok()) return config.status();
  return ResolvedPosition{*std::move(config), 0};
}

std::string PublicModelName(const Model& model) {
  const auto path = std::filesystem::path(model.path()).lexically_normal();
  std::string name = path.filename().string();
  if (name.empty()) name = path.parent_path().filename().string();  // a directory with a trailing slash
  return name;
}

namespace {

uint64_t RandomSeed() {
  static thread_local std::mt19937_64 engine{std::random_device{}()};
  return engine();
}

}  // namespace

absl::StatusOr<PreparedGeneration> PrepareGeneration(const ServerState& state, const stave::v1::GenerateRequest& r,
                                                     const GenerationOptions& options) {
  if (r.prompt().empty()) return absl::InvalidArgumentError("prompt: must not be empty");
  auto status = CheckTextSize("prompt", r.prompt());
  if (!status.ok()) return status;
  if (r.has_max_tokens() && r.max_tokens() == 0) return absl::InvalidArgumentError("max_tokens: must be >= 1");
  if (r.stop_size() > kMaxStopStrings)
    return absl::InvalidArgumentError(
        absl::StrCat("stop: ", r.stop_size(), " stop strings, over the limit of ", kMaxStopStrings));
  for (const auto& stop : r.stop())
    if (stop.size() > kMaxStopStringBytes)
      return absl::InvalidArgumentError(absl::StrCat("stop: a stop string of ", stop.size(),
                                                     " bytes, over the limit of ", kMaxStopStringBytes));
  auto position = ResolvePosition(state, r.has_position(), r.position());
  if (!position.ok()) return position.status();
  const Model& model = state.model;
  GenerationParams params;
  params.sampling.temperature = r.has_temperature() ? r.temperature() : kDefaultTemperature;
  // Beyond the vocabulary, top-k keeps every token: the same as no limit.
  params.sampling.top_k =
      r.top_k() >= static_cast<uint32_t>(model.config().vocab_size) ? 0 : static_cast<int>(r.top_k());
  params.sampling.top_p = !r.has_top_p() ? kDefaultTopP : r.top_p() == 0.0f ? 1.0f : r.top_p();
  params.stop.assign(r.stop().begin(), r.stop().end());
  params.stop.insert(params.stop.end(), options.implicit_stop.begin(), options.implicit_stop.end());
  params.position = position->config;
  params.kv_budget_mb = 0;  // the pool decides (engine.CheckFits below)
  params.logprobs = options.logprobs;
  auto ids = model.tokenizer()->Encode(r.prompt(), /*add_bos=*/true);
  const int context = model.config().max_seq_len;
  if (!r.has_max_tokens()) {
    // The default, within what the prompt leaves (Sequence::Create refuses a prompt that leaves
    // nothing, with its own message).
    params.max_tokens = std::max(1, std::min(kDefaultMaxTokens, context - static_cast<int>(ids.size())));
  } else {
    params.max_tokens = static_cast<int>(std::min<uint32_t>(r.max_tokens(), 1u << 30));
    if (static_cast<int>(ids.size()) + params.max_tokens > context)
      return absl::InvalidArgumentError(absl::StrCat("max_tokens: ", r.max_tokens(), " with a prompt of ", ids.size(),
                                                     " tokens exceeds the model's context of ", context));
  }
  PreparedGeneration out;
  out.prompt_tokens = static_cast<uint32_t>(ids.size());
  out.last_prompt_token = ids.empty() ? 0 : ids.back();
  out.config_version = position->version;
  // Unseeded requests get a seed of their own: with a fixed default, every unseeded request at
  // temperature > 0 sampled the same text.
  out.seed = r.has_seed() ? r.seed() : RandomSeed();
  for (int i = 0; i < std::max(1, options.n); ++i) {
    params.sampling.seed = out.seed + static_cast<uint64_t>(i);
    auto seq = Sequence::Create(model, ids, params, &state.position_cache);
    if (!seq.ok()) return seq.status();
    status = state.engine.CheckFits(**seq);
    if (!status.ok()) return status;
    out.sequences.push_back(*std::move(seq));
  }
  return out;
}

}  // namespace stave::server
