#include "server/inference_service.h"

#include <deque>
#include <mutex>

#include "absl/strings/str_cat.h"

namespace stave::server {

grpc::Status ToGrpcStatus(const absl::Status& s) {
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

namespace {

// Streams the engine's steps to one client. The engine holds the job (not the reactor): the
// reactor may be gone (client cancelled) while the engine still finishes the step, so steps go
// through `Sink`, which the reactor detaches from when it is done.
class GenerateReactor : public grpc::ServerWriteReactor<stave::v1::GenerateResponse> {
 public:
  struct Sink {
    std::mutex mutex;
    GenerateReactor* reactor = nullptr;
  };

  GenerateReactor(const Model& model, Engine& engine, const stave::v1::GenerateRequest& request)
      : sink_(std::make_shared<Sink>()) {
    sink_->reactor = this;
    absl::Status status = Start(model, engine, request);
    if (!status.ok()) {
      std::lock_guard<std::mutex> lock(sink_->mutex);
      sink_->reactor = nullptr;
      Finish(ToGrpcStatus(status));
    }
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard<std::mutex> lock(mutex_);
    pending_.pop_front();
    writing_ = false;
    if (!ok) return;  // the stream broke: OnCancel/OnDone follow
    WriteNextLocked();
  }

  void OnCancel() override {
    if (job_ != nullptr) job_->cancelled = true;
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
  absl::Status Start(const Model& model, Engine& engine, const stave::v1::GenerateRequest& r) {
    if (r.prompt().empty()) return absl::InvalidArgumentError("prompt: must not be empty");
    if (r.max_tokens() == 0) return absl::InvalidArgumentError("max_tokens: must be >= 1");
    GenerationParams params;
    params.max_tokens = static_cast<int>(std::min<uint32_t>(r.max_tokens(), 1u << 30));
    params.sampling.temperature = r.temperature();
    params.sampling.top_k = static_cast<int>(r.top_k());
    params.sampling.top_p = r.top_p() == 0.0f ? 1.0f : r.top_p();
    params.sampling.seed = r.seed();
    params.stop.assign(r.stop().begin(), r.stop().end());
    auto ids = model.tokenizer()->Encode(r.prompt(), /*add_bos=*/true);
    if (static_cast<int>(ids.size()) + params.max_tokens > model.config().max_seq_len)
      return absl::InvalidArgumentError(absl::StrCat(
          "max_tokens: ", r.max_tokens(), " with a prompt of ", ids.size(),
          " tokens exceeds the model's context of ", model.config().max_seq_len));
    const auto prompt_tokens = static_cast<uint32_t>(ids.size());
    auto seq = Sequence::Create(model, std::move(ids), params);
    if (!seq.ok()) return seq.status();
    job_ = std::make_shared<EngineJob>();
    job_->sequence = *std::move(seq);
    std::shared_ptr<Sink> sink = sink_;
    auto completion = std::make_shared<uint32_t>(0);
    job_->on_step = [sink, prompt_tokens, completion](const Sequence::Step& step) {
      stave::v1::GenerateResponse msg;
      if (step.token >= 0) {
        msg.set_token_id(static_cast<uint32_t>(step.token));
        ++*completion;
      }
      msg.set_text(step.text);
      if (step.finished) {
        msg.set_finish_reason(step.finish_reason);
        msg.mutable_usage()->set_prompt_tokens(prompt_tokens);
        msg.mutable_usage()->set_completion_tokens(*completion);
        msg.set_config_version(0);  // versioned config store: not built yet
      }
      std::lock_guard<std::mutex> lock(sink->mutex);
      if (sink->reactor != nullptr) sink->reactor->Enqueue(std::move(msg), step.finished);
    };
    return engine.Submit(job_);
  }

  void Enqueue(stave::v1::GenerateResponse msg, bool last) {
    std::lock_guard<std::mutex> lock(mutex_);
    pending_.push_back(std::move(msg));
    if (last) last_queued_ = true;
    WriteNextLocked();
  }

  void WriteNextLocked() {
    if (writing_) return;
    if (!pending_.empty()) {
      writing_ = true;
      StartWrite(&pending_.front());
    } else if (last_queued_ && !finished_) {
      finished_ = true;
      Finish(grpc::Status::OK);
    }
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
  return new GenerateReactor(model_, engine_, *request);
}

grpc::ServerUnaryReactor* InferenceService::Tokenize(grpc::CallbackServerContext* context,
                                                     const stave::v1::TokenizeRequest* request,
                                                     stave::v1::TokenizeResponse* response) {
  const Tokenizer& tok = *model_.tokenizer();
  auto ids = tok.Encode(request->text(), request->add_bos());
  int prev = -1;
  for (int id : ids) {
    response->add_token_ids(static_cast<uint32_t>(id));
    response->add_pieces(tok.DecodeToken(prev, id));
    prev = id;
  }
  auto* reactor = context->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* InferenceService::GetModelInfo(grpc::CallbackServerContext* context,
                                                         const stave::v1::GetModelInfoRequest*,
                                                         stave::v1::ModelInfo* info) {
  const ModelConfig& c = model_.config();
  info->set_path(model_.path());
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
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace stave::server
