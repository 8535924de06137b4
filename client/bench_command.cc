// stave bench: prefill and decode speed and peak memory, on a real model or random weights of a
// given shape.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <unistd.h>

#include <ATen/Parallel.h>

#include <immintrin.h>

#include <atomic>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "client/channel.h"
#include "client/commands.h"
#include "client/flags.h"
#include "client/position_flags.h"
#include "client/remote_generate.h"
#include "core/compute_threads.h"
#include "core/checkpoint.h"
#include "core/model.h"
#include "core/kv_pool.h"
#include "core/scheduler.h"
#include "core/sequence.h"
#include "nlohmann/json.hpp"

namespace stave::cli {
namespace {

constexpr char kShape110M[] = "dim=768,layers=12,heads=12,kv_heads=12,hidden=2048,vocab=32000,ctx=1024";

struct BenchOptions {
  std::string model, tokenizer, random_shape = kShape110M;
  int prompt_tokens = 128, gen_tokens = 64, threads = 2, runs = 3;
  std::string concurrency;  // "1,4,16": that many sequences through one scheduler, per level
  std::string weights;      // "f32,q8_0": the model in each storage type, compared in one run
  int max_batch_tokens = 256, arrival_prompt_tokens = 0;
  bool json = false, no_baseline = false;
  PositionFlags position;
  ChannelOptions server;  // set: compare one gRPC stream through staved with in-process runs
};

struct Speed {
  double prefill_tokens_per_s = 0, decode_tokens_per_s = 0, rss_growth_mb = 0;
};

double PeakRssMb() {
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss / 1024.0;  // KiB on Linux
}

double CurrentRssMb() {
  std::ifstream statm("/proc/self/statm");
  long pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * (sysconf(_SC_PAGESIZE) / 1048576.0);
}

// Read bandwidth of this machine with the same threads: an integer sum (which the compiler
// vectorises exactly) over 512 MiB split across LibTorch's thread pool. Decode is weight
// reading, so this is the ceiling that decode_weight_gb_per_s is measured against.
// Vector loads with independent accumulators keep enough loads in flight to saturate memory.
__attribute__((target("avx2"))) uint64_t SumWords(const uint64_t* p, int64_t n) {
  __m256i a = _mm256_setzero_si256(), b = a, c = a, d = a;
  const __m256i* v = reinterpret_cast<const __m256i*>(p);
  for (int64_t j = 0; j + 16 <= n; j += 16, v += 4) {
    a = _mm256_add_epi64(a, _mm256_loadu_si256(v));
    b = _mm256_add_epi64(b, _mm256_loadu_si256(v + 1));
    c = _mm256_add_epi64(c, _mm256_loadu_si256(v + 2));
    d = _mm256_add_epi64(d, _mm256_loadu_si256(v + 3));
  }
  alignas(32) uint64_t lanes[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes),
                     _mm256_add_epi64(_mm256_add_epi64(a, b), _mm256_add_epi64(c, d)));
  return lanes[0] + lanes[1] + lanes[2] + lanes[3];
}

double MemoryReadGbPerS() {
  const int64_t n = int64_t{64} << 20;  // uint64 words
  std::vector<uint64_t> buffer(n, 1);
  double best = 0;
  for (int i = 0; i < 5; ++i) {
    std::atomic<uint64_t> total{0};
    auto t0 = std::chrono::steady_clock::now();
    at::parallel_for(0, n, n / 16, [&](int64_t begin, int64_t end) {
      total += SumWords(buffer.data() + begin, end - begin);
    });
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (total.load() != static_cast<uint64_t>(n)) return 0;  // keeps the loop from being elided
    best = std::max(best, n * 8.0 / s / 1e9);
  }
  return best;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// A text prompt of at least `tokens` tokens: the server takes text, so both sides encode it.
std::string TextPrompt(const Model& model, int tokens) {
  std::string text;
  while (static_cast<int>(model.tokenizer()->Encode(text, true).size()) < tokens)
    text += "Once upon a time, there was a little girl who loved to play in the park with her dog. ";
  return text;
}

// bench --server: the same greedy request in-process and as one stream through staved, runs
// alternating so both see the same machine conditions. Times are to the first token (prefill)
// and from it to the last (decode), as a client sees them.
absl::Status RunServerComparison(const BenchOptions& o, const Model& model, const std::string& source,
                                 const PositionConfig& position) {
  if (model.tokenizer() == nullptr)
    return absl::InvalidArgumentError("bench --server needs --model with a tokenizer (the server takes text)");
  auto channel = OpenChannel(o.server);
  if (!channel.ok()) return channel.status();
  auto stub = stave::v1::Inference::NewStub(*channel);
  const std::string prompt = TextPrompt(model, o.prompt_tokens);
  const auto prompt_ids = model.tokenizer()->Encode(prompt, true);
  GenerationParams params;
  params.max_tokens = o.gen_tokens;
  params.sampling.temperature = 0;
  params.position = position;
  using Clock = std::chrono::steady_clock;
  auto seconds = [](Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); };
  struct Timing {
    double prefill_tokens_per_s, decode_tokens_per_s, tokens_per_s;
    size_t tokens;
  };
  auto timing = [&](Clock::time_point t0, Clock::time_point t1, Clock::time_point t2, size_t tokens) {
    return Timing{prompt_ids.size() / seconds(t0, t1), (tokens - 1) / seconds(t1, t2), tokens / seconds(t0, t2), tokens};
  };
  auto local_once = [&]() -> absl::StatusOr<Timing> {
    auto t0 = Clock::now();
    auto seq = Sequence::Create(model, prompt_ids, params);
    if (!seq.ok()) return seq.status();
    (*seq)->Next();
    auto t1 = Clock::now();
    while (!(*seq)->finished()) (*seq)->Next();
    return timing(t0, t1, Clock::now(), (*seq)->token_ids().size());
  };
  auto remote_once = [&]() -> absl::StatusOr<Timing> {
    RemoteRequest request;
    request.prompt = prompt;
    request.max_tokens = o.gen_tokens;
    request.temperature = 0;
    request.top_p = 1;
    request.position = position;
    request.timeout_s = o.server.timeout_s;
    auto t0 = Clock::now(), t1 = t0;
    size_t tokens = 0;
    auto result = RemoteGenerate(*stub, o.server.server, request, [&](std::optional<int> token, std::string_view) {
      if (token && tokens++ == 0) t1 = Clock::now();
    });
    if (!result.ok()) return result.status();
    return timing(t0, t1, Clock::now(), tokens);
  };
  std::vector<double> local_prefill, local_decode, local_total, remote_prefill, remote_decode, remote_total,
      decode_ratio, total_ratio;
  for (int run = 0; run <= o.runs; ++run) {  // run 0 warms up both sides (and connects)
    auto local = local_once();
    if (!local.ok()) return local.status();
    auto remote = remote_once();
    if (!remote.ok()) return remote.status();
    if (remote->tokens != local->tokens)
      return absl::InternalError(absl::StrCat("the server generated ", remote->tokens, " tokens, in-process ",
                                              local->tokens, ": not the same model or config?"));
    if (run == 0 || local->tokens < 2) continue;
    local_prefill.push_back(local->prefill_tokens_per_s);
    local_decode.push_back(local->decode_tokens_per_s);
    local_total.push_back(local->tokens_per_s);
    remote_prefill.push_back(remote->prefill_tokens_per_s);
    remote_decode.push_back(remote->decode_tokens_per_s);
    remote_total.push_back(remote->tokens_per_s);
    decode_ratio.push_back(remote->decode_tokens_per_s / local->decode_tokens_per_s);
    total_ratio.push_back(remote->tokens_per_s / local->tokens_per_s);
    std::fprintf(stderr, "run %d/%d: %zu tokens; in-process decode %.1f tokens/s, through %s %.1f tokens/s\n", run,
                 o.runs, local->tokens, local->decode_tokens_per_s, o.server.server.c_str(), remote->decode_tokens_per_s);
  }
  if (decode_ratio.empty()) return absl::FailedPreconditionError("every run stopped after one token; use another prompt");
  nlohmann::json j = {
      {"model", source},
      {"server", o.server.server},
      {"mode", o.position.mode},
      {"threads", o.threads},
      {"prompt_tokens", prompt_ids.size()},
      {"gen_tokens", o.gen_tokens},
      {"runs", o.runs},
      {"in_process", {{"prefill_tokens_per_s", Median(local_prefill)},
                      {"decode_tokens_per_s", Median(local_decode)},
                      {"tokens_per_s", Median(local_total)}}},
      {"grpc", {{"prefill_tokens_per_s", Median(remote_prefill)},
                {"decode_tokens_per_s", Median(remote_decode)},
                {"tokens_per_s", Median(remote_total)}}},
      {"decode_ratio_grpc_vs_in_process", Median(decode_ratio)},  // median of per-run ratios
      {"tokens_per_s_ratio_grpc_vs_in_process", Median(total_ratio)},
  };
  std::puts(o.json ? j.dump().c_str() : j.dump(2).c_str());
  return absl::OkStatus();
}

double Percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())))];
}

