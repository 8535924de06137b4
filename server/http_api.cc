#include "server/http_api.h"

#include <httplib.h>
#include <sys/socket.h>

#include <ctime>
#include <exception>
#include <random>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "server/client_connection.h"
#include "server/completion_run.h"
#include "server/log_fields.h"
#include "server/openai_json.h"
#include "server/request_id.h"
#include "server/request_record.h"
#include "server/sse_stream.h"

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

void SendError(httplib::Response& res, const absl::Status& status, absl::string_view code = "") {
  res.status = HttpStatusFor(status.code());
  res.set_content(Dump(ErrorJson(status, code)), "application/json");
}

std::string AnswerId(bool chat) {
  static thread_local std::mt19937_64 engine{std::random_device{}()};
  return absl::StrFormat("%s-%016x%08x", chat ? "chatcmpl" : "cmpl", engine(), static_cast<uint32_t>(engine()));
}

// The record of an HTTP request; its id was chosen by the pre-routing handler and is in the
// response headers already (requests httplib rejects before routing get one here).
RequestRecord HttpRecord(const httplib::Request& req, httplib::Response& res, absl::string_view route) {
  RequestRecord record;
  record.request_id = res.get_header_value(kRequestIdHttpHeader);
  if (record.request_id.empty()) {
    record.request_id = RequestIdFor(req.get_header_value(kRequestIdHttpHeader));
    res.set_header(kRequestIdHttpHeader, record.request_id);
  }
  record.method = std::string(route);
  record.transport = "http";
  record.peer = absl::StrCat(req.remote_addr, ":", req.remote_port);
  return record;
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

  // Every request gets its id first, so every answer carries it, errors included.
  http.set_pre_routing_handler([](const httplib::Request& req, httplib::Response& res) {
    res.set_header(kRequestIdHttpHeader, RequestIdFor(req.get_header_value(kRequestIdHttpHeader)));
    return httplib::Server::HandlerResponse::Unhandled;
  });

  http.Get("/health", [this, &metrics](const httplib::Request& req, httplib::Response& res) {
    RequestRecord record = HttpRecord(req, res, "/health");
    const bool serving = !draining_.load();
    res.status = serving ? 200 : 503;
    res.set_content(Dump({{"status", serving ? "ok" : "draining"}}), "application/json");
    record.Finish(metrics, serving ? absl::StatusCode::kOk : absl::StatusCode::kUnavailable, res.status);
  });

  http.Get("/v1/models", [this, &metrics](const httplib::Request& req, httplib::Response& res) {
    RequestRecord record = HttpRecord(req, res, "/v1/models");
    res.set_content(Dump(ModelsJson(model_name_, created_)), "application/json");
    record.Finish(metrics, absl::StatusCode::kOk, 200);
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
    RequestRecord record = HttpRecord(req, res, "unmatched");
    res.set_content(Dump(ErrorJson(status)), "application/json");
    res.status = http_status;  // 413 stays 413 although its status code maps to 400
    record.error = std::string(status.message());
    record.Finish(metrics, status.code(), http_status);
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
    RequestRecord record = HttpRecord(req, res, "unmatched");
    spdlog::error("{}", LogFields().Add("request_id", record.request_id).Attach(
                            absl::StrCat("HTTP ", req.method, " ", req.path, " failed: ", what)));
    SendError(res, absl::InternalError(absl::StrCat("internal error: ", what)));
    record.error = what;
    record.Finish(metrics, absl::StatusCode::kInternal, res.status);
  });

  for (const bool chat : {false, true}) {
    http.Post(chat ? kChat : kCompletions, [this, chat, &metrics](const httplib::Request& req, httplib::Response& res) {
      const char* route = chat ? kChat : kCompletions;
      RequestRecord record = HttpRecord(req, res, route);
      auto fail = [&](const absl::Status& status, absl::string_view code = "") {
        SendError(res, status, code);
        record.error = std::string(status.message());
        record.Finish(metrics, status.code(), res.status);
      };
      if (draining_.load()) return fail(absl::UnavailableError("staved is shutting down"));
      // A completion holds its thread until it ends: one thread stays free for /health and
      // /v1/models, which load balancers must reach even when every other thread streams.
      struct Slot {
        std::atomic<int>& running;
        bool held = true;
        ~Slot() {
          if (held) --running;
        }
      } slot{running_};
      if (running_.fetch_add(1) >= options_.threads - 1)
        return fail(absl::ResourceExhaustedError(absl::StrCat(
            "the HTTP API is answering ", options_.threads - 1, " completions, its limit (staved --http-threads ",
            options_.threads, " less one kept for /health); retry later")));
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
      record.prompt_tokens = prepared->prompt_tokens;
      record.config_version = prepared->config_version;
      auto run = CompletionRun::Start(state_.engine, metrics, std::move(prepared->sequences));
      if (!run.ok()) return fail(run.status());
      record.finish_reasons.assign(static_cast<size_t>(parsed->options.n), "");

      AnswerHeader header{.id = AnswerId(chat), .created = static_cast<int64_t>(std::time(nullptr)),
                          .model = model_name_, .chat = chat, .logprobs = parsed->options.logprobs};
      std::vector<ChoiceState> choices(static_cast<size_t>(parsed->options.n));
      for (auto& c : choices) c.prev_token = prepared->last_prompt_token;

      if (parsed->stream) {
        auto stream = std::make_shared<SseStream>();
        stream->run = *std::move(run);
        stream->model = &state_.model;
        stream->metrics = &metrics;
        stream->stopping = &stopping_;
        stream->running = &running_;  // the stream releases the slot when it ends
        slot.held = false;
        stream->record = std::move(record);
        stream->header = std::move(header);
        stream->choices = std::move(choices);
        stream->include_usage = parsed->include_usage;
        res.set_header("Cache-Control", "no-cache");
        res.set_chunked_content_provider(
            "text/event-stream", [stream](size_t, httplib::DataSink& sink) { return WriteEvents(*stream, sink); },
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

      // A whole answer: wait for every choice on this (HTTP) thread, watching the connection
      // (nothing is written before the end, so only the socket tells that the client left).
      const ClientConnection connection =
          ClientConnection::Find(req.local_addr, req.local_port, req.remote_addr, req.remote_port);
      absl::Status status;
      bool client_gone = false;
      while (!(*run)->done()) {
        for (const auto& e : (*run)->Wait(std::chrono::milliseconds(200))) {
          if (e.step.finished) record.finish_reasons[e.index] = e.step.finish_reason;
          if (status.ok()) status = AddStep(state_.model, header.logprobs, e.step, choices[e.index]);
        }
        if (!client_gone && connection.Closed()) client_gone = true;
        if (!status.ok() || stopping_.load() || client_gone) (*run)->Cancel();
      }
      for (const auto& c : choices) record.generated_tokens += c.completion_tokens;
      const auto timing = (*run)->timing();
      record.queue_seconds = timing.queue_seconds;
      if (timing.first_token.has_value()) record.ttft_seconds = SecondsBetween(record.arrived, *timing.first_token);
      run->reset();  // its KV blocks are free already; the rest of it now
      if (client_gone) {
        // No answer can reach it; httplib's write of one fails quietly. No HTTP status was sent.
        record.error = "the client closed the connection before the answer";
        record.Finish(metrics, absl::StatusCode::kCancelled);
        return;
      }
      if (!status.ok()) return fail(status);
      std::vector<ChoiceResult> results;
      for (auto& c : choices) results.push_back(std::move(c.pending));
      res.set_content(Dump(AnswerJson(header, results, prepared->prompt_tokens, prepared->config_version)),
                      "application/json");
      record.Finish(metrics, absl::StatusCode::kOk, 200);
    });
  }
}

}  // namespace stave::server
