#include "server/http_api.h"

#include <httplib.h>
#include <sys/socket.h>

#include <ctime>
#include <exception>
#include <random>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/utf8.h"
#include "server/completion_run.h"
#include "server/openai_json.h"

namespace stave::server {

int HttpStatusFor(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk: return 200;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange: return 400;
    case absl::StatusCode::kUnauthenticated: return 401;
    case absl::StatusCode::kPermissionDenied: return 403;
    case absl::StatusCode::kNotFound: return 404;
    case absl::StatusCode::kResourceExhausted: return 429;  // the admission queue or the KV pool
    case absl::StatusCode::kUnimplemented: return 501;
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kCancelled: return 503;  // shutting down
    case absl::StatusCode::kDeadlineExceeded: return 504;
    default: return 500;
  }
}

namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr char kCompletions[] = "/v1/completions";
constexpr char kChat[] = "/v1/chat/completions";

// Text handed to clients is valid UTF-8 already; the replace handler is a last guard so that a
// stray byte can never turn into an exception on a server thread.
std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

const char* ErrorType(int http_status) {
  switch (http_status) {
    case 400:
    case 404:
    case 413: return "invalid_request_error";
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 429: return "rate_limit_error";
    default: return "server_error";
  }
}

// The request field an error names: messages start with it ("max_tokens: ...", "stave.bases: ...",
// "temperature must be ...").
json ParamOf(absl::string_view message) {
  const size_t end = message.find_first_of(": ");
  if (end == 0 || end == absl::string_view::npos || end > 64) return nullptr;
  const absl::string_view word = message.substr(0, end);
  for (char c : word)
    if (!(absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '_' || c == '.' || c == '[' || c == ']'))
      return nullptr;
  if (message[end] == ' ' && word != "temperature" && word != "top_p" && word != "top_k") return nullptr;
  return std::string(word);
}

json ErrorJson(const absl::Status& status, std::string_view code = "") {
  const int http = HttpStatusFor(status.code());
  return {{"error",
           {{"message", std::string(status.message())},
            {"type", ErrorType(http)},
            {"param", ParamOf(status.message())},
            {"code", code.empty() ? json(nullptr) : json(std::string(code))}}}};
}

void SendError(httplib::Response& res, const absl::Status& status, std::string_view code = "") {
  res.status = HttpStatusFor(status.code());
  res.set_content(Dump(ErrorJson(status, code)), "application/json");
}

std::string AnswerId(bool chat) {
  static thread_local std::mt19937_64 engine{std::random_device{}()};
  return absl::StrFormat("%s-%016x%08x", chat ? "chatcmpl" : "cmpl", engine(), static_cast<uint32_t>(engine()));
}

// One choice's progress while its steps arrive: the text and tokens not yet sent (streaming) or
// all of them (a whole answer).
struct ChoiceState {
  ChoiceResult pending;
  int prev_token = 0;  // to decode the next token's piece for logprobs
  uint32_t completion_tokens = 0;
  bool first_sent = false, finished = false;
};

// Applies one engine step to its choice. A failed step or a cancellation is returned as a status.
absl::Status Apply(const Model& model, bool logprobs, const Sequence::Step& step, ChoiceState& c) {
  if (!step.status.ok()) return step.status;
  if (step.finished && step.finish_reason == "cancelled")
    return absl::UnavailableError("the request was cancelled: staved is shutting down");
  if (step.token >= 0) {
    ++c.completion_tokens;
    ++c.pending.completion_tokens;
    if (logprobs) {
      c.pending.tokens.push_back(ToValidUtf8(model.tokenizer()->DecodeToken(c.prev_token, step.token)));
      c.pending.logprobs.push_back(step.logprob);
    }
    c.prev_token = step.token;
  }
  c.pending.text += step.text;
  if (step.finished) {
    c.finished = true;
    c.pending.finish_reason = OpenAiFinishReason(step.finish_reason);
  }
  return absl::OkStatus();
}