// One concurrency level: `n` sequences (distinct random prompts) through one Scheduler, as staved
// runs them, all arriving at once. With arrival_prompt_tokens, one more prompt of that length
// arrives once every stream decodes, to measure what its prefill does to their inter-token gaps.
struct LevelResult {
  double tokens_per_s = 0, decode_tokens_per_s = 0, itl_p50_ms = 0, itl_p99_ms = 0;
  double itl_p50_before_arrival_ms = 0, itl_p99_during_arrival_ms = 0;
  double kv_peak_mb = 0, kv_full_context_mb = 0;
  int64_t preemptions = 0;
};

absl::StatusOr<LevelResult> RunLevel(const BenchOptions& o, const Model& model, const PositionConfig& position, int n) {
  using Clock = std::chrono::steady_clock;
  const ModelConfig& c = model.config();
  GenerationParams params;
  params.max_tokens = o.gen_tokens;
  params.ignore_stop_token = true;
  params.position = position;
  params.kv_budget_mb = 0;  // the level's pool is sized for all of them
  std::mt19937 rng(n);
  auto random_prompt = [&](int length) {
    std::vector<int> prompt{c.bos_id};
    while (static_cast<int>(prompt.size()) < length) prompt.push_back(static_cast<int>(rng() % c.vocab_size));
    return prompt;
  };
  std::vector<std::unique_ptr<Sequence>> seqs;
  for (int i = 0; i < n; ++i) {
    auto seq = Sequence::Create(model, random_prompt(o.prompt_tokens), params);
    if (!seq.ok()) return seq.status();
    seqs.push_back(*std::move(seq));
  }
  std::unique_ptr<Sequence> arrival;
  if (o.arrival_prompt_tokens > 0) {
    GenerationParams one = params;
    one.max_tokens = 1;
    auto seq = Sequence::Create(model, random_prompt(o.arrival_prompt_tokens), one);
    if (!seq.ok()) return seq.status();
    arrival = *std::move(seq);
  }
  // A pool with room for everyone at full length (the bench measures speed, not preemption);
  // the peak of what was used is reported next to what full-context caches would take.
  const auto& rt = seqs[0]->runtime();
  const int rows = rt.key_rows() + rt.value_rows();
  const int64_t block_bytes = KvPool::BlockBytes(c, 16);
  int64_t blocks = int64_t{n} * rows * ((o.prompt_tokens + o.gen_tokens + 15) / 16);
  if (arrival) blocks += int64_t{rows} * ((o.arrival_prompt_tokens + 16) / 16);
  auto pool = KvPool::Create(c, blocks * block_bytes, 16);
  if (!pool.ok()) return pool.status();
  Scheduler scheduler(model, *std::move(pool), {.max_batch_tokens = o.max_batch_tokens, .max_running = n + 1});
  for (auto& s : seqs) {
    auto status = scheduler.Add(s.get());
    if (!status.ok()) return status;
  }
  std::map<Sequence*, Clock::time_point> last;
  std::vector<double> gaps, before, during;
  int64_t tokens = 0, decode_tokens = 0, peak_blocks = 0;
  int first_tokens = 0;
  const auto t0 = Clock::now();
  Clock::time_point decode_start, arrival_time;
  bool arrived = false, arrival_done = false;
  while (scheduler.running() + scheduler.waiting() > 0) {
    auto outputs = scheduler.Step();
    const auto now = Clock::now();
    peak_blocks = std::max(peak_blocks, scheduler.pool().total_blocks() - scheduler.pool().free_blocks());
    for (const auto& out : outputs) {
      if (out.sequence == arrival.get()) {
        arrival_done = true;
        continue;
      }
      ++tokens;
      auto it = last.find(out.sequence);
      if (it == last.end()) {
        last.emplace(out.sequence, now);
        if (++first_tokens == n) decode_start = now;
        continue;
      }
      const double gap = std::chrono::duration<double>(now - it->second).count();
      it->second = now;
      if (first_tokens < n) continue;
      ++decode_tokens;
      gaps.push_back(gap);
      if (arrival && !arrived) before.push_back(gap);
      if (arrival && arrived && !arrival_done) during.push_back(gap);
    }
    // The long prompt arrives once every stream has decoded a few tokens.
    if (arrival && !arrived && before.size() >= static_cast<size_t>(4 * n)) {
      auto status = scheduler.Add(arrival.get());
      if (!status.ok()) return status;
      arrived = true;
      arrival_time = Clock::now();
    }
  }
  const auto t_end = Clock::now();
  LevelResult r;
  r.tokens_per_s = tokens / std::chrono::duration<double>(t_end - t0).count();
  r.decode_tokens_per_s = decode_tokens / std::chrono::duration<double>(t_end - decode_start).count();
  r.itl_p50_ms = 1000 * Percentile(gaps, 0.5);
  r.itl_p99_ms = 1000 * Percentile(gaps, 0.99);
  r.itl_p50_before_arrival_ms = 1000 * Percentile(before, 0.5);
  r.itl_p99_during_arrival_ms = 1000 * Percentile(during, 0.99);
  r.kv_peak_mb = peak_blocks * block_bytes / 1048576.0;
  r.kv_full_context_mb = static_cast<double>(n) * rows * ((c.max_seq_len + 15) / 16) * block_bytes / 1048576.0;
  r.preemptions = scheduler.preemptions();
  return r;
}

