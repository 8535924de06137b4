#include "core/moice_mixing.h"

#include <torch/torch.h>

namespace stave {

at::Tensor MixMoiceExperts(const at::Tensor& q, const RopeTable& experts, int64_t start,
                           const RouterWeights& router, int top_k,
                           const std::function<at::Tensor(int64_t)>& keys,
                           const std::function<at::Tensor(const at::Tensor&, const at::Tensor&)>& attend,
                           at::Tensor* probs) {
  const int64_t T = q.size(1), nh = q.size(2), hd = q.size(3), n = router.w1.size(0);
  auto rows = [&](const at::Tensor& table, int64_t i) { return table[i].narrow(0, start, T).unsqueeze(1); };
  auto q_first = ApplyRope(q, rows(experts.cos, 0), rows(experts.sin_signed, 0));
  auto weights = RouteWeights(router, q_first, top_k, probs);  // [1, T, heads, n]
  auto out = at::zeros({T, nh * hd}, q.options());
  for (int64_t i = 0; i < n; ++i) {
    auto w_i = weights.select(-1, i)[0];  // [T, heads]
    if (top_k < n && !w_i.gt(0).any().item<bool>()) continue;  // unselected: weight 0
    auto q_i = i == 0 ? q_first : ApplyRope(q, rows(experts.cos, i), rows(experts.sin_signed, i));
    out.view({T, nh, hd}).addcmul_(attend(q_i, keys(i)).view({T, nh, hd}), w_i.unsqueeze(-1));
  }
  return out;
}

}  // namespace stave
