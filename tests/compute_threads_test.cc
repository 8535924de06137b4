#include "core/compute_threads.h"

#include <thread>

#include "tests/test_support.h"

namespace stave {
namespace {

ModelConfig Shape(int dim, int hidden, int layers, int heads, int kv_heads, int vocab) {
  ModelConfig c;
  c.dim = dim;
  c.hidden_dim = hidden;
  c.n_layers = layers;
  c.n_heads = heads;
  c.n_kv_heads = kv_heads;
  c.vocab_size = vocab;
  c.max_seq_len = 1024;
  return c;
}

TEST(ComputeThreads, ApproxParametersCountsAttentionMlpAndEmbeddings) {
  // dim 8, hidden 16, 1 layer, 2 heads sharing 1 KV head (kv width 4), vocab 10:
  // q,o 8x8 each; k,v 8x4 each; gate/up/down 8x16 each; embedding and head 10x8 each.
  EXPECT_EQ(ApproxParameters(Shape(8, 16, 1, 2, 1, 10)), 2 * 64 + 2 * 32 + 3 * 128 + 2 * 80);
  // The stories110M shape is about 110M weights (its head is tied, which this counts twice).
  const int64_t n = ApproxParameters(Shape(768, 2048, 12, 12, 12, 32000));
  EXPECT_GT(n, 100'000'000);
  EXPECT_LT(n, 140'000'000);
}

TEST(ComputeThreads, SmallModelsRunOnOneThreadLargeOnesOnEveryUsableCpu) {
  EXPECT_EQ(AutoThreads(Shape(128, 384, 2, 4, 4, 408)), 1);  // the embedded default model
  EXPECT_EQ(AutoThreads(Shape(768, 2048, 12, 12, 12, 32000)), UsableCpus());
}

TEST(ComputeThreads, UsableCpusIsAtLeastOneAndAtMostTheMachine) {
  EXPECT_GE(UsableCpus(), 1);
  EXPECT_LE(UsableCpus(), static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
}

}  // namespace
}  // namespace stave
