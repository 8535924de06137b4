// stave loadtest: many concurrent Generate streams against staved, measuring time to first token,
// inter-token latency, request latency and throughput.
//
// Closed loop (no --rate): C workers send requests back to back, so the offered load adapts to
// the server's speed. Open loop (--rate QPS): request i is due at i / QPS seconds, whatever the
// server does, with at most C in flight; a start delayed because all C were busy is counted as a
// late start (a sign the server, or C, cannot keep up with the rate). Latencies are measured from
// the actual send.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <latch>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "client/channel.h"
#include "client/commands.h"
#include "client/flags.h"
#include "client/latency_stats.h"
#include "client/position_flags.h"
#include "client/remote_generate.h"
#include "lab/kv_retrieval.h"
#include "nlohmann/json.hpp"

namespace stave::cli {
namespace {

using Clock = std::chrono::steady_clock;

double Millis(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }
double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

constexpr int kMaxConcurrency = 1024;
// Worker wake-ups and lock hand-offs jitter by microseconds; only a start later than this behind
// schedule counts as late.
constexpr auto kLateTolerance = std::chrono::milliseconds(1);
// How long to wait for the server before sending anything, so that an unreachable server is one
// clear error rather than every request failing.
constexpr auto kConnectTimeout = std::chrono::seconds(5);

struct LoadtestOptions {
  ChannelOptions channel;
  int concurrency = 1;
  int requests = 0;         // total requests to start (exclusive with duration_s)
  double duration_s = 0;    // start requests for this long
  double rate = 0;          // requests per second; 0 = closed loop
  std::string prompts_file;
  int max_tokens = 64;
  float temperature = 1.0f;
  uint64_t seed = 0;
  PositionFlags position;
  bool json = false;
};

// Short story openings in the style of TinyStories, for models that write stories (stories260K).
const std::vector<std::string> kStoryPrompts = {
    "Once upon a time, there was a little girl named Lily",
    "One day, a small dog found a red ball in the park",
    "Tom and his mom went to the store to buy",
    "There was a big tree in the middle of the forest",
    "The sun was shining and the birds were singing",
    "Sam had a toy car that he loved very much",
    "A little cat wanted to climb the tall fence",
    "Mia saw a rainbow after the rain and",
};

// Models made by `stave train` (the embedded default model is one) know one task, key-value
// retrieval, and no stories: a story opening gets about one token back. Their tokenizers have
// the task's fixed pieces (KvTokenizerSymbols), so `Query: ` and a key with its separator are
// one token each; a story model's tokenizer splits them.
absl::StatusOr<bool> ServesRetrievalModel(stave::v1::Inference::Stub& stub, const ChannelOptions& channel) {
  for (const char* text : {"Query: ", "\"mo\": \""}) {
    stave::v1::TokenizeRequest request;
    request.set_text(text);
    stave::v1::TokenizeResponse response;
    grpc::ClientContext context;
    SetDeadline(context, channel.timeout_s);
    auto status = FromGrpc(stub.Tokenize(&context, request, &response), channel.server, channel.timeout_s);
    if (!status.ok()) return status;
    if (response.token_ids_size() != 1) return false;
  }
  return true;
}

// Retrieval prompts as the default model was trained on (8-12 records, the gold record anywhere);
// it answers the value and a closing quote, then ends the text (measured: 2 tokens a request).
std::vector<std::string> RetrievalPrompts() {
  std::vector<std::string> prompts;
  for (int i = 0; i < 16; ++i) {
    const int records = 8 + i % 5;
    prompts.push_back(MakeKvRetrievalExample(records, (i * 7) % records, 1, 1000 + i).prompt);
  }
  return prompts;
}

// --prompts FILE, else built-in prompts the served model can answer.
absl::StatusOr<std::vector<std::string>> LoadPrompts(const std::string& path,
                                                     stave::v1::Inference::Stub& stub,
                                                     const ChannelOptions& channel) {
  if (path.empty()) {
    auto retrieval = ServesRetrievalModel(stub, channel);
    if (!retrieval.ok()) return retrieval.status();
    std::fprintf(stderr, "loadtest: built-in %s prompts (%s; --prompts FILE to choose)\n",
                 *retrieval ? "key-value retrieval" : "story",
                 *retrieval ? "the server's tokenizer has the retrieval task's pieces"
                            : "the server's model is not a stave train retrieval model");
    return *retrieval ? RetrievalPrompts() : kStoryPrompts;
  }
  std::ifstream in(path);
  if (!in) return absl::InvalidArgumentError(absl::StrCat("--prompts ", path, ": cannot read it"));
  std::vector<std::string> prompts;
  for (std::string line; std::getline(in, line);) {
    absl::string_view text = absl::StripTrailingAsciiWhitespace(line);  // CRLF files too
    if (!absl::StripAsciiWhitespace(text).empty()) prompts.emplace_back(text);
  }
  if (prompts.empty())
    return absl::InvalidArgumentError(absl::StrCat("--prompts ", path, ": no non-empty lines"));
  return prompts;
}

// One request's measurements.
struct Sample {
  absl::Status status;
  std::optional<double> ttft_ms;  // unset when no token arrived
  std::vector<double> itl_ms;     // gaps between successive tokens
  double latency_ms = 0;          // send -> end of stream
  size_t completion_tokens = 0;
};

// Which request starts next, and when. Shared by the workers; a worker asks only when it is free.
class Schedule {
 public:
  Schedule(const LoadtestOptions& o) : o_(o) {}

