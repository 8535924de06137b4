// stave eval kv-retrieval: lost-in-the-middle key-value retrieval accuracy per position mode,
// record count and gold position (core/kv_retrieval_eval.h), in-process or through staved.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "client/channel.h"
#include "client/commands.h"
#include "client/flags.h"
#include "client/progress.h"
#include "lab/kv_eval_plot.h"
#include "client/remote_generate.h"
#include "core/compute_threads.h"
#include "core/base_search.h"
#include "core/default_model.h"
#include "core/generate.h"
#include "lab/kv_retrieval_eval.h"
#include "core/model.h"
#include "core/moice_router.h"
#include "stave/v1/stave.grpc.pb.h"

namespace stave::cli {
namespace {

struct EvalOptions {
  std::string model, tokenizer, records = "10,20", positions = "all", modes = "vanilla";
  std::string out, plot, router, expert_bases;
  ChannelOptions channel;
  int samples = 10, bucket_count = 4, moice_top_k = 0, max_tokens = 8, threads = 0;
  uint64_t seed = 0;
};

absl::StatusOr<std::vector<int>> ParseCounts(const std::string& text) {
  std::vector<int> counts;
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    int n = 0;
    if (!absl::SimpleAtoi(part, &n) || n < 1)
      return absl::InvalidArgumentError(absl::StrCat("--records: '", std::string(part), "' is not a record count"));
    counts.push_back(n);
  }
  return counts;
}

// What the answerer needs besides the mode's position config: a base search and, for MoICE, the
// router's expert bases, which come from the model side.
struct Backend {
  std::function<absl::StatusOr<std::vector<double>>(int count)> search_bases;
  std::function<absl::StatusOr<KvAnswer>(const PositionConfig&, const std::string& prompt)> answer;
  std::function<absl::Status(PositionConfig&)> complete_moice;
};

// "vanilla", "buckets" (searched bases), "buckets:B1,B2,..." (hand-picked) or "moice".
absl::StatusOr<PositionConfig> ResolveMode(const std::string& label, const EvalOptions& o, Backend& backend) {
  PositionConfig c;
  if (label == "vanilla") return c;
  if (label == "buckets" || absl::StartsWith(label, "buckets:")) {
    c.mode = PositionMode::kBuckets;
    if (label == "buckets") {
      auto bases = backend.search_bases(o.bucket_count);
      if (!bases.ok()) return bases.status();
      c.bases = *bases;
    } else {
      auto bases = ParseBaseList(label.substr(8), "--modes buckets:");
      if (!bases.ok()) return bases.status();
      c.bases = *bases;
    }
    return c;
  }
  if (label == "moice") {
    c.mode = PositionMode::kMoice;
    c.router_path = o.router;
    c.top_k = o.moice_top_k;
    if (!o.expert_bases.empty()) {
      auto bases = ParseBaseList(o.expert_bases, "--expert-bases");
      if (!bases.ok()) return bases.status();
      c.expert_bases = *bases;
    }
    auto status = backend.complete_moice(c);
    if (!status.ok()) return status;
    return c;
  }
  return absl::InvalidArgumentError(absl::StrCat("--modes: unknown mode '", label,
                                                 "' (vanilla, buckets, buckets:B1,B2,..., moice)"));
}

absl::StatusOr<Backend> InProcessBackend(const EvalOptions& o, std::unique_ptr<Model>& model) {
  auto path = o.model.empty() ? DefaultModelPath() : o.model;
  if (!path.ok()) return path.status();
  auto loaded = Model::Load(*path, o.tokenizer);
  if (!loaded.ok()) return loaded.status();
  model = std::move(*loaded);
  const Model* m = model.get();
  const std::string model_dir = *path;
  Backend b;
  b.search_bases = [m](int count) -> absl::StatusOr<std::vector<double>> {
    BaseSearchOptions search;
    search.head_dim = m->config().head_dim();
    search.context = m->config().max_seq_len;
    search.count = count;
    search.start_base = m->config().rope_theta;
    auto result = SearchBases(search);
    if (!result.ok()) return result.status();
    return result->bases;
  };
  b.complete_moice = [m, model_dir](PositionConfig& c) -> absl::Status {
    // The model directory's router.safetensors unless --router; expert bases and K from it.
    if (c.router_path.empty() && std::filesystem::is_directory(model_dir) &&
        std::filesystem::exists(model_dir + "/router.safetensors"))
      c.router_path = model_dir + "/router.safetensors";
    if (c.router_path.empty())
      return absl::InvalidArgumentError("moice: give --router (a router checkpoint from stave train-router)");
    auto routers = MoiceRouters::Load(c.router_path, m->config());
    if (!routers.ok()) return routers.status();
    if (c.expert_bases.empty()) c.expert_bases = routers->expert_bases;
    if (c.top_k == 0) c.top_k = routers->top_k;
    return absl::OkStatus();
  };
  b.answer = [m, max_tokens = o.max_tokens](const PositionConfig& c, const std::string& prompt)
      -> absl::StatusOr<KvAnswer> {
    GenerationParams params;
    params.max_tokens = max_tokens;
    params.sampling.temperature = 0;
    params.stop = {"\""};
    params.position = c;
    auto result = Generate(*m, prompt, params);
    if (!result.ok()) return result.status();
    return KvAnswer{result->text, static_cast<int>(result->prompt_token_ids.size())};
  };
  return b;
}

absl::StatusOr<Backend> RemoteBackend(const EvalOptions& o) {
  auto channel = OpenChannel(o.channel);
  if (!channel.ok()) return channel.status();
  std::shared_ptr<stave::v1::Inference::StubInterface> inference = stave::v1::Inference::NewStub(*channel);
  std::shared_ptr<stave::v1::Config::StubInterface> config = stave::v1::Config::NewStub(*channel);
  const std::string server = o.channel.server;
  const double timeout_s = o.channel.timeout_s;
  Backend b;
  b.search_bases = [config, server, timeout_s](int count) -> absl::StatusOr<std::vector<double>> {
    stave::v1::SearchBasesRequest request;
    request.set_count(static_cast<uint32_t>(count));
    stave::v1::SearchBasesResponse response;
    grpc::ClientContext context;
    SetDeadline(context, timeout_s);
    auto status = FromGrpc(config->SearchBases(&context, request, &response), server, timeout_s);
    if (!status.ok()) return status;
    return std::vector<double>(response.bases().begin(), response.bases().end());
  };
  b.complete_moice = [](PositionConfig& c) -> absl::Status {
    // The router file lives on the server: its expert bases cannot be read from here.
    if (c.router_path.empty() || c.expert_bases.empty() || c.top_k == 0)
      return absl::InvalidArgumentError(
          "moice with --server: give --router (a router name the server lists, e.g. 'router' for the "
          "default model), --expert-bases and --moice-top-k "
          "as the router was trained (models/default/README.md lists them for the default model)");
    return absl::OkStatus();
  };
  b.answer = [inference, server, timeout_s, max_tokens = o.max_tokens](const PositionConfig& c,
                                                                      const std::string& prompt)
      -> absl::StatusOr<KvAnswer> {
    RemoteRequest request;
    request.timeout_s = timeout_s;
    request.prompt = prompt;
    request.max_tokens = max_tokens;
    request.temperature = 0;
    request.stop = {"\""};
    request.position = c;
    auto result = RemoteGenerate(*inference, server, request, nullptr);
    if (!result.ok()) return result.status();
    return KvAnswer{result->text, static_cast<int>(result->prompt_tokens)};
  };
  return b;
}

std::string Describe(const PositionConfig& c) {
  switch (c.mode) {
    case PositionMode::kBuckets: return absl::StrCat("buckets, bases ", absl::StrJoin(c.bases, ","));
    case PositionMode::kMoice:
      return absl::StrCat("moice, experts ", absl::StrJoin(c.expert_bases, ","), ", top-", c.top_k, ", router ", c.router_path);
    default: return "vanilla";
  }
}

absl::Status RunEval(const EvalOptions& o) {
  if (!o.channel.server.empty() && !o.model.empty())
    return absl::InvalidArgumentError("give --server or --model, not both");
  if (o.max_tokens < 1) return absl::InvalidArgumentError("--max-tokens must be >= 1");
  KvEvalOptions eval;
  auto records = ParseCounts(o.records);
  if (!records.ok()) return records.status();
  eval.records = *records;
  auto positions = ParsePositions(o.positions);
  if (!positions.ok()) return positions.status();
  eval.positions = *positions;
  eval.samples = o.samples;
  eval.seed = o.seed;
  // Mode labels are split at commas that start a new mode, so "buckets:10000,20000" stays whole.
  for (absl::string_view part : absl::StrSplit(o.modes, ',')) {
    const bool continues_bases = !eval.modes.empty() && absl::StartsWith(eval.modes.back(), "buckets:") &&
                                 !part.empty() && (std::isdigit(static_cast<unsigned char>(part[0])) || part[0] == '.');
    if (continues_bases) absl::StrAppend(&eval.modes.back(), ",", part);
    else eval.modes.emplace_back(part);
  }

  // The outputs are written after the whole evaluation (minutes): check them first.
  if (!o.plot.empty()) {
    auto status = CheckPlotPath(o.plot);
    if (!status.ok()) return status;
  }
  for (const auto& [flag, path] : {std::pair{"--out", o.out}, std::pair{"--plot", o.plot}}) {
    if (path.empty()) continue;
    if (auto status = CheckWritable(path, flag); !status.ok()) return status;
  }
  ConfigureThreads(o.threads);
  std::unique_ptr<Model> model;
  auto backend = o.channel.server.empty() ? InProcessBackend(o, model) : RemoteBackend(o);
  if (!backend.ok()) return backend.status();
  std::map<std::string, PositionConfig> configs;
  for (const auto& label : eval.modes) {
    auto c = ResolveMode(label, o, *backend);
    if (!c.ok()) return c.status();
    std::fprintf(stderr, "eval: %s = %s\n", label.c_str(), Describe(*c).c_str());
    configs[label] = *c;
  }

  const auto start = std::chrono::steady_clock::now();
  ProgressBar bar("eval");
  auto cells = RunKvRetrievalEval(
      eval,
      [&](const std::string& mode, const std::string& prompt) { return backend->answer(configs.at(mode), prompt); },
      [&](int done, int total) {
        const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        bar.Update(done, total, absl::StrFormat("%d/%d prompts  %.0f s, ~%.0f s left", done, total, elapsed,
                                                done > 0 ? elapsed / done * (total - done) : 0.0));
      });
  if (!cells.ok()) return cells.status();

  // The summary: accuracy per record count (rows) and mode (columns), over all positions.
  std::printf("%-8s %-8s", "records", "tokens");
  for (const auto& m : eval.modes) std::printf("  %-26s", m.substr(0, 26).c_str());
  std::printf("\n");
  for (int r : eval.records) {
    bool first = true;
    for (const auto& m : eval.modes)
      for (const auto& c : *cells)
        if (c.position == 0 && c.records == r && c.mode == m) {
          if (first) std::printf("%-8d %-8.0f", r, c.prompt_tokens);
          first = false;
          std::printf("  %5.1f%% [%5.1f, %5.1f] n=%-5d", 100 * c.accuracy, 100 * c.ci.low, 100 * c.ci.high, c.total);
        }
    std::printf("\n");
  }
  if (!o.out.empty()) {
    std::ofstream f(o.out);
    f << KvEvalCsv(*cells);
    if (!f) return absl::PermissionDeniedError(absl::StrCat("cannot write ", o.out));
    std::fprintf(stderr, "wrote %s\n", o.out.c_str());
  }
  if (!o.plot.empty()) {
    auto status = PlotKvEval(o.plot, *cells, eval.modes, eval.records);
    if (!status.ok()) return status;
    std::fprintf(stderr, "wrote %s\n", o.plot.c_str());
  }
  return absl::OkStatus();
}

}  // namespace