// A streamed answer: everything the content provider needs across its calls.
struct Stream {
  std::unique_ptr<CompletionRun> run;
  const Model* model = nullptr;
  Metrics* metrics = nullptr;
  const std::atomic<bool>* stopping = nullptr;
  std::atomic<int>* running = nullptr;
  const char* route = "";
  AnswerHeader header;
  std::vector<ChoiceState> choices;
  uint32_t prompt_tokens = 0;
  uint64_t config_version = 0;
  bool include_usage = false, counted = false;
  Clock::time_point last_write = Clock::now();

  void Count(absl::StatusCode code) {
    if (counted) return;
    counted = true;
    metrics->HttpRequestFinished(route, absl::StatusCodeToString(code));
  }
  ~Stream() {
    run.reset();  // cancels whatever is still running
    --*running;
  }
};

bool Send(httplib::DataSink& sink, const std::string& event) { return sink.write(event.data(), event.size()); }

// One call of the chunked content provider: waits briefly for steps, writes them as events.
// false ends the response: the client is gone (the run is cancelled) or a failure was reported.
bool StreamSome(Stream& s, httplib::DataSink& sink) {
  auto events = s.run->Wait(std::chrono::milliseconds(200));
  if (events.empty()) {
    if (s.stopping->load()) s.run->Cancel();  // staved is stopping: the run ends with "cancelled"
    // A comment line now and then: the only way to notice a client that left while nothing is
    // produced (a long prefill, a full queue); a write to a closed connection fails.
    if (Clock::now() - s.last_write > std::chrono::seconds(1)) {
      s.last_write = Clock::now();
      if (!Send(sink, ": keep-alive\n\n")) {
        s.run->Cancel();
        s.Count(absl::StatusCode::kCancelled);
        return false;
      }
    }
    return true;
  }
  for (const auto& e : events) {
    ChoiceState& c = s.choices[e.index];
    absl::Status status = Apply(*s.model, s.header.logprobs, e.step, c);
    std::string out;
    if (!status.ok()) {
      // The answer has begun (status 200 is sent): the failure goes as an error event.
      s.run->Cancel();
      s.Count(status.code());
      Send(sink, absl::StrCat("data: ", Dump(ErrorJson(status)), "\n\n"));
      sink.done();
      return false;
    }
    // Held-back text (a possible stop string, a split character) makes steps without text; they
    // are sent only when they carry tokens the client asked to see, or end the choice.
    const bool worth = !c.pending.text.empty() || c.finished || !c.pending.tokens.empty() || !c.first_sent;
    if (!worth) continue;
    out = absl::StrCat("data: ", Dump(ChunkJson(s.header, e.index, c.pending, !c.first_sent)), "\n\n");
    c.first_sent = true;
    c.pending = ChoiceResult();
    s.last_write = Clock::now();
    if (!Send(sink, out)) {
      s.run->Cancel();
      s.Count(absl::StatusCode::kCancelled);
      return false;
    }
  }
  if (!s.run->done()) return true;
  uint32_t completion_tokens = 0;
  for (const auto& c : s.choices) completion_tokens += c.completion_tokens;
  std::string tail;
  if (s.include_usage)
    tail = absl::StrCat("data: ", Dump(UsageChunkJson(s.header, s.prompt_tokens, completion_tokens, s.config_version)),
                        "\n\n");
  tail += "data: [DONE]\n\n";
  const bool sent = Send(sink, tail);
  s.Count(sent ? absl::StatusCode::kOk : absl::StatusCode::kCancelled);
  if (sent) sink.done();
  return sent;
}

}  // namespace

HttpApi::HttpApi(const ServerState& state, HttpApiOptions options)
    : state_(state),
      options_(std::move(options)),
      model_name_(PublicModelName(state.model)),
      created_(static_cast<int64_t>(std::time(nullptr))) {}

HttpApi::~HttpApi() {
  if (http_ == nullptr) return;
  stopping_ = true;
  http_->stop();
  if (thread_.joinable()) thread_.join();
}

