// The KV memory of a serving process: one store allocated once at start and divided into fixed
// blocks of positions (paged, as vLLM's PagedAttention). A sequence owns block tables and grows
// one block at a time; a queued request owns nothing. Every kind of cache row is a block table
// drawing from the same pool: a bucket branch is one key table and one value table, MoICE is one
// key table per expert base and one value table.
//
// Layout, per layer: [blocks, kv_heads, block_size, head_dim], so within a block one head's
// positions are contiguous: attention reads them as a small matrix (as in a contiguous cache),
// and the tensor viewed as [blocks * kv_heads * block_size, head_dim] is addressed by Row().
#pragma once

#include <cstdint>
#include <vector>

#include <ATen/core/Tensor.h>

#include "absl/status/statusor.h"
#include "core/model_config.h"

namespace stave {

// A sequence's cache: which pool blocks hold its positions, per cache row.
struct SequenceKv {
  std::vector<std::vector<int>> k, v;  // k[row] / v[row]: block ids in position order
  int length = 0;                      // positions filled (same for every row)

  int64_t blocks() const;  // blocks held in all tables
};

class KvPool {
 public:
  // `bytes` of pool for `config` in blocks of `block_size` positions (at least one block).
  static absl::StatusOr<KvPool> Create(const ModelConfig& config, int64_t bytes, int block_size = 16);
  // Bytes one block takes (all layers).
  static int64_t BlockBytes(const ModelConfig& config, int block_size);
  // Blocks a cache of `key_rows` + `value_rows` tables needs to hold `positions` positions.
  int64_t BlocksFor(int key_rows, int value_rows, int positions) const;

  // Grows `kv` (with the given table counts) so it can hold `positions` positions. False, with
  // nothing taken, when the pool has too few free blocks.
  bool Reserve(SequenceKv& kv, int key_rows, int value_rows, int positions);
  // Returns every block of `kv` to the pool; kv is empty afterwards (length 0).
  void Release(SequenceKv& kv);

  // Row of (`position`, `kv_head`) of a table in the layer tensor [rows, head_dim].
  int64_t Row(const std::vector<int>& table, int64_t position, int64_t kv_head) const {
    return (int64_t{table[position / block_size_]} * kv_heads_ + kv_head) * block_size_ + position % block_size_;
  }

  at::Tensor& layer(int l) { return layers_[l]; }  // [blocks * kv_heads * block_size, head_dim]
  int kv_heads() const { return kv_heads_; }
  int head_dim() const { return head_dim_; }
  int block_size() const { return block_size_; }
  int64_t total_blocks() const { return total_blocks_; }
  int64_t free_blocks() const { return static_cast<int64_t>(free_.size()); }

 private:
  std::vector<at::Tensor> layers_;
  std::vector<int> free_;  // a stack: recently freed blocks are reused first (warm in cache)
  int block_size_ = 16, kv_heads_ = 0, head_dim_ = 0;
  int64_t total_blocks_ = 0;
};

}  // namespace stave