  struct Start {
    uint64_t index;
    Clock::time_point at;
    bool late;
  };

  // When the first request started (the schedule's origin); now if none has yet.
  Clock::time_point t0() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return t0_.value_or(Clock::now());
  }

  std::optional<Start> Next() {
    std::lock_guard<std::mutex> lock(mutex_);
    const Clock::time_point now = Clock::now();
    // The clock starts at the first request rather than at thread start-up, whose wake-up delays
    // would otherwise count as late starts.
    if (!t0_) t0_ = now;
    const Clock::time_point t0 = *t0_;
    if (o_.requests > 0 && next_ >= static_cast<uint64_t>(o_.requests)) return std::nullopt;
    Clock::time_point at = now;
    if (o_.rate > 0)
      at = t0 + std::chrono::duration_cast<Clock::duration>(
                     std::chrono::duration<double>(static_cast<double>(next_) / o_.rate));
    if (o_.duration_s > 0 && Seconds(at - t0) >= o_.duration_s) return std::nullopt;
    const bool late = o_.rate > 0 && now - at > kLateTolerance;
    if (late) ++late_starts_;
    return Start{next_++, at, late};
  }

  uint64_t late_starts() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return late_starts_;
  }

 private:
  const LoadtestOptions& o_;
  mutable std::mutex mutex_;
  std::optional<Clock::time_point> t0_;
  uint64_t next_ = 0, late_starts_ = 0;
};

// Counters for the live progress line, updated by the workers as tokens arrive.
struct Progress {
  std::atomic<uint64_t> done{0}, errors{0}, tokens{0};
  std::mutex mutex;
  std::condition_variable all_done;
  int workers_running = 0;
};

Sample RunOne(stave::v1::Inference::Stub& stub, const std::string& server,
              const RemoteRequest& request, Progress& progress) {
  Sample s;
  const Clock::time_point sent = Clock::now();
  Clock::time_point last = sent;
  auto result = RemoteGenerate(stub, server, request, [&](std::optional<int> token, std::string_view) {
    if (!token) return;
    const Clock::time_point now = Clock::now();
    if (!s.ttft_ms) s.ttft_ms = Millis(now - sent);
    else s.itl_ms.push_back(Millis(now - last));
    last = now;
    progress.tokens.fetch_add(1, std::memory_order_relaxed);
  });
  s.latency_ms = Millis(Clock::now() - sent);
  if (result.ok()) s.completion_tokens = result->token_ids.size();
  else s.status = result.status();
  return s;
}

// Rewritten in place on a terminal; a plain line every 5 s when stderr is a log file.
class ProgressLine {
 public:
  ProgressLine(const LoadtestOptions& o) : o_(o), tty_(isatty(STDERR_FILENO) != 0) {}
  std::chrono::seconds period() const { return std::chrono::seconds(tty_ ? 1 : 5); }

  void Print(const Progress& p, Clock::duration elapsed, bool final) {
    const double s = Seconds(elapsed);
    std::string total = o_.requests > 0 ? absl::StrCat("/", o_.requests)
                                        : absl::StrFormat(" (%gs run)", o_.duration_s);
    std::string line = absl::StrFormat("loadtest: %6.1fs  %llu%s done  %llu errors  %.1f tokens/s", s,
                                       static_cast<unsigned long long>(p.done.load()), total,
                                       static_cast<unsigned long long>(p.errors.load()),
                                       s > 0 ? static_cast<double>(p.tokens.load()) / s : 0.0);
    if (tty_) std::fprintf(stderr, "\r%s\x1b[K%s", line.c_str(), final ? "\n" : "");
    else std::fprintf(stderr, "%s\n", line.c_str());
    std::fflush(stderr);
  }

 private:
  const LoadtestOptions& o_;
  const bool tty_;
};

struct Report {
  uint64_t ok = 0, failed = 0, late_starts = 0, completion_tokens = 0;
  double wall_s = 0;
  LatencySummary ttft, itl, latency;
  std::map<std::string, std::pair<uint64_t, std::string>> errors;  // code -> count, a message
};

