#include "server/inference_service.h"

#include <chrono>
#include <deque>
#include <exception>
#include <filesystem>
#include <random>
#include <mutex>

#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "core/score.h"
#include "core/utf8.h"
#include "proto/finish_reason_proto.h"
#include "proto/position_proto.h"
#include "server/request_id.h"

namespace stave::server {

grpc::Status ToGrpcStatus(const absl::Status& s) {
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

RequestRecord StartGrpcRecord(grpc::CallbackServerContext* context, std::string_view method) {
  RequestRecord record;
  const auto& metadata = context->client_metadata();
  const auto supplied = metadata.find(kRequestIdGrpcKey);
  record.request_id = RequestIdFor(supplied == metadata.end()
                                       ? std::string_view()
                                       : std::string_view(supplied->second.data(), supplied->second.size()));
  // Before any write or Finish: initial metadata goes out with the first of them.
  context->AddInitialMetadata(kRequestIdGrpcKey, record.request_id);
  record.method = std::string(method);
  record.transport = "grpc";
  record.peer = context->peer();
  return record;
}

void FinishUnary(grpc::ServerUnaryReactor* reactor, Metrics& metrics, RequestRecord& record,
                 const absl::Status& status) {
  if (!status.ok()) record.error = std::string(status.message());
  record.Finish(metrics, status.code());
  reactor->Finish(ToGrpcStatus(status));
}

namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point t) { return SecondsBetween(t); }

// Streams the engine's steps to one client. The engine holds the job (not the reactor): the
// reactor may be gone (client cancelled) while the engine still finishes the step, so steps go
// through `Sink`, which the reactor detaches from when it is done.
class GenerateReactor : public grpc::ServerWriteReactor<stave::v1::GenerateResponse> {
 public:
  struct Sink {
    std::mutex mutex;
    GenerateReactor* reactor = nullptr;
  };

  GenerateReactor(const ServerState& state, grpc::CallbackServerContext* context,
                  const stave::v1::GenerateRequest& request)
      : sink_(std::make_shared<Sink>()) {
    sink_->reactor = this;
    RequestRecord record = StartGrpcRecord(context, "Generate");
    absl::Status status = Start(state, record, request);
    if (!status.ok()) {
      record.error = std::string(status.message());
      record.Finish(state.metrics, status.code());
      std::lock_guard<std::mutex> lock(sink_->mutex);
      sink_->reactor = nullptr;
      std::lock_guard<std::mutex> own(mutex_);
      finished_ = true;
      Finish(ToGrpcStatus(status));
    }
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!pending_.empty()) pending_.pop_front();
    writing_ = false;
    if (!failed_.ok()) {
      FinishLocked(failed_);
      return;
    }
    if (!ok) {  // the stream broke (client gone): end the call, the engine drops the sequence
      if (job_ != nullptr) job_->cancelled = true;
      FinishLocked(grpc::Status(grpc::StatusCode::CANCELLED, "the client went away"));
      return;
    }
    WriteNextLocked();
  }