absl::Status RunConcurrency(const BenchOptions& o, const Model& model, const std::string& source,
                            const PositionConfig& position) {
  std::vector<int> levels;
  for (absl::string_view item : absl::StrSplit(o.concurrency, ',', absl::SkipWhitespace())) {
    int n = 0;
    if (!absl::SimpleAtoi(item, &n) || n < 1 || n > 4096)
      return absl::InvalidArgumentError(absl::StrCat("--concurrency: '", item, "' is not a count in 1..4096"));
    levels.push_back(n);
  }
  if (levels.empty()) return absl::InvalidArgumentError("--concurrency: give at least one count, e.g. 1,4,16");
  // Levels alternate within each run so that all of them see the same machine conditions; the
  // ratios against one stream are taken per run, then the median.
  std::map<int, std::vector<LevelResult>> results;
  for (int run = 0; run <= o.runs; ++run) {  // run 0 warms up
    for (int n : levels) {
      auto r = RunLevel(o, model, position, n);
      if (!r.ok()) return r.status();
      if (run == 0) continue;
      results[n].push_back(*r);
      std::fprintf(stderr, "run %d/%d: %d streams: %.1f decode tokens/s, inter-token p50 %.2f ms\n", run, o.runs, n,
                   r->decode_tokens_per_s, r->itl_p50_ms);
    }
  }
  nlohmann::json table = nlohmann::json::array();
  for (int n : levels) {
    auto median = [&](auto field) {
      std::vector<double> v;
      for (const auto& r : results[n]) v.push_back(field(r));
      return Median(v);
    };
    auto ratio = [&](auto field) {
      std::vector<double> v;
      for (size_t i = 0; i < results[n].size(); ++i) v.push_back(field(results[n][i]) / field(results[levels[0]][i]));
      return Median(v);
    };
    nlohmann::json row = {
        {"streams", n},
        {"tokens_per_s", median([](const LevelResult& r) { return r.tokens_per_s; })},
        {"decode_tokens_per_s", median([](const LevelResult& r) { return r.decode_tokens_per_s; })},
        {"itl_p50_ms", median([](const LevelResult& r) { return r.itl_p50_ms; })},
        {"itl_p99_ms", median([](const LevelResult& r) { return r.itl_p99_ms; })},
        {"decode_ratio_vs_first_level", ratio([](const LevelResult& r) { return r.decode_tokens_per_s; })},
        {"itl_p50_ratio_vs_first_level", ratio([](const LevelResult& r) { return r.itl_p50_ms; })},
        {"kv_peak_mb", median([](const LevelResult& r) { return r.kv_peak_mb; })},
        {"kv_full_context_mb", median([](const LevelResult& r) { return r.kv_full_context_mb; })},
    };
    if (o.arrival_prompt_tokens > 0) {
      row["itl_p50_before_arrival_ms"] = median([](const LevelResult& r) { return r.itl_p50_before_arrival_ms; });
      row["itl_p99_during_arrival_ms"] = median([](const LevelResult& r) { return r.itl_p99_during_arrival_ms; });
      row["arrival_p99_over_p50"] = median(
          [](const LevelResult& r) { return r.itl_p99_during_arrival_ms / std::max(1e-9, r.itl_p50_before_arrival_ms); });
    }
    table.push_back(row);
  }
  nlohmann::json j = {{"model", source},
                      {"mode", o.position.mode},
                      {"threads", o.threads},
                      {"prompt_tokens", o.prompt_tokens},
                      {"gen_tokens", o.gen_tokens},
                      {"max_batch_tokens", o.max_batch_tokens},
                      {"arrival_prompt_tokens", o.arrival_prompt_tokens},
                      {"runs", o.runs},
                      {"levels", table},
                      {"peak_rss_mb", PeakRssMb()}};
  std::puts(o.json ? j.dump().c_str() : j.dump(2).c_str());
  return absl::OkStatus();
}