absl::StatusOr<std::unique_ptr<HttpApi>> HttpApi::Start(const ServerState& state, HttpApiOptions options) {
  const std::string listen = options.listen;
  const size_t colon = listen.rfind(':');
  int port = -1;
  if (colon == std::string::npos || colon == 0 || !absl::SimpleAtoi(listen.substr(colon + 1), &port) || port < 0 ||
      port > 65535)
    return absl::InvalidArgumentError(
        absl::StrCat("--http-listen: expected HOST:PORT with a port in 0..65535, got '", listen, "'"));
  const std::string host = listen.substr(0, colon);
  std::unique_ptr<HttpApi> api(new HttpApi(state, std::move(options)));
  api->http_ = std::make_unique<httplib::Server>();
  httplib::Server& http = *api->http_;
  // As for the metrics port: no SO_REUSEPORT, so a port in use is an error, not a shared port.
  http.set_socket_options([](int socket) {
    int yes = 1;
    setsockopt(socket, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  const int threads = api->options_.threads;
  http.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  http.set_payload_max_length(api->options_.max_body_bytes);
  // An idle keep-alive connection holds a thread: let it go soon.
  http.set_keep_alive_timeout(2);
  api->Routes();
  api->port_ = port == 0 ? http.bind_to_any_port(host) : (http.bind_to_port(host, port) ? port : -1);
  if (api->port_ <= 0)
    return absl::UnavailableError(
        absl::StrCat("--http-listen ", listen, ": cannot listen there (address in use, or not an address of this host)"));
  api->thread_ = std::thread([&http] { http.listen_after_bind(); });
  // httplib's stop() does nothing until the accept loop runs (see metrics.cc): wait for it.
  for (int waited_ms = 0; !http.is_running(); ++waited_ms) {
    if (waited_ms == 5000) {
      api->thread_.detach();
      api->http_.release();  // the detached thread may still use it
      return absl::UnavailableError(absl::StrCat("--http-listen ", listen, ": the HTTP server did not start"));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return api;
}

void HttpApi::Stop(Clock::time_point deadline) {
  draining_ = true;
  while (running_.load() > 0 && Clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  if (running_.load() > 0) spdlog::info("HTTP API: cancelling {} completions still running", running_.load());
  stopping_ = true;  // completions still running cancel their runs within 200 ms
  http_->stop();
  if (thread_.joinable()) thread_.join();
}

void HttpApi::Routes() {
  httplib::Server& http = *http_;
  Metrics& metrics = state_.metrics;

  http.Get("/health", [this, &metrics](const httplib::Request&, httplib::Response& res) {
    const bool serving = !draining_.load();
    res.status = serving ? 200 : 503;
    res.set_content(Dump({{"status", serving ? "ok" : "draining"}}), "application/json");
    metrics.HttpRequestFinished("/health", serving ? "OK" : "UNAVAILABLE");
  });

  http.Get("/v1/models", [this, &metrics](const httplib::Request&, httplib::Response& res) {
    res.set_content(Dump(ModelsJson(model_name_, created_)), "application/json");
    metrics.HttpRequestFinished("/v1/models", "OK");
  });

  // Whatever no route answered (unknown path or method, a body over the limit, a request httplib
  // could not read) gets an OpenAI error object too; our own errors already have a body.
  http.set_error_handler([&metrics](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    absl::Status status;
    if (res.status == 404)
      status = absl::NotFoundError(absl::StrCat("no route ", req.method, " ", req.path,
                                                " (POST /v1/completions, POST /v1/chat/completions, GET /v1/models, "
                                                "GET /health)"));
    else if (res.status == 413)
      status = absl::InvalidArgumentError("the request body is over the server's limit (staved --http-max-body-mb)");
    else if (res.status >= 500)
      status = absl::InternalError(absl::StrCat("HTTP ", res.status, ": internal error"));
    else
      status = absl::InvalidArgumentError(absl::StrCat("HTTP ", res.status, ": the request could not be read"));
    const int http_status = res.status;
    res.set_content(Dump(ErrorJson(status)), "application/json");
    res.status = http_status;  // 413 stays 413 although its status code maps to 400
    metrics.HttpRequestFinished("unmatched", absl::StatusCodeToString(status.code()));
  });

  // The error boundary of a request thread: whatever a handler throws fails that request alone.
  http.set_exception_handler([&metrics](const httplib::Request& req, httplib::Response& res, std::exception_ptr e) {
    std::string what = "unknown exception";
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& x) {
      what = x.what();
    } catch (...) {
    }
    spdlog::error("HTTP {} {} failed: {}", req.method, req.path, what);
    SendError(res, absl::InternalError(absl::StrCat("internal error: ", what)));
    metrics.HttpRequestFinished("unmatched", "INTERNAL");
  });

  for (const bool chat : {false, true}) {
    http.Post(chat ? kChat : kCompletions, [this, chat, &metrics](const httplib::Request& req, httplib::Response& res) {
      const char* route = chat ? kChat : kCompletions;
      auto fail = [&](const absl::Status& status, std::string_view code = "") {
        spdlog::info("{} from {} refused: {}", route, req.remote_addr, status.ToString());
        metrics.HttpRequestFinished(route, absl::StatusCodeToString(status.code()));
        SendError(res, status, code);
      };
      if (draining_.load()) return fail(absl::UnavailableError("staved is shutting down"));
      auto parsed = ParseOpenAiRequest(req.body, chat);
      if (!parsed.ok()) return fail(parsed.status());
      if (!parsed->model.empty() && parsed->model != model_name_)
        return fail(absl::NotFoundError(absl::StrCat("model: '", parsed->model, "' is not served here; this server serves '",
                                                     model_name_, "' (GET /v1/models)")),
                    "model_not_found");
      if (chat) {
        if (!options_.chat_template.has_value())
          return fail(absl::InvalidArgumentError(
              "messages: this model has no chat template (no chat_template in a tokenizer_config.json next to it, and "
              "no staved --chat-template); use /v1/completions with a plain prompt"));
        auto prompt = options_.chat_template->Render(parsed->messages);
        if (!prompt.ok()) return fail(prompt.status());
        parsed->request.set_prompt(*std::move(prompt));
        const std::string end_of_turn = options_.chat_template->EndOfTurn();
        if (!end_of_turn.empty()) parsed->options.implicit_stop.push_back(end_of_turn);
      }
      auto prepared = PrepareGeneration(state_, parsed->request, parsed->options);
      if (!prepared.ok()) return fail(prepared.status());
      auto run = CompletionRun::Start(state_.engine, metrics, std::move(prepared->sequences));
      if (!run.ok()) return fail(run.status());

      AnswerHeader header{.id = AnswerId(chat), .created = static_cast<int64_t>(std::time(nullptr)),
                          .model = model_name_, .chat = chat, .logprobs = parsed->options.logprobs};
      std::vector<ChoiceState> choices(static_cast<size_t>(parsed->options.n));
      for (auto& c : choices) c.prev_token = prepared->last_prompt_token;
      ++running_;

      if (parsed->stream) {
        auto stream = std::make_shared<Stream>();
        stream->run = *std::move(run);
        stream->model = &state_.model;
        stream->metrics = &metrics;
        stream->stopping = &stopping_;
        stream->running = &running_;
        stream->route = route;
        stream->header = std::move(header);
        stream->choices = std::move(choices);
        stream->prompt_tokens = prepared->prompt_tokens;
        stream->config_version = prepared->config_version;
        stream->include_usage = parsed->include_usage;
        res.set_header("Cache-Control", "no-cache");
        res.set_chunked_content_provider(
            "text/event-stream", [stream](size_t, httplib::DataSink& sink) { return StreamSome(*stream, sink); },
            // Called when the response ends, however it ends: a client gone before the first
            // event still cancels the run (and the last owner frees it).
            [stream](bool success) mutable {
              if (!success) {
                stream->run->Cancel();
                stream->Count(absl::StatusCode::kCancelled);
              }
            });
        return;
      }

      // A whole answer: wait for every choice on this (HTTP) thread.
      struct Running {
        std::atomic<int>& n;
        ~Running() { --n; }
      } running{running_};
      absl::Status status;
      while (!(*run)->done()) {
        for (const auto& e : (*run)->Wait(std::chrono::milliseconds(200)))
          if (status.ok()) status = Apply(state_.model, header.logprobs, e.step, choices[e.index]);
        if (!status.ok() || stopping_.load()) (*run)->Cancel();
      }
      if (!status.ok()) return fail(status);
      std::vector<ChoiceResult> results;
      for (auto& c : choices) results.push_back(std::move(c.pending));
      res.set_content(Dump(AnswerJson(header, results, prepared->prompt_tokens, prepared->config_version)),
                      "application/json");
      metrics.HttpRequestFinished(route, "OK");
    });
  }
}

}  // namespace stave::server
