// stave generate: run the model in-process and stream the text to stdout.
#include <cstdio>
#include <random>

#include "client/channel.h"
#include "client/commands.h"
#include "client/flags.h"
#include "client/position_flags.h"
#include "client/remote_generate.h"
#include "core/compute_threads.h"
#include "core/generate.h"
#include "core/default_model.h"
#include "core/model.h"
#include "nlohmann/json.hpp"

namespace stave::cli {
namespace {

struct GenerateOptions {
  std::string model, tokenizer, prompt;
  ChannelOptions channel;  // --server set: generate through staved
  PositionFlags position;
  int64_t kv_budget_mb = 4096;
  int max_tokens = 256;
  float temperature = 1.0f, top_p = 0.9f;
  int top_k = 0;
  uint64_t seed = 0;
  std::vector<std::string> stop;
  int threads = 0;
  bool json = false, no_echo = false;
};

// Through staved: the server echoes nothing, so the prompt is printed as given. The position
// flags, when given, override the server's configuration for this request only.
absl::Status RunRemote(const GenerateOptions& o, uint64_t seed) {
  auto position = o.position.Override();
  if (!position.ok()) return position.status();
  auto channel = OpenChannel(o.channel);
  if (!channel.ok()) return channel.status();
  auto stub = stave::v1::Inference::NewStub(*channel);
  RemoteRequest r{o.prompt, o.max_tokens, o.temperature, o.top_p, o.top_k, seed, o.stop, *position,
                  o.channel.timeout_s};
  bool echo = !o.json && !o.no_echo;  // once the server has accepted the request
  auto result = RemoteGenerate(*stub, o.channel.server, r, [&](std::optional<int>, std::string_view text) {
    if (o.json || text.empty()) return;
    if (echo) std::fputs(o.prompt.c_str(), stdout);
    echo = false;
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
  });
  if (!result.ok()) return result.status();
  if (o.json) {
    // The stream carries only generated tokens; the CLI contract's prompt_token_ids come from
    // Tokenize, which encodes exactly as Generate does (BOS included).
    stave::v1::TokenizeRequest tokenize;
    tokenize.set_text(o.prompt);
    tokenize.set_add_bos(true);
    stave::v1::TokenizeResponse prompt_tokens;
    grpc::ClientContext context;
    SetDeadline(context, o.channel.timeout_s);
    auto status = FromGrpc(stub->Tokenize(&context, tokenize, &prompt_tokens), o.channel.server,
                           o.channel.timeout_s);
    if (!status.ok()) return status;
    nlohmann::json j = {{"text", result->text},
                        {"prompt_token_ids", std::vector<uint32_t>(prompt_tokens.token_ids().begin(), prompt_tokens.token_ids().end())},
                        {"token_ids", result->token_ids},
                        {"finish_reason", result->finish_reason},
                        {"seed", seed},
                        {"config_version", result->config_version},
                        {"usage", {{"prompt_tokens", result->prompt_tokens},
                                   {"completion_tokens", result->token_ids.size()}}}};
    std::puts(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  } else {
    std::puts("");
  }
  return absl::OkStatus();
}

absl::Status RunGenerate(const GenerateOptions& o, bool seed_given) {
  if (!o.channel.server.empty()) return RunRemote(o, seed_given ? o.seed : std::random_device{}());
  ConfigureThreads(o.threads);
  auto position = o.position.ToConfig();  // checked before the slow model load
  if (!position.ok()) return position.status();
  auto model_path = o.model.empty() ? DefaultModelPath() : o.model;
  if (!model_path.ok()) return model_path.status();
  auto model = Model::Load(*model_path, o.tokenizer);
  if (!model.ok()) return model.status();
  ConfigureThreadsFor(o.threads, (*model)->config());
  if (position->mode == PositionMode::kMoice && position->router_path.empty())
    std::fprintf(stderr, "stave: warning: no --router given; MoICE runs with untrained routers "
                         "(Normal(0, 0.02), a near-uniform mixture)\n");
  GenerationParams params;
  params.max_tokens = o.max_tokens;
  params.sampling = {o.temperature, o.top_k, o.top_p, seed_given ? o.seed : std::random_device{}()};
  params.stop = o.stop;
  params.kv_budget_mb = o.kv_budget_mb;
  params.position = *position;

  const Tokenizer& tok = *(*model)->tokenizer();
  // The prompt is echoed as the reference runner does (its tokens decoded, BOS rules included),
  // once generation has started, so that a rejected request prints nothing but the error.
  bool echo = !o.json && !o.no_echo;
  auto echo_prompt = [&] {
    if (!echo) return;
    echo = false;
    auto ids = tok.Encode(o.prompt, true);
    std::fputs(tok.Decode(std::span<const int>(ids).subspan(1), ids[0]).c_str(), stdout);
  };
  auto result = Generate(**model, o.prompt, params, [&](int, std::string_view text) {
    echo_prompt();
    if (!o.json) {
      std::fwrite(text.data(), 1, text.size(), stdout);
      std::fflush(stdout);
    }
    return true;
  });
  if (!result.ok()) return result.status();
  echo_prompt();
  const double decode_tps =
      result->token_ids.size() > 1 ? (result->token_ids.size() - 1) / result->decode_seconds : 0;
  if (o.json) {
    nlohmann::json j = {
        {"text", result->text},
        {"prompt_token_ids", result->prompt_token_ids},
        {"token_ids", result->token_ids},
        {"finish_reason", result->finish_reason},
        {"seed", params.sampling.seed},
        {"mode", o.position.mode},
        {"bases", params.position.bases},
        {"expert_bases", params.position.expert_bases},
        {"usage", {{"prompt_tokens", result->prompt_token_ids.size()},
                   {"completion_tokens", result->token_ids.size()}}},
        {"timings", {{"prefill_seconds", result->prefill_seconds},
                     {"decode_tokens_per_s", decode_tps}}},
    };
    std::puts(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  } else {
    std::puts("");
    std::fprintf(stderr, "[%zu tokens, finish: %s, decode %.1f tokens/s]\n",
                 result->token_ids.size(), result->finish_reason.c_str(), decode_tps);
  }
  return absl::OkStatus();
}

}  // namespace

void AddGenerateCommand(CLI::App& app) {
  auto o = std::make_shared<GenerateOptions>();
  auto* cmd = app.add_subcommand("generate", "generate text from a prompt, streamed to stdout");
  cmd->add_option("--model", o->model, "llama2.c .bin file or Hugging Face directory (in-process; default: the embedded default model)");
  AddServerFlags(cmd, o->channel)->description("generate through staved at this address instead (HOST:PORT, IP:PORT,... or a gRPC target)");
  cmd->add_option("--tokenizer", o->tokenizer, "tokenizer.bin or tokenizer.model (default: next to the model)");
  cmd->add_option("--prompt", o->prompt, "the prompt text")->required();
  cmd->add_option("--max-tokens", o->max_tokens, "tokens to generate at most")->capture_default_str()->check(AtLeast(1));
  cmd->add_option("--temperature", o->temperature, "0 = greedy")->capture_default_str();
  cmd->add_option("--top-k", o->top_k, "sample among the k most probable (0 = all)")->capture_default_str()->check(AtLeast(0));
  cmd->add_option("--top-p", o->top_p, "nucleus sampling mass, in (0, 1]")->capture_default_str();
  auto* seed = cmd->add_option("--seed", o->seed, "sampling seed (default: random, printed with --json)");
  cmd->add_option("--stop", o->stop, "stop string (repeatable)");
  o->position.Register(cmd);
  cmd->add_option("--kv-budget-mb", o->kv_budget_mb, "refuse requests whose KV caches would need more")->capture_default_str();
  AddThreadsFlag(cmd, o->threads, kAutoThreadsHelp);
  cmd->add_flag("--json", o->json, "print one JSON object instead of streaming text");
  cmd->add_flag("--no-echo", o->no_echo, "do not print the prompt before the generated text");
  cmd->callback([o, seed] { CommandStatus() = RunGenerate(*o, seed->count() > 0); });
}

}  // namespace stave::cli
