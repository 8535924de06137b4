#include "core/position_cache.h"

#include <torch/torch.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/moice_router.h"
#include "core/rope.h"

namespace stave {
namespace {

// Per-request overrides may name any base set: keep the caches bounded by dropping entries no
// request holds any more once there are more than this many.
constexpr size_t kMaxCachedPositionSets = 32;
template <typename Map>
void EvictUnused(Map& cache) {
  if (cache.size() < kMaxCachedPositionSets) return;
  std::erase_if(cache, [](const auto& entry) { return entry.second.use_count() <= 1; });
}

// The routers a file or an untrained initialisation gives, before K is applied.
absl::StatusOr<std::shared_ptr<const MoiceRouters>> RoutersFor(const ModelConfig& config, const PositionConfig& c) {
  if (c.router_path.empty())
    return std::make_shared<const MoiceRouters>(MoiceRouters::Random(config, c.expert_bases, c.top_k, 0));
  auto loaded = MoiceRouters::Load(c.router_path, config);
  if (!loaded.ok()) return loaded.status();
  return std::make_shared<const MoiceRouters>(*std::move(loaded));
}

// `routers` checked against the config's expert bases and given its K (a copy sharing the
// weights when K differs).
absl::StatusOr<std::shared_ptr<const MoiceRouters>> Matched(std::shared_ptr<const MoiceRouters> routers,
                                                            const PositionConfig& c) {
  if (routers->expert_bases != c.expert_bases)
    return absl::FailedPreconditionError(absl::StrCat(
        "router_path: ", c.router_path, " was trained for expert bases ", absl::StrJoin(routers->expert_bases, ","),
        ", the config asks for ", absl::StrJoin(c.expert_bases, ",")));
  if (routers->top_k == c.top_k) return routers;
  auto with_k = std::make_shared<MoiceRouters>(*routers);
  with_k->top_k = c.top_k;
  return std::shared_ptr<const MoiceRouters>(with_k);
}

}  // namespace

std::shared_ptr<const RopeTable> StackRopeTables(const ModelConfig& config, const std::vector<double>& bases) {
  // Tables may outlive the caller: never make them inference tensors, or router training
  // (autograd) could not use tables first built by an inference-mode caller.
  c10::InferenceMode not_inference(false);
  std::vector<at::Tensor> cos, sin, sin_signed;
  for (double base : bases) {
    auto t = MakeRopeTable(base, config.head_dim(), config.max_seq_len, config.rope_scaling,
                           config.rope_freq_divisors);
    cos.push_back(t.cos);
    sin.push_back(t.sin);
    sin_signed.push_back(t.sin_signed);
  }
  return std::make_shared<RopeTable>(RopeTable{torch::stack(cos), torch::stack(sin), torch::stack(sin_signed)});
}

absl::StatusOr<std::shared_ptr<const MoiceRouters>> LoadRouters(const ModelConfig& config, const PositionConfig& c) {
  auto routers = RoutersFor(config, c);
  if (!routers.ok()) return routers.status();
  return Matched(*std::move(routers), c);
}

std::shared_ptr<const RopeTable> PositionCache::RopeTables(const std::vector<double>& bases) {
  std::lock_guard<std::mutex> lock(mutex_);
  EvictUnused(rope_);
  auto& cached = rope_[bases];
  if (cached == nullptr) cached = StackRopeTables(config_, bases);
  return cached;
}

absl::StatusOr<std::shared_ptr<const MoiceRouters>> PositionCache::Routers(const PositionConfig& c) {
  const std::string key = c.router_path.empty() ? absl::StrCat("untrained:", absl::StrJoin(c.expert_bases, ","))
                                                : c.router_path;
  std::shared_ptr<const MoiceRouters> routers;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    EvictUnused(routers_);
    auto& cached = routers_[key];
    if (cached == nullptr) {
      auto made = RoutersFor(config_, c);
      if (!made.ok()) {
        routers_.erase(key);
        return made.status();
      }
      cached = *std::move(made);
    }
    routers = cached;
  }
  return Matched(std::move(routers), c);
}

}  // namespace stave