  // The client cancelled or the deadline passed: a queued job leaves the queue now.
  void OnCancel() override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (job_ != nullptr) job_->cancelled = true;
      // A write in flight fails and finishes the call from OnWriteDone.
      if (!writing_) FinishLocked(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled by the client"));
    }
    // Outside our lock: the engine reports the cancellation through the sink, which takes it.
    if (job_ != nullptr) engine_->Cancelled();
  }

  void OnDone() override {
    {
      std::lock_guard<std::mutex> lock(sink_->mutex);
      sink_->reactor = nullptr;
    }
    if (job_ != nullptr) job_->cancelled = true;
    delete this;
  }

 private:
  // Per-stream bookkeeping the engine thread updates (metrics, the log line, the final message).
  struct Progress {
    RequestRecord record;
    Clock::time_point last_token;
  };

  // On success the record moves into the job's callback, which finishes it; on error the caller
  // finishes it.
  absl::Status Start(const ServerState& state, RequestRecord& record, const stave::v1::GenerateRequest& r) {
    engine_ = &state.engine;
    auto prepared = PrepareGeneration(state, r);
    if (!prepared.ok()) return prepared.status();
    record.prompt_tokens = prepared->prompt_tokens;
    record.config_version = prepared->config_version;
    auto progress = std::make_shared<Progress>();
    progress->record = record;
    job_ = std::make_shared<EngineJob>();
    job_->sequence = std::move(prepared->sequences.front());
    std::shared_ptr<Sink> sink = sink_;
    Metrics& metrics = state.metrics;
    // The job owns this callback, so the raw pointer lives as long as any call of it.
    job_->on_step = [sink, progress, &metrics, job = job_.get()](const Sequence::Step& step) {
      RequestRecord& record = progress->record;
      if (!record.queue_seconds.has_value() && job->admitted.has_value())
        record.queue_seconds = SecondsBetween(job->submitted, *job->admitted);
      stave::v1::GenerateResponse msg;
      if (step.token >= 0) {
        msg.set_token_id(static_cast<uint32_t>(step.token));
        const auto now = Clock::now();
        if (record.generated_tokens++ == 0) {
          record.ttft_seconds = SecondsSince(record.arrived);
          metrics.TimeToFirstToken(*record.ttft_seconds);
        } else {
          metrics.InterTokenLatency(std::chrono::duration<double>(now - progress->last_token).count());
        }
        progress->last_token = now;
        metrics.TokensGenerated(1);
      }
      if (!step.status.ok()) {  // the engine's error boundary: this request failed alone
        record.finish_reasons = {"error"};
        record.error = std::string(step.status.message());
        record.Finish(metrics, step.status.code());
        std::lock_guard<std::mutex> lock(sink->mutex);
        if (sink->reactor != nullptr) sink->reactor->Fail(step.status);
        return;
      }
      msg.set_text(step.text);
      if (step.finished) {
        msg.set_finish_reason(step.finish_reason);
        msg.set_finish(FinishReasonToProto(step.finish_reason));
        msg.mutable_usage()->set_prompt_tokens(*record.prompt_tokens);
        msg.mutable_usage()->set_completion_tokens(record.generated_tokens);
        msg.set_config_version(*record.config_version);
        const bool cancelled = step.finish_reason == "cancelled";
        record.finish_reasons = {step.finish_reason};
        record.Finish(metrics, cancelled ? absl::StatusCode::kCancelled : absl::StatusCode::kOk);
      }
      std::lock_guard<std::mutex> lock(sink->mutex);
      if (sink->reactor != nullptr) sink->reactor->Enqueue(std::move(msg), step.finished);
    };
    return state.engine.Submit(job_);
  }

  void Enqueue(stave::v1::GenerateResponse msg, bool last) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (finished_) return;
    pending_.push_back(std::move(msg));
    if (last) last_queued_ = true;
    WriteNextLocked();
  }

  void Fail(const absl::Status& status) {
    std::lock_guard<std::mutex> lock(mutex_);
    // A write in flight still uses the front message: keep it until OnWriteDone.
    pending_.resize(writing_ ? std::min<size_t>(pending_.size(), 1) : 0);
    if (!writing_) FinishLocked(ToGrpcStatus(status));
    else failed_ = ToGrpcStatus(status);  // finished from OnWriteDone
  }

  void WriteNextLocked() {
    if (writing_ || finished_) return;
    if (!pending_.empty()) {
      writing_ = true;
      StartWrite(&pending_.front());
    } else if (last_queued_) {
      FinishLocked(grpc::Status::OK);
    }
  }

  void FinishLocked(const grpc::Status& status) {
    if (finished_) return;
    finished_ = true;
    Finish(status);
  }

  std::shared_ptr<Sink> sink_;
  std::shared_ptr<EngineJob> job_;
  Engine* engine_ = nullptr;
  grpc::Status failed_;  // set when the engine failed the request during a write
  std::mutex mutex_;
  std::deque<stave::v1::GenerateResponse> pending_;
  bool writing_ = false, last_queued_ = false, finished_ = false;
};

}  // namespace

grpc::ServerWriteReactor<stave::v1::GenerateResponse>* InferenceService::Generate(
    grpc::CallbackServerContext* context, const stave::v1::GenerateRequest* request) {
  return new GenerateReactor(state_, context, *request);
}

