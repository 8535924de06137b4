// What every transport needs to turn a request into engine work, in one place so that gRPC and
// the HTTP API validate alike: the server's shared state, the request limits, the position config
// a request runs with, and PrepareGeneration, which checks a GenerateRequest (the proto message is
// the transport-neutral form: the HTTP API converts its JSON into one) and builds its sequences.
// Errors are absl::Status, INVALID_ARGUMENT naming the field; each transport maps them once.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/model.h"
#include "core/sequence.h"
#include "server/config_store.h"
#include "server/engine.h"
#include "server/metrics.h"
#include "server/router_directory.h"
#include "server/side_worker.h"
#include "stave/v1/stave.pb.h"

namespace stave::server {

// What every service needs from the running server.
struct ServerState {
  const Model& model;
  Engine& engine;
  ConfigStore& config;
  Metrics& metrics;
  const RouterDirectory& routers;  // the only router files a request may name
  SideWorker& side_worker;         // slow configuration work (the base search)
  PositionCache& position_cache;   // RoPE tables and routers kept between requests
};

// Limits every request is held to before any work is done (stated in stave.proto).
inline constexpr size_t kMaxRequestTextBytes = size_t{1} << 20;
inline constexpr int kMaxStopStrings = 16;
inline constexpr size_t kMaxStopStringBytes = 256;

// INVALID_ARGUMENT naming `field` when `text` is larger than kMaxRequestTextBytes.
absl::Status CheckTextSize(absl::string_view field, absl::string_view text);

// A request's own position config (the proto's), validated for this model, its router resolved
// by name in `routers`; INVALID_ARGUMENT naming the field otherwise.
absl::StatusOr<PositionConfig> PositionFromRequest(const ServerState& state,
                                                   const stave::v1::PositionConfig& position);

// The position config a request runs with: its own override when it sets a mode (version 0),
// else the server's current snapshot.
struct ResolvedPosition {
  PositionConfig config;
  uint64_t version = 0;
};
absl::StatusOr<ResolvedPosition> ResolvePosition(const ServerState& state, bool has_override,
                                                 const stave::v1::PositionConfig& override);

// The model's public name: its file or directory name, never where it lives on the server.
std::string PublicModelName(const Model& model);

// The defaults of a request that leaves a field unset, stated in stave.proto: the same for gRPC,
// the HTTP API and `stave generate` (client/generate_command.cc).
inline constexpr int kDefaultMaxTokens = 256;  // within the context the prompt leaves
inline constexpr float kDefaultTemperature = 1.0f;
inline constexpr float kDefaultTopP = 0.9f;

// What a transport may add to a GenerateRequest beyond its fields.
struct GenerationOptions {
  int n = 1;  // independent sequences of the same prompt; sequence i is seeded seed + i
  bool logprobs = false;  // fill Sequence::Step::logprob
  // Appended after the request's own stop strings are checked against the limits (a chat
  // template's end-of-turn marker): the server's, not the client's, so not counted.
  std::vector<std::string> implicit_stop;
};

// A validated request ready for the engine: its sequences (not yet submitted).
struct PreparedGeneration {
  std::vector<std::unique_ptr<Sequence>> sequences;
  uint32_t prompt_tokens = 0;  // BOS included
  int last_prompt_token = 0;   // to decode the first generated token's piece
  uint64_t config_version = 0;  // 0 = the request's own position config
  uint64_t seed = 0;           // the first sequence's (random when the request set none)
};

// Checks `request` as the gRPC Generate contract states (cheap checks first, then the prompt is
// tokenised and the sequences built and checked against the KV pool) and builds n sequences.
absl::StatusOr<PreparedGeneration> PrepareGeneration(const ServerState& state,
                                                     const stave::v1::GenerateRequest& request,
                                                     const GenerationOptions& options = {});

}  // namespace stave::server
