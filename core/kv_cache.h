// Per-sequence key/value cache, preallocated for the whole generation: one [batch, kv_heads,
// capacity, head_dim] tensor pair per layer. Keys are stored after RoPE. `batch` > 1 holds
// independent branches of one sequence (Attention Buckets).
#pragma once

#include <cstdint>
#include <vector>

#include <ATen/core/Tensor.h>

#include "core/model_config.h"

namespace stave {

struct KvCache {
  std::vector<at::Tensor> k, v;
  int capacity = 0;
  int length = 0;  // positions filled

  // key_copies > 0 keeps that many key copies per value copy (MoICE: one per expert base).
  static KvCache Allocate(const ModelConfig& config, int batch, int capacity, int key_copies = 0);
  // What Allocate(config, batch, capacity) would take, without allocating.
  static int64_t BytesFor(const ModelConfig& config, int64_t batch, int64_t capacity);
};

}  // namespace stave
