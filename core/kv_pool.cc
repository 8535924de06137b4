#include "core/kv_pool.h"

#include <torch/torch.h>

#include "absl/strings/str_cat.h"

namespace stave {

int64_t SequenceKv::blocks() const {
  int64_t n = 0;
  for (const auto& t : k) n += static_cast<int64_t>(t.size());
  for (const auto& t : v) n += static_cast<int64_t>(t.size());
  return n;
}

int64_t KvPool::BlockBytes(const ModelConfig& c, int block_size) {
  return int64_t{c.n_layers} * block_size * c.n_kv_heads * c.head_dim() * int64_t{sizeof(float)};
}

absl::StatusOr<KvPool> KvPool::Create(const ModelConfig& c, int64_t bytes, int block_size) {
  if (block_size < 1 || block_size > 4096)
    return absl::InvalidArgumentError(absl::StrCat("KV block size must be in 1..4096, got ", block_size));
  const int64_t block_bytes = BlockBytes(c, block_size);
  const int64_t blocks = bytes / block_bytes;
  if (blocks < 1)
    return absl::InvalidArgumentError(absl::StrCat("KV cache of ", bytes, " bytes holds no block of ", block_size,
                                                   " positions (", block_bytes, " bytes for this model)"));
  if (blocks > (int64_t{1} << 30)) return absl::InvalidArgumentError("KV cache: too many blocks");
  KvPool pool;
  pool.block_size_ = block_size;
  pool.kv_heads_ = c.n_kv_heads;
  pool.head_dim_ = c.head_dim();
  pool.total_blocks_ = blocks;
  try {
    for (int l = 0; l < c.n_layers; ++l)
      pool.layers_.push_back(torch::zeros({blocks * c.n_kv_heads * block_size, int64_t{c.head_dim()}}));
  } catch (const std::exception& e) {
    return absl::ResourceExhaustedError(absl::StrCat("KV cache: cannot allocate ", bytes >> 20, " MiB: ", e.what()));
  }
  pool.free_.reserve(static_cast<size_t>(blocks));
  for (int64_t b = blocks - 1; b >= 0; --b) pool.free_.push_back(static_cast<int>(b));
  return pool;
}

int64_t KvPool::BlocksFor(int key_rows, int value_rows, int positions) const {
  return int64_t{key_rows + value_rows} * ((positions + block_size_ - 1) / block_size_);
}

bool KvPool::Reserve(SequenceKv& kv, int key_rows, int value_rows, int positions) {
  kv.k.resize(key_rows);
  kv.v.resize(value_rows);
  const size_t per_table = static_cast<size_t>((positions + block_size_ - 1) / block_size_);
  int64_t needed = 0;
  for (const auto& t : kv.k) needed += std::max<int64_t>(0, static_cast<int64_t>(per_table) - static_cast<int64_t>(t.size()));
  for (const auto& t : kv.v) needed += std::max<int64_t>(0, static_cast<int64_t>(per_table) - static_cast<int64_t>(t.size()));
  if (needed > free_blocks()) return false;
  auto grow = [&](std::vector<int>& table) {
    while (table.size() < per_table) {
      table.push_back(free_.back());
      free_.pop_back();
    }
  };
  for (auto& t : kv.k) grow(t);
  for (auto& t : kv.v) grow(t);
  return true;
}

void KvPool::Release(SequenceKv& kv) {
  for (auto* tables : {&kv.k, &kv.v})
    for (auto& t : *tables) free_.insert(free_.end(), t.begin(), t.end());
  kv.k.clear();
  kv.v.clear();
  kv.length = 0;
}

}  // namespace stave