Report BuildReport(const std::vector<std::vector<Sample>>& per_worker, double wall_s,
                 uint64_t late_starts) {
  Report r;
  r.wall_s = wall_s;
  r.late_starts = late_starts;
  std::vector<double> ttft, itl, latency;
  for (const auto& samples : per_worker) {
    for (const Sample& s : samples) {
      if (!s.status.ok()) {
        ++r.failed;
        auto& [count, message] = r.errors[absl::StatusCodeToString(s.status.code())];
        if (count++ == 0) message = std::string(s.status.message());
        continue;
      }
      ++r.ok;
      r.completion_tokens += s.completion_tokens;
      if (s.ttft_ms) ttft.push_back(*s.ttft_ms);
      itl.insert(itl.end(), s.itl_ms.begin(), s.itl_ms.end());
      latency.push_back(s.latency_ms);
    }
  }
  r.ttft = Summarize(std::move(ttft));
  r.itl = Summarize(std::move(itl));
  r.latency = Summarize(std::move(latency));
  return r;
}

nlohmann::json ToJson(const LatencySummary& s) {
  return {{"p50", s.p50}, {"p90", s.p90}, {"p99", s.p99}, {"mean", s.mean}, {"max", s.max},
          {"count", s.count}};
}

void PrintReport(const LoadtestOptions& o, const Report& r) {
  const double requests_per_s = r.wall_s > 0 ? r.ok / r.wall_s : 0;
  const double tokens_per_s = r.wall_s > 0 ? r.completion_tokens / r.wall_s : 0;
  if (o.json) {
    nlohmann::json errors = nlohmann::json::object(), samples = nlohmann::json::object();
    for (const auto& [code, entry] : r.errors) {
      errors[code] = entry.first;
      samples[code] = entry.second;
    }
    nlohmann::json j = {
        {"server", o.channel.server},
        {"concurrency", o.concurrency},
        {"rate", o.rate > 0 ? nlohmann::json(o.rate) : nlohmann::json(nullptr)},
        {"requests_ok", r.ok},
        {"requests_failed", r.failed},
        {"wall_seconds", r.wall_s},
        {"requests_per_s", requests_per_s},
        {"completion_tokens", r.completion_tokens},
        {"tokens_per_s", tokens_per_s},
        {"ttft_ms", ToJson(r.ttft)},
        {"itl_ms", ToJson(r.itl)},
        {"latency_ms", ToJson(r.latency)},
        {"errors", errors},
        {"error_samples", samples},
        {"late_starts", r.late_starts},
    };
    std::puts(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    return;
  }
  std::printf("server:       %s, concurrency %d, %s, max %d tokens\n", o.channel.server.c_str(),
              o.concurrency,
              o.rate > 0 ? absl::StrFormat("open loop at %g requests/s", o.rate).c_str()
                         : "closed loop",
              o.max_tokens);
  std::printf("requests:     %llu ok, %llu failed\n", static_cast<unsigned long long>(r.ok),
              static_cast<unsigned long long>(r.failed));
  std::printf("wall time:    %.3f s\n", r.wall_s);
  std::printf("throughput:   %.2f requests/s, %.1f completion tokens/s (%llu tokens)\n",
              requests_per_s, tokens_per_s, static_cast<unsigned long long>(r.completion_tokens));
  if (o.rate > 0)
    std::printf("late starts:  %llu (due while all %d in flight)\n",
                static_cast<unsigned long long>(r.late_starts), o.concurrency);
  std::printf("%-13s %9s %9s %9s %9s %9s %8s\n", "(ms)", "p50", "p90", "p99", "mean", "max", "n");
  auto row = [](const char* name, const LatencySummary& s) {
    std::printf("%-13s %9.2f %9.2f %9.2f %9.2f %9.2f %8zu\n", name, s.p50, s.p90, s.p99, s.mean,
                s.max, s.count);
  };
  row("TTFT", r.ttft);
  row("ITL", r.itl);
  row("latency", r.latency);
  if (!r.errors.empty()) {
    std::printf("errors:\n");
    for (const auto& [code, entry] : r.errors)
      std::printf("  %s: %llu (e.g. %s)\n", code.c_str(), static_cast<unsigned long long>(entry.first),
                  entry.second.c_str());
  }
}

absl::Status Validate(const LoadtestOptions& o) {
  if (o.concurrency < 1 || o.concurrency > kMaxConcurrency)
    return absl::InvalidArgumentError(absl::StrCat("--concurrency: must be in 1..", kMaxConcurrency));
  if ((o.requests > 0) == (o.duration_s > 0))
    return absl::InvalidArgumentError("give --requests N or --duration SECONDS");
  if (o.max_tokens < 1) return absl::InvalidArgumentError("--max-tokens: must be >= 1");
  return absl::OkStatus();
}

absl::Status RunLoadtest(const LoadtestOptions& o) {
  if (auto status = Validate(o); !status.ok()) return status;
  if (!o.prompts_file.empty() && !std::ifstream(o.prompts_file))  // before connecting
    return absl::InvalidArgumentError(absl::StrCat("--prompts ", o.prompts_file, ": cannot read it"));
  auto position = o.position.Override();
  if (!position.ok()) return position.status();
  auto channel = OpenChannel(o.channel);
  if (!channel.ok()) return channel.status();
  if (!(*channel)->WaitForConnected(std::chrono::system_clock::now() + kConnectTimeout))
    return absl::UnavailableError(absl::StrCat(
        "cannot reach ", o.channel.server, " within ",
        std::chrono::duration_cast<std::chrono::seconds>(kConnectTimeout).count(),
        " s (is staved running there?)"));
  auto stub = stave::v1::Inference::NewStub(*channel);
  auto prompts = LoadPrompts(o.prompts_file, *stub, o.channel);
  if (!prompts.ok()) return prompts.status();

  Schedule schedule(o);
  Progress progress;
  progress.workers_running = o.concurrency;
  std::vector<std::vector<Sample>> samples(o.concurrency);
  std::latch ready(o.concurrency + 1);  // no request starts before every worker thread exists
  std::vector<std::thread> workers;
  for (int w = 0; w < o.concurrency; ++w) {
    workers.emplace_back([&, w] {
      ready.arrive_and_wait();
      while (auto start = schedule.Next()) {
        if (!start->late) std::this_thread::sleep_until(start->at);
        RemoteRequest request;
        request.prompt = (*prompts)[start->index % prompts->size()];
        request.max_tokens = o.max_tokens;
        request.temperature = o.temperature;
        request.seed = o.seed + start->index;
        request.position = *position;
        request.timeout_s = o.channel.timeout_s;
        Sample s = RunOne(*stub, o.channel.server, request, progress);
        if (!s.status.ok()) progress.errors.fetch_add(1);
        progress.done.fetch_add(1);
        samples[w].push_back(std::move(s));
      }
      std::lock_guard<std::mutex> lock(progress.mutex);
      if (--progress.workers_running == 0) progress.all_done.notify_one();
    });
  }
  ready.arrive_and_wait();

  ProgressLine line(o);
  {
    std::unique_lock<std::mutex> lock(progress.mutex);
    while (!progress.all_done.wait_for(lock, line.period(),
                                       [&] { return progress.workers_running == 0; })) {
      line.Print(progress, Clock::now() - schedule.t0(), false);
    }
  }
  const Clock::duration wall = Clock::now() - schedule.t0();
  for (auto& worker : workers) worker.join();
  line.Print(progress, wall, true);

  const Report report = BuildReport(samples, Seconds(wall), schedule.late_starts());
  PrintReport(o, report);
  if (report.ok == 0)
    return absl::UnavailableError(absl::StrCat("no request succeeded (", report.failed,
                                               " failed; see the errors above)"));
  return absl::OkStatus();
}

}  // namespace

