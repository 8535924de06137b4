#include "core/moice_router.h"

#include <torch/torch.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/router_metadata.h"
#include "core/safetensors.h"

namespace stave {

MoiceRouters MoiceRouters::Random(const ModelConfig& model, std::vector<double> expert_bases,
                                  int top_k, uint64_t seed) {
  torch::manual_seed(seed);
  MoiceRouters r;
  const int64_t n = static_cast<int64_t>(expert_bases.size()), hd = model.head_dim();
  r.expert_bases = std::move(expert_bases);
  r.top_k = top_k;
  for (int l = 0; l < model.n_layers; ++l)
    r.layers.push_back({torch::randn({n, hd}) * 0.02, torch::randn({n, n}) * 0.02, torch::randn({n, hd}) * 0.02});
  return r;
}

absl::StatusOr<MoiceRouters> MoiceRouters::Load(const std::string& path, const ModelConfig& model) {
  auto file = SafetensorsFile::Open(path);
  if (!file.ok()) return file.status();
  auto meta = ParseRouterMetadata((*file)->metadata(), path);
  if (!meta.ok()) return meta.status();
  MoiceRouters r;
  r.expert_bases = meta->expert_bases;
  r.top_k = meta->top_k;
  const int layers = meta->n_layers, head_dim = meta->head_dim;
  if (layers != model.n_layers || head_dim != model.head_dim())
    return absl::FailedPreconditionError(absl::StrCat(
        path, ": routers for a model with ", layers, " layers and head dim ", head_dim,
        ", but this model has ", model.n_layers, " layers and head dim ", model.head_dim()));
  const int64_t n = r.experts();
  for (int l = 0; l < layers; ++l) {
    RouterWeights w;
    for (auto [name, t, rows, cols] : {std::tuple<const char*, at::Tensor*, int64_t, int64_t>{"w1", &w.w1, n, head_dim},
                                       {"w2", &w.w2, n, n}, {"w3", &w.w3, n, head_dim}}) {
      auto loaded = (*file)->LoadFloat(absl::StrCat("layers.", l, ".", name));
      if (!loaded.ok()) return loaded.status();
      if (loaded->sizes().vec() != std::vector<int64_t>{rows, cols})
        return absl::FailedPreconditionError(absl::StrCat(path, ": layers.", l, ".", name, " has shape [",
                                                          absl::StrJoin(loaded->sizes(), ","), "], expected [",
                                                          rows, ",", cols, "] for ", n, " experts"));
      *t = *loaded;
    }
    r.layers.push_back(w);
  }
  return r;
}

absl::Status MoiceRouters::Save(const std::string& path, const ModelConfig& model) const {
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (size_t l = 0; l < layers.size(); ++l) {
    tensors.push_back({absl::StrCat("layers.", l, ".w1"), layers[l].w1});
    tensors.push_back({absl::StrCat("layers.", l, ".w2"), layers[l].w2});
    tensors.push_back({absl::StrCat("layers.", l, ".w3"), layers[l].w3});
  }
  return WriteSafetensors(path, tensors,
                          {{"expert_bases", absl::StrJoin(expert_bases, ",")},
                           {"top_k", absl::StrCat(top_k)},
                           {"n_layers", absl::StrCat(model.n_layers)},
                           {"head_dim", absl::StrCat(model.head_dim())}});
}

at::Tensor RouteWeights(const RouterWeights& router, const at::Tensor& q, int top_k, at::Tensor* probs) {
  // r = W2 (silu(W1 q) * (W3 q)), in fp32.
  auto logits = at::matmul(at::silu(at::matmul(q, router.w1.t())) * at::matmul(q, router.w3.t()), router.w2.t());
  auto p = at::softmax(logits, -1);
  if (probs != nullptr) *probs = p;
  const int64_t n = p.size(-1);
  if (top_k >= n) return p;  // all selected: the renormalisation is the identity
  auto [values, indices] = p.topk(top_k, -1);
  return at::zeros_like(p).scatter(-1, indices, values / values.sum(-1, /*keepdim=*/true));
}

}  // namespace stave