grpc::ServerUnaryReactor* InferenceService::Score(grpc::CallbackServerContext* context,
                                                  const stave::v1::ScoreRequest* request,
                                                  stave::v1::ScoreResponse* response) {
  auto* reactor = context->DefaultReactor();
  auto record = std::make_shared<RequestRecord>(StartGrpcRecord(context, "Score"));
  absl::Status status = CheckTextSize("prompt", request->prompt());
  if (status.ok()) status = CheckTextSize("continuation", request->continuation());
  auto position = status.ok() ? ResolvePosition(state_, request->has_position(), request->position())
                              : absl::StatusOr<ResolvedPosition>(status);
  // Tokenised here, on the request's thread: the engine thread only runs the forward pass.
  auto input = position.ok()
                   ? TokenizeForScoring(*state_.model.tokenizer(), request->prompt(), request->continuation())
                   : absl::StatusOr<ScoreTokensInput>(position.status());
  if (!input.ok()) {
    FinishUnary(reactor, state_.metrics, *record, input.status());
    return reactor;
  }
  // Scored in the engine's batches like any sequence: its forward shares steps with the streams.
  auto seq = Sequence::CreateScoring(state_.model, std::move(input->prompt_ids), std::move(input->continuation_ids),
                                     position->config, &state_.position_cache);
  absl::Status fits = seq.ok() ? state_.engine.CheckFits(**seq) : seq.status();
  if (!fits.ok()) {
    FinishUnary(reactor, state_.metrics, *record, fits);
    return reactor;
  }
  auto job = std::make_shared<EngineJob>();
  job->abandoned = [context] { return context->IsCancelled(); };  // deadline or client gone
  job->sequence = *std::move(seq);
  Metrics& metrics = state_.metrics;
  const Sequence* scored = job->sequence.get();
  record->config_version = position->version;
  job->on_step = [reactor, response, scored, &metrics, record, job = job.get(),
                  version = position->version](const Sequence::Step& step) {
    if (!step.finished) return;
    if (job->admitted.has_value()) record->queue_seconds = SecondsBetween(job->submitted, *job->admitted);
    absl::Status status = step.status;
    if (status.ok() && step.finish_reason == "cancelled") status = absl::CancelledError("cancelled before it finished");
    if (status.ok()) {
      const ScoreResult& r = scored->score();
      for (int id : r.token_ids) response->add_token_ids(static_cast<uint32_t>(id));
      for (double lp : r.logprobs) response->add_logprobs(lp);
      response->set_total_logprob(r.total_logprob);
      response->set_is_greedy(r.is_greedy);
      response->set_config_version(version);
    }
    FinishUnary(reactor, metrics, *record, status);
  };
  status = state_.engine.Submit(job);
  if (!status.ok()) FinishUnary(reactor, state_.metrics, *record, status);
  return reactor;
}

grpc::ServerUnaryReactor* InferenceService::Tokenize(grpc::CallbackServerContext* context,
                                                     const stave::v1::TokenizeRequest* request,
                                                     stave::v1::TokenizeResponse* response) {
  auto* reactor = context->DefaultReactor();
  RequestRecord record = StartGrpcRecord(context, "Tokenize");
  absl::Status status = CheckTextSize("text", request->text());
  if (status.ok()) {
    const Tokenizer& tok = *state_.model.tokenizer();
    auto ids = tok.Encode(request->text(), request->add_bos());
    int prev = -1;
    for (int id : ids) {
      response->add_token_ids(static_cast<uint32_t>(id));
      // A byte-fallback token alone may be part of a character: protobuf strings must be UTF-8.
      response->add_pieces(ToValidUtf8(tok.DecodeToken(prev, id)));
      prev = id;
    }
  }
  FinishUnary(reactor, state_.metrics, record, status);
  return reactor;
}

grpc::ServerUnaryReactor* InferenceService::GetModelInfo(grpc::CallbackServerContext* context,
                                                         const stave::v1::GetModelInfoRequest*,
                                                         stave::v1::ModelInfo* info) {
  RequestRecord record = StartGrpcRecord(context, "GetModelInfo");
  const ModelConfig& c = state_.model.config();
  // The name only: where the model lives on the server is not the client's business.
  info->set_path(PublicModelName(state_.model));
  for (const auto& name : state_.routers.List()) info->add_routers(name);
  info->set_dim(c.dim);
  info->set_hidden_dim(c.hidden_dim);
  info->set_n_layers(c.n_layers);
  info->set_n_heads(c.n_heads);
  info->set_n_kv_heads(c.n_kv_heads);
  info->set_vocab_size(c.vocab_size);
  info->set_context_length(c.max_seq_len);
  info->set_rope_theta(c.rope_theta);
  info->set_format(c.format == CheckpointFormat::kLlama2c ? "llama2c" : "hf");
  auto* reactor = context->DefaultReactor();
  FinishUnary(reactor, state_.metrics, record, absl::OkStatus());
  return reactor;
}

}  // namespace stave::server