void AddLoadtestCommand(CLI::App& app) {
  auto o = std::make_shared<LoadtestOptions>();
  auto* cmd = app.add_subcommand("loadtest", "load-test staved with concurrent Generate streams; reports TTFT, inter-token latency, request latency and throughput");
  AddServerFlags(cmd, o->channel)->required();
  cmd->add_option("--concurrency", o->concurrency, "requests in flight at most (workers)")->capture_default_str()->check(AtLeast(1));
  auto* requests = cmd->add_option("--requests", o->requests, "requests to send in total")->check(AtLeast(1));
  auto* duration = cmd->add_option("--duration", o->duration_s, "or: keep starting requests for this many seconds")->check(Positive());
  requests->excludes(duration);
  cmd->add_option("--rate", o->rate, "open loop: start requests at this rate (requests/s) instead of back to back")->check(Positive());
  cmd->add_option("--prompts", o->prompts_file, "file of prompts, one per line (default: built-in prompts for the served model: key-value retrieval for a stave train model such as the default one, else story openings)");
  cmd->add_option("--max-tokens", o->max_tokens, "tokens to generate per request at most")->capture_default_str()->check(AtLeast(1));
  cmd->add_option("--temperature", o->temperature, "0 = greedy")->capture_default_str();
  cmd->add_option("--seed", o->seed, "request i samples with seed SEED + i")->capture_default_str();
  o->position.Register(cmd);
  cmd->footer("Position flags (--mode, --bases, ...) override the server's configuration for these "
              "requests only; without any, the server's current configuration applies.");
  cmd->add_flag("--json", o->json, "print the report as one JSON object (requests_per_s counts successful requests)");
  cmd->callback([o] { CommandStatus() = RunLoadtest(*o); });
}

}  // namespace stave::cli
