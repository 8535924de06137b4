#include "core/kv_cache.h"

#include <torch/torch.h>

namespace stave {

KvCache KvCache::Allocate(const ModelConfig& c, int batch, int capacity) {
  KvCache cache;
  cache.capacity = capacity;
  for (int l = 0; l < c.n_layers; ++l) {
    cache.k.push_back(torch::zeros({batch, c.n_kv_heads, capacity, c.head_dim()}));
    cache.v.push_back(torch::zeros({batch, c.n_kv_heads, capacity, c.head_dim()}));
  }
  return cache;
}

size_t KvCache::bytes() const {
  size_t total = 0;
  for (size_t l = 0; l < k.size(); ++l) total += k[l].nbytes() + v[l].nbytes();
  return total;
}

}  // namespace stave
