#include "server/inference_service.h"

#include <chrono>
#include <deque>
#include <mutex>

#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "core/score.h"
#include "proto/position_proto.h"

namespace stave::server {

grpc::Status ToGrpcStatus(const absl::Status& s) {
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

void FinishUnary(grpc::ServerUnaryReactor* reactor, Metrics& metrics, std::string_view method,
                 const absl::Status& status) {
  metrics.RequestFinished(method, absl::StatusCodeToString(status.code()));
  reactor->Finish(ToGrpcStatus(status));
}

namespace {

// The position config a request runs with: its own override when it sets a mode (version 0),
// else the server's current snapshot. INVALID_ARGUMENT naming the field for a bad override.
struct ResolvedPosition {
  PositionConfig config;
  uint64_t version = 0;
};

absl::StatusOr<ResolvedPosition> ResolvePosition(const ServerState& state, bool has_override,
                                                 const stave::v1::PositionConfig& override) {
  if (!has_override || override.mode() == stave::v1::POSITION_MODE_UNSPECIFIED) {
    auto snapshot = state.config.Current();
    return ResolvedPosition{snapshot->position, snapshot->version};
  }
  auto config = FromProto(override);
  if (!config.ok()) return config.status();
  auto status = ValidateForModel(state.model, *config);
  if (!status.ok()) return absl::InvalidArgumentError(status.message());
  return ResolvedPosition{*std::move(config), 0};
}

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

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
    absl::Status status = Start(state, context->peer(), request);
    if (!status.ok()) {
      state.metrics.RequestFinished("Generate", absl::StatusCodeToString(status.code()));
      spdlog::info("Generate from {} refused: {}", context->peer(), status.ToString());
      std::lock_guard<std::mutex> lock(sink_->mutex);
      sink_->reactor = nullptr;
      std::lock_guard<std::mutex> own(mutex_);
      finished_ = true;
      Finish(ToGrpcStatus(status));
    }
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard<std::mutex> lock(mutex_);
    pending_.pop_front();
    writing_ = false;
    if (!ok) {  // the stream broke (client gone): end the call, the engine drops the sequence
      if (job_ != nullptr) job_->cancelled = true;
      FinishLocked(grpc::Status(grpc::StatusCode::CANCELLED, "the client went away"));
      return;
    }
    WriteNextLocked();
  }

  void OnCancel() override {
    std::lock_guard<std::mutex> lock(mutex_);
    if (job_ != nullptr) job_->cancelled = true;
    // A write in flight fails and finishes the call from OnWriteDone.
    if (!writing_) FinishLocked(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled by the client"));
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
  // Per-stream bookkeeping the engine thread updates (metrics and the final message).
  struct Progress {
    Clock::time_point arrived = Clock::now(), last_token;
    uint32_t prompt_tokens = 0, completion_tokens = 0;
    uint64_t config_version = 0;
    std::string peer;
  };

  absl::Status Start(const ServerState& state, const std::string& peer,
                     const stave::v1::GenerateRequest& r) {
    if (r.prompt().empty()) return absl::InvalidArgumentError("prompt: must not be empty");
    if (r.max_tokens() == 0) return absl::InvalidArgumentError("max_tokens: must be >= 1");
    auto position = ResolvePosition(state, r.has_position(), r.position());
    if (!position.ok()) return position.status();
    GenerationParams params;
    params.max_tokens = static_cast<int>(std::min<uint32_t>(r.max_tokens(), 1u << 30));
    params.sampling.temperature = r.temperature();
    params.sampling.top_k = static_cast<int>(r.top_k());
    params.sampling.top_p = r.top_p() == 0.0f ? 1.0f : r.top_p();
    params.sampling.seed = r.seed();
    params.stop.assign(r.stop().begin(), r.stop().end());
    params.position = position->config;
    params.kv_budget_mb = state.kv_budget_mb;
    const Model& model = state.model;
    auto ids = model.tokenizer()->Encode(r.prompt(), /*add_bos=*/true);
    if (static_cast<int>(ids.size()) + params.max_tokens > model.config().max_seq_len)
      return absl::InvalidArgumentError(absl::StrCat(
          "max_tokens: ", r.max_tokens(), " with a prompt of ", ids.size(),
          " tokens exceeds the model's context of ", model.config().max_seq_len));
    auto progress = std::make_shared<Progress>();
    progress->prompt_tokens = static_cast<uint32_t>(ids.size());
    progress->config_version = position->version;
    progress->peer = peer;
    auto seq = Sequence::Create(model, std::move(ids), params);
    if (!seq.ok()) return seq.status();
    job_ = std::make_shared<EngineJob>();
    job_->sequence = *std::move(seq);
    std::shared_ptr<Sink> sink = sink_;
    Metrics& metrics = state.metrics;
    job_->on_step = [sink, progress, &metrics](const Sequence::Step& step) {
      stave::v1::GenerateResponse msg;
      if (step.token >= 0) {
        msg.set_token_id(static_cast<uint32_t>(step.token));
        const auto now = Clock::now();
        if (progress->completion_tokens++ == 0) metrics.TimeToFirstToken(SecondsSince(progress->arrived));
        else metrics.InterTokenLatency(std::chrono::duration<double>(now - progress->last_token).count());
        progress->last_token = now;
        metrics.TokensGenerated(1);
      }
      msg.set_text(step.text);
      if (step.finished) {
        msg.set_finish_reason(step.finish_reason);
        msg.mutable_usage()->set_prompt_tokens(progress->prompt_tokens);
        msg.mutable_usage()->set_completion_tokens(progress->completion_tokens);
        msg.set_config_version(progress->config_version);
        const bool cancelled = step.finish_reason == "cancelled";
        metrics.RequestFinished("Generate", cancelled ? "CANCELLED" : "OK");
        spdlog::info("Generate from {}: {} prompt + {} generated tokens, finish {}, config version {}, {:.1f} ms",
                     progress->peer, progress->prompt_tokens, progress->completion_tokens,
                     step.finish_reason, progress->config_version, 1000 * SecondsSince(progress->arrived));
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
  auto position = ResolvePosition(state_, request->has_position(), request->position());
  if (!position.ok()) {
    FinishUnary(reactor, state_.metrics, "Score", position.status());
    return reactor;
  }
  // The engine thread owns the model's compute: scoring waits its turn like a generation step.
  auto job = std::make_shared<EngineJob>();
  Metrics& metrics = state_.metrics;
  const Model& model = state_.model;
  const int64_t budget = state_.kv_budget_mb;
  job->task = [=, &model, &metrics, resolved = *std::move(position)](bool cancelled) {
    if (cancelled) {
      FinishUnary(reactor, metrics, "Score", absl::CancelledError("cancelled before it ran"));
      return;
    }
    auto scored = ScoreText(model, request->prompt(), request->continuation(), resolved.config, budget);
    if (scored.ok()) {
      for (int id : scored->token_ids) response->add_token_ids(static_cast<uint32_t>(id));
      for (double lp : scored->logprobs) response->add_logprobs(lp);
      response->set_total_logprob(scored->total_logprob);
      response->set_is_greedy(scored->is_greedy);
      response->set_config_version(resolved.version);
    }
    FinishUnary(reactor, metrics, "Score", scored.status());
  };
  auto status = state_.engine.Submit(job);
  if (!status.ok()) FinishUnary(reactor, state_.metrics, "Score", status);
  return reactor;
}

grpc::ServerUnaryReactor* InferenceService::Tokenize(grpc::CallbackServerContext* context,
                                                     const stave::v1::TokenizeRequest* request,
                                                     stave::v1::TokenizeResponse* response) {
  const Tokenizer& tok = *state_.model.tokenizer();
  auto ids = tok.Encode(request->text(), request->add_bos());
  int prev = -1;
  for (int id : ids) {
    response->add_token_ids(static_cast<uint32_t>(id));
    response->add_pieces(tok.DecodeToken(prev, id));
    prev = id;
  }
  auto* reactor = context->DefaultReactor();
  FinishUnary(reactor, state_.metrics, "Tokenize", absl::OkStatus());
  return reactor;
}

grpc::ServerUnaryReactor* InferenceService::GetModelInfo(grpc::CallbackServerContext* context,
                                                         const stave::v1::GetModelInfoRequest*,
                                                         stave::v1::ModelInfo* info) {
  const ModelConfig& c = state_.model.config();
  info->set_path(state_.model.path());
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
  FinishUnary(reactor, state_.metrics, "GetModelInfo", absl::OkStatus());
  return reactor;
}

}  // namespace stave::server