// --weights: the model in each storage type (packed in memory from the same weights); every run
// goes through all types in turn so that they share the machine's conditions, and each type's
// speed is reported as the median of its per-run ratios to the first type.
using RunModelFn = std::function<absl::StatusOr<Speed>(const Model&, const PositionConfig&)>;
absl::Status RunWeightTypes(const BenchOptions& o, const std::string& source, const PositionConfig& position,
                            const RunModelFn& run_model) {
  struct Entry {
    std::string name;
    std::unique_ptr<Model> model;
    std::vector<double> prefill, decode, prefill_ratio, decode_ratio;
  };
  std::vector<Entry> entries;
  {  // the fp32 source lives only while the types are packed from it
    absl::StatusOr<Checkpoint> ckpt;
    if (!o.model.empty()) {
      ckpt = LoadCheckpoint(o.model);
    } else {
      auto config = ParseShapeSpec(o.random_shape);
      if (!config.ok()) return config.status();
      ckpt = RandomCheckpoint(*config, 0);
    }
    if (!ckpt.ok()) return ckpt.status();
    for (absl::string_view name : absl::StrSplit(o.weights, ',', absl::SkipEmpty())) {
      quant::WeightType type;
      if (!quant::WeightTypeFromName(std::string_view(name.data(), name.size()), &type))
        return absl::InvalidArgumentError(
            absl::StrCat("--weights: unknown type '", name, "' (one of f32, f16, bf16, q8_0, q4_0)"));
      std::fprintf(stderr, "packing weights as %s\n", quant::WeightTypeName(type));
      auto packed = PackWeights(*ckpt, type);
      if (!packed.ok()) return packed.status();
      entries.push_back({std::string(name), Model::FromCheckpoint(*packed, nullptr), {}, {}, {}, {}});
    }
  }
  for (int run = 0; run <= o.runs; ++run) {  // run 0 warms up
    for (Entry& e : entries) {
      auto speed = run_model(*e.model, position);
      if (!speed.ok()) return speed.status();
      if (run == 0) continue;
      e.prefill.push_back(speed->prefill_tokens_per_s);
      e.decode.push_back(speed->decode_tokens_per_s);
      e.prefill_ratio.push_back(e.prefill.back() / entries[0].prefill.back());
      e.decode_ratio.push_back(e.decode.back() / entries[0].decode.back());
      std::fprintf(stderr, "run %d/%d: %-5s prefill %7.1f tokens/s (%.2fx), decode %7.1f tokens/s (%.2fx)\n", run,
                   o.runs, e.name.c_str(), e.prefill.back(), e.prefill_ratio.back(), e.decode.back(),
                   e.decode_ratio.back());
    }
  }
  nlohmann::json types = nlohmann::json::array();
  for (const Entry& e : entries)
    types.push_back({{"weights", e.name},
                     {"prefill_tokens_per_s", Median(e.prefill)},
                     {"decode_tokens_per_s", Median(e.decode)},
                     {"prefill_ratio", Median(e.prefill_ratio)},
                     {"decode_ratio", Median(e.decode_ratio)}});
  nlohmann::json j = {{"model", source},         {"mode", o.position.mode},   {"threads", o.threads},
                      {"prompt_tokens", o.prompt_tokens}, {"gen_tokens", o.gen_tokens}, {"runs", o.runs},
                      {"ratios_against", entries[0].name}, {"types", types}, {"peak_rss_mb", PeakRssMb()}};
  std::puts(o.json ? j.dump().c_str() : j.dump(2).c_str());
  return absl::OkStatus();
}

