#include "core/kv_cache.h"

#include <torch/torch.h>

namespace stave {

KvCache KvCache::Allocate(const ModelConfig& c, int batch, int capacity, int key_copies) {
  KvCache cache;
  cache.capacity = capacity;
  for (int l = 0; l < c.n_layers; ++l) {
    cache.k.push_back(torch::zeros({key_copies > 0 ? key_copies : batch, c.n_kv_heads, capacity, c.head_dim()}));
    cache.v.push_back(torch::zeros({batch, c.n_kv_heads, capacity, c.head_dim()}));
  }
  return cache;
}

int64_t KvCache::BytesFor(const ModelConfig& c, int64_t batch, int64_t capacity) {
  return 2 * int64_t{c.n_layers} * batch * c.n_kv_heads * capacity * c.head_dim() * int64_t{sizeof(float)};
}

}  // namespace stave
