#include "core/model.h"

#include <torch/torch.h>

#include <filesystem>
#include <thread>

#include "absl/strings/str_cat.h"
#include "core/hf_checkpoint.h"
#include "core/llama2c_checkpoint.h"
#include "core/moice_router.h"
#include "core/position_config.h"
#include "absl/strings/str_join.h"
#include "core/rope.h"
#include "core/transformer.h"

namespace stave {
namespace fs = std::filesystem;

void ConfigureThreads(int threads) {
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  at::set_num_threads(threads);
}

absl::StatusOr<Checkpoint> LoadCheckpoint(const std::string& model_path) {
  std::error_code ec;
  if (fs::is_directory(model_path, ec)) return LoadHfCheckpoint(model_path);
  if (!fs::exists(model_path, ec))
    return absl::NotFoundError(absl::StrCat("model not found: ", model_path));
  return LoadLlama2cCheckpoint(model_path);
}

absl::StatusOr<std::unique_ptr<Model>> Model::Load(const std::string& model_path,
                                                   const std::string& tokenizer_path) {
  auto ckpt = LoadCheckpoint(model_path);
  if (!ckpt.ok()) return ckpt.status();
  std::string tok_path = tokenizer_path;
  if (tok_path.empty()) {
    fs::path dir = fs::is_directory(model_path) ? fs::path(model_path) : fs::path(model_path).parent_path();
    for (const char* name : {"tokenizer.model", "tokenizer.bin"})
      if (fs::exists(dir / name)) {
        tok_path = (dir / name).string();
        break;
      }
    if (tok_path.empty())
      return absl::NotFoundError(absl::StrCat("no tokenizer next to ", model_path,
                                              " (looked for tokenizer.model, tokenizer.bin in ",
                                              dir.string(), "); pass --tokenizer"));
  }
  auto tok = LoadTokenizer(tok_path, ckpt->config.vocab_size);
  if (!tok.ok()) return tok.status();
  auto model = FromCheckpoint(*ckpt, *std::move(tok));
  model->path_ = model_path;
  return model;
}

std::unique_ptr<Model> Model::FromCheckpoint(const Checkpoint& ckpt,
                                             std::unique_ptr<Tokenizer> tokenizer) {
  auto model = std::unique_ptr<Model>(new Model());
  model->config_ = ckpt.config;
  model->path_ = ckpt.source;
  model->tokenizer_ = std::move(tokenizer);
  model->transformer_ = std::make_unique<Transformer>(ckpt);
  model->rope_ = std::make_unique<RopeTable>(MakeRopeTable(
      ckpt.config.rope_theta, ckpt.config.head_dim(), ckpt.config.max_seq_len, ckpt.config.rope_scaling));
  return model;
}

namespace {
// Per-request overrides may name any base set: keep the caches bounded by dropping entries no
// request holds any more once there are more than this many.
constexpr size_t kMaxCachedPositionSets = 32;
template <typename Map>
void EvictUnused(Map& cache) {
  if (cache.size() < kMaxCachedPositionSets) return;
  std::erase_if(cache, [](const auto& entry) { return entry.second.use_count() <= 1; });
}
}  // namespace

std::shared_ptr<const RopeTable> Model::RopeTables(const std::vector<double>& bases) const {
  std::lock_guard<std::mutex> lock(rope_mutex_);
  EvictUnused(rope_cache_);
  auto& cached = rope_cache_[bases];
  if (cached == nullptr) {
    // Cached tables outlive the caller: never make them inference tensors, or router training
    // (autograd) could not use tables first built by an inference-mode caller.
    c10::InferenceMode not_inference(false);
    std::vector<at::Tensor> cos, sin, sin_signed;
    for (double base : bases) {
      auto t = MakeRopeTable(base, config_.head_dim(), config_.max_seq_len, config_.rope_scaling);
      cos.push_back(t.cos);
      sin.push_back(t.sin);
      sin_signed.push_back(t.sin_signed);
    }
    cached = std::make_shared<RopeTable>(
        RopeTable{torch::stack(cos), torch::stack(sin), torch::stack(sin_signed)});
  }
  return cached;
}

absl::StatusOr<std::shared_ptr<const MoiceRouters>> Model::Routers(const PositionConfig& c) const {
  const std::string key = c.router_path.empty()
                              ? absl::StrCat("untrained:", absl::StrJoin(c.expert_bases, ","))
                              : c.router_path;
  std::lock_guard<std::mutex> lock(rope_mutex_);
  EvictUnused(router_cache_);
  auto& cached = router_cache_[key];
  if (cached == nullptr) {
    if (c.router_path.empty()) {
      cached = std::make_shared<MoiceRouters>(MoiceRouters::Random(config_, c.expert_bases, c.top_k, 0));
    } else {
      auto loaded = MoiceRouters::Load(c.router_path, config_);
      if (!loaded.ok()) {
        router_cache_.erase(key);
        return loaded.status();
      }
      cached = std::make_shared<MoiceRouters>(*std::move(loaded));
    }
  }
  if (cached->expert_bases != c.expert_bases)
    return absl::FailedPreconditionError(absl::StrCat(
        "router_path: ", c.router_path, " was trained for expert bases ",
        absl::StrJoin(cached->expert_bases, ","), ", the config asks for ", absl::StrJoin(c.expert_bases, ",")));
  if (cached->top_k == c.top_k) return cached;
  // Same routers, another K: a copy sharing the weights.
  auto with_k = std::make_shared<MoiceRouters>(*cached);
  with_k->top_k = c.top_k;
  return std::shared_ptr<const MoiceRouters>(with_k);
}

Model::~Model() = default;

}  // namespace stave