absl::Status RunBench(const BenchOptions& options) {
  BenchOptions o = options;
  ConfigureThreads(o.threads);
  std::unique_ptr<Model> model;
  std::string source;
  if (!o.model.empty()) {
    auto loaded = Model::Load(o.model, o.tokenizer);
    if (!loaded.ok()) return loaded.status();
    model = *std::move(loaded);
    source = o.model;
  } else {
    auto config = ParseShapeSpec(o.random_shape);
    if (!config.ok()) return config.status();
    model = Model::FromCheckpoint(RandomCheckpoint(*config, 0), nullptr);
    source = "random:" + o.random_shape;
  }
  const ModelConfig& c = model->config();
  o.threads = ConfigureThreadsFor(o.threads, c);  // reported as chosen
  if (o.prompt_tokens + o.gen_tokens > c.max_seq_len)
    return absl::InvalidArgumentError("--prompt-tokens + --gen-tokens exceed the model's context");
  std::mt19937 rng(0);
  std::vector<int> prompt{c.bos_id};
  while (static_cast<int>(prompt.size()) < o.prompt_tokens)
    prompt.push_back(static_cast<int>(rng() % c.vocab_size));
  GenerationParams params;
  params.max_tokens = o.gen_tokens;
  params.ignore_stop_token = true;

  // One prefill + decode of the whole generation; returns tokens/s of each and RSS growth.
  auto run_model = [&](const Model& m, const PositionConfig& position) -> absl::StatusOr<Speed> {
    GenerationParams run_params = params;
    run_params.position = position;
    auto seq = Sequence::Create(m, prompt, run_params);
    if (!seq.ok()) return seq.status();
    using Clock = std::chrono::steady_clock;
    auto t0 = Clock::now();
    (*seq)->Next();
    auto t1 = Clock::now();
    const double rss_before = CurrentRssMb();
    while (!(*seq)->finished()) (*seq)->Next();
    auto t2 = Clock::now();
    return Speed{o.prompt_tokens / std::chrono::duration<double>(t1 - t0).count(),
                 (o.gen_tokens - 1) / std::chrono::duration<double>(t2 - t1).count(),
                 CurrentRssMb() - rss_before};
  };
  auto run_once = [&](const PositionConfig& position) { return run_model(*model, position); };
  auto position = o.position.ToConfig();
  if (!position.ok()) return position.status();
  if (!o.weights.empty()) return RunWeightTypes(o, source, *position, run_model);
  if (!o.server.server.empty()) return RunServerComparison(o, *model, source, *position);
  if (!o.concurrency.empty()) return RunConcurrency(o, *model, source, *position);
  // With a non-vanilla mode, vanilla runs alternate with it in this process, so that both see the
  // same machine conditions: ratios are what to compare on shared, noisy machines.
  const bool baseline = position->mode != PositionMode::kVanilla && !o.no_baseline;
  std::vector<double> prefill, decode, base_prefill, base_decode, prefill_ratio, decode_ratio;
  double rss_growth = 0;
  for (int run = 0; run <= o.runs; ++run) {  // run 0 warms up allocator, thread pool, tables
    auto speed = run_once(*position);
    if (!speed.ok()) return speed.status();
    absl::StatusOr<Speed> base = Speed{};
    if (baseline) base = run_once(PositionConfig{});
    if (!base.ok()) return base.status();
    if (run == 0) continue;
    prefill.push_back(speed->prefill_tokens_per_s);
    decode.push_back(speed->decode_tokens_per_s);
    rss_growth = std::max(rss_growth, speed->rss_growth_mb);
    std::fprintf(stderr, "run %d/%d: %s prefill %.1f tokens/s, decode %.1f tokens/s", run, o.runs,
                 o.position.mode.c_str(), prefill.back(), decode.back());
    if (baseline) {
      base_prefill.push_back(base->prefill_tokens_per_s);
      base_decode.push_back(base->decode_tokens_per_s);
      prefill_ratio.push_back(prefill.back() / base_prefill.back());
      decode_ratio.push_back(decode.back() / base_decode.back());
      std::fprintf(stderr, "; vanilla prefill %.1f, decode %.1f", base_prefill.back(), base_decode.back());
    }
    std::fputs("\n", stderr);
  }
  const Speed median{Median(prefill), Median(decode), rss_growth};
  const double weight_gb_per_s =
      median.decode_tokens_per_s * 4.0 *
      (static_cast<double>(c.n_layers) *
           (c.dim * (c.n_heads + 2 * c.n_kv_heads) * c.head_dim() + c.dim * c.dim +
            3.0 * c.dim * c.hidden_dim) +
       static_cast<double>(c.vocab_size) * c.dim) / 1e9;
  const double peak_rss_mb = PeakRssMb();  // before the bandwidth probe's buffer
  const double memory_gb_per_s = MemoryReadGbPerS();
  nlohmann::json j = {
      {"model", source},
      {"mode", o.position.mode},
      {"bases", position->bases},
      {"fusion", o.position.fusion},
      {"threads", o.threads},
      {"prompt_tokens", o.prompt_tokens},
      {"gen_tokens", o.gen_tokens},
      {"runs", o.runs},
      {"prefill_tokens_per_s", median.prefill_tokens_per_s},
      {"decode_tokens_per_s", median.decode_tokens_per_s},
      {"decode_weight_gb_per_s", weight_gb_per_s},
      {"memory_read_gb_per_s", memory_gb_per_s},
      {"decode_fraction_of_memory_bandwidth", weight_gb_per_s / memory_gb_per_s},
      {"peak_rss_mb", peak_rss_mb},
      {"decode_rss_growth_mb", rss_growth},
  };
  if (baseline) {
    j["vanilla"] = {{"prefill_tokens_per_s", Median(base_prefill)},
                    {"decode_tokens_per_s", Median(base_decode)}};
    j["prefill_ratio_vs_vanilla"] = Median(prefill_ratio);  // median of per-run ratios
    j["decode_ratio_vs_vanilla"] = Median(decode_ratio);
  }
  if (o.json) {
    std::puts(j.dump().c_str());
  } else {
    std::printf("%s\n", j.dump(2).c_str());
  }
  return absl::OkStatus();
}

}  // namespace