void AddEvalCommand(CLI::App& app) {
  auto* eval = app.add_subcommand("eval", "evaluations");
  eval->require_subcommand(1);
  auto o = std::make_shared<EvalOptions>();
  auto* cmd = eval->add_subcommand("kv-retrieval", "lost-in-the-middle key-value retrieval accuracy per position mode");
  AddServerFlags(cmd, o->channel)->description("evaluate staved at this address (default: in-process)");
  cmd->add_option("--model", o->model, "model to run in-process (default: the embedded default model)");
  cmd->add_option("--tokenizer", o->tokenizer, "tokenizer (default: next to the model)");
  cmd->add_option("--records", o->records, "record counts, comma-separated")->capture_default_str();
  cmd->add_option("--positions", o->positions, "gold positions (1-based, comma-separated) or 'all'")->capture_default_str();
  cmd->add_option("--samples", o->samples, "examples per record count and position")->capture_default_str()->check(AtLeast(1));
  cmd->add_option("--modes", o->modes, "vanilla, buckets (searched bases), buckets:B1,B2,... (given bases), moice")->capture_default_str();
  cmd->add_option("--bucket-count", o->bucket_count, "bases searched for 'buckets'")->capture_default_str();
  cmd->add_option("--router", o->router, "MoICE router checkpoint (default: router.safetensors next to the model; with --server: a router name the server lists)");
  cmd->add_option("--expert-bases", o->expert_bases, "MoICE expert bases (default: the router's)");
  cmd->add_option("--moice-top-k", o->moice_top_k, "MoICE experts per token and head (default: the router's)");
  cmd->add_option("--max-tokens", o->max_tokens, "tokens generated per answer")->capture_default_str()->check(AtLeast(1));
  cmd->add_option("--seed", o->seed, "seed of the examples")->capture_default_str();
  cmd->add_option("--out", o->out, "write every cell as CSV");
  cmd->add_option("--plot", o->plot, "draw accuracy against gold position (.png or .svg)");
  AddThreadsFlag(cmd, o->threads, "compute threads, in-process (0 = one per core)");
  cmd->callback([o] { CommandStatus() = RunEval(*o); });
}

}  // namespace stave::cli
