// The hand-written CPU kernels against plain LibTorch on odd shapes: row counts that are not a
// multiple of the 8-row chunk, widths that are not a multiple of the 16-float vector, a tail of
// W rows that is not a multiple of the 4-row pass, paged caches with partial last blocks.
#include <torch/torch.h>

#include "core/decode_kernels.h"
#include "core/small_batch_matmul.h"
#include "tests/test_support.h"

namespace stave {
namespace {

TEST(SmallBatchMatmul, EqualsLibTorchForEveryRowCountAndOddShapes) {
  torch::manual_seed(3);
  for (int64_t rows : {1, 2, 7, 8, 9, 16, 31, 64})
    for (auto [n, d] : std::vector<std::pair<int64_t, int64_t>>{{5, 3}, {67, 100}, {130, 257}}) {
      auto x = torch::randn({rows, d}), w = torch::randn({n, d}), base = torch::randn({rows, n});
      auto out = torch::empty({rows, n});
      kernels::SmallBatchMatmul(x.data_ptr<float>(), w.data_ptr<float>(), out.data_ptr<float>(), rows, n, d, false);
      EXPECT_LT((out - at::mm(x, w.t())).abs().max().item<float>(), 1e-3f) << rows << "x" << n << "x" << d;
      auto acc = base.clone();
      kernels::SmallBatchMatmul(x.data_ptr<float>(), w.data_ptr<float>(), acc.data_ptr<float>(), rows, n, d, true);
      EXPECT_LT((acc - base - at::mm(x, w.t())).abs().max().item<float>(), 1e-3f) << "accumulate " << rows;
    }
}

TEST(PagedAttention, EqualsSoftmaxAttentionOverScatteredBlocks) {
  torch::manual_seed(4);
  const int64_t heads = 4, kv_heads = 2, hd = 24, block = 5, length = 23;  // last block partial
  auto pool = torch::randn({12 * kv_heads * block, hd});  // [blocks, kv_heads, block, hd] as rows
  const std::vector<int> k_blocks = {7, 2, 9, 0, 11}, v_blocks = {3, 10, 1, 6, 4};
  auto q = torch::randn({2, heads * hd});  // two rows sharing the tables
  auto out = torch::empty({2, heads * hd});
  std::vector<kernels::DecodeRow> rows;
  for (int64_t r = 0; r < 2; ++r)
    rows.push_back({q[r].data_ptr<float>(), {pool.data_ptr<float>(), k_blocks.data(), block, kv_heads, hd},
                    {pool.data_ptr<float>(), v_blocks.data(), block, kv_heads, hd}, length - r, out[r].data_ptr<float>()});
  auto scratch = torch::empty({2 * heads, length});
  kernels::PagedAttention(rows.data(), 2, scratch.data_ptr<float>(), length, heads, kv_heads, hd);
  auto gather = [&](const std::vector<int>& blocks, int64_t n) {  // [n, kv_heads, hd]
    std::vector<int64_t> index;
    for (int64_t p = 0; p < n; ++p)
      for (int64_t h = 0; h < kv_heads; ++h) index.push_back((blocks[p / block] * kv_heads + h) * block + p % block);
    return pool.index_select(0, torch::tensor(index)).view({n, kv_heads, hd});
  };
  for (int64_t r = 0; r < 2; ++r) {
    const int64_t n = length - r;
    auto k = gather(k_blocks, n), v = gather(v_blocks, n);
    for (int64_t h = 0; h < heads; ++h) {
      auto qh = q[r].narrow(0, h * hd, hd);
      auto kh = k.select(1, h / (heads / kv_heads)), vh = v.select(1, h / (heads / kv_heads));
      auto expected = torch::softmax(kh.matmul(qh) / std::sqrt(double(hd)), 0).matmul(vh);
      EXPECT_LT((out[r].narrow(0, h * hd, hd) - expected).abs().max().item<float>(), 1e-5f) << r << "," << h;
    }
  }
}

TEST(FastExp, WithinOnePartInAMillionOfStdExpOverItsRange) {
  float worst = 0;
  for (float x = -87.0f; x <= 88.0f; x += 0.0137f) {
    const double exact = std::exp(static_cast<double>(x));
    worst = std::max(worst, static_cast<float>(std::abs(kernels::FastExp(x) - exact) / exact));
  }
  EXPECT_LT(worst, 1e-6f);
  EXPECT_EQ(kernels::FastExp(0.0f), 1.0f);
  EXPECT_GT(kernels::FastExp(-1000.0f), 0.0f);  // clamped: never a NaN or a denormal trap
  EXPECT_TRUE(std::isfinite(kernels::FastExp(1000.0f)));
}

}  // namespace
}  // namespace stave