void AddBenchCommand(CLI::App& app) {
  auto o = std::make_shared<BenchOptions>();
  auto* cmd = app.add_subcommand("bench", "measure prefill/decode speed and peak memory");
  cmd->add_option("--model", o->model, "model to measure (default: random weights of --random-shape)");
  cmd->add_option("--tokenizer", o->tokenizer, "tokenizer for --model");
  cmd->add_option("--random-shape", o->random_shape, "shape of the random-weight model")->capture_default_str();
  cmd->add_option("--prompt-tokens", o->prompt_tokens, "prompt length")->capture_default_str()->check(AtLeast(1));
  cmd->add_option("--gen-tokens", o->gen_tokens, "tokens to decode")->capture_default_str()->check(CLI::Range(2, 1 << 20));
  AddThreadsFlag(cmd, o->threads, kAutoThreadsHelp);
  cmd->add_option("--runs", o->runs, "measured runs (the median is reported)")->capture_default_str()->check(AtLeast(1));
  cmd->add_flag("--json", o->json, "print one JSON line");
  cmd->add_option("--weights", o->weights,
                  "compare storage types in one run, e.g. f32,bf16,q8_0,q4_0 (ratios against the first; "
                  "the weights are packed in memory from --model or the random model)");
  cmd->add_option("--concurrency", o->concurrency,
                  "comma-separated stream counts (e.g. 1,4,16,64): that many sequences through one batching "
                  "scheduler in-process; reports aggregate decode tokens/s and inter-token latency per level");
  cmd->add_option("--max-batch-tokens", o->max_batch_tokens, "with --concurrency: rows per engine step (as staved's flag)")
      ->capture_default_str()->check(AtLeast(1));
  cmd->add_option("--arrival-prompt-tokens", o->arrival_prompt_tokens,
                  "with --concurrency: one prompt of this length arrives once the streams decode; reports their "
                  "inter-token p99 during its prefill against p50 before it")
      ->check(CLI::NonNegativeNumber);
  o->position.Register(cmd);
  cmd->add_flag("--no-baseline", o->no_baseline, "with --mode buckets: skip the vanilla run in the same process");
  AddServerFlags(cmd, o->server)->description(
      "also stream the same greedy requests through staved at this address and report the ratio "
      "(needs --model: the server must serve the same model)");
  cmd->callback([o] { CommandStatus() = RunBench(*o); });
}

}  // namespace stave::cli
