// Which MoICE key cache to keep (docs/methods.md section 4.1): one rotated key copy per expert base
// (rotate only the new token's key, N x key memory) or unrotated keys re-rotated for every base
// at every decode step (1 x key memory). Measures the per-step rotation work of each for the
// 110M shape (12 layers, 12 KV heads, head dim 64) and N = 7 bases, at several context lengths.
//   build/bin/stave_kv_strategy_bench
#include <benchmark/benchmark.h>

#include <cmath>
#include <vector>

#include "core/decode_kernels.h"

namespace {

constexpr int kLayers = 12, kKvHeads = 12, kHeadDim = 64, kBases = 7;

struct Tables {
  std::vector<float> cos, sin;  // [bases, head_dim] rows for one position
  Tables() : cos(kBases * kHeadDim), sin(kBases * kHeadDim) {
    for (int b = 0; b < kBases; ++b)
      for (int i = 0; i < kHeadDim; ++i) {
        cos[b * kHeadDim + i] = std::cos(0.01f * (i + b));
        sin[b * kHeadDim + i] = std::sin(0.01f * (i + b));
      }
  }
};

// Rotated copies: per step, each layer rotates the new key once per base.
void CachedRotatedCopies(benchmark::State& state) {
  Tables t;
  std::vector<float> key(kKvHeads * kHeadDim, 0.5f), slot(kKvHeads * kHeadDim);
  for (auto _ : state)
    for (int l = 0; l < kLayers; ++l)
      for (int b = 0; b < kBases; ++b) {
        std::copy(key.begin(), key.end(), slot.begin());
        stave::kernels::Rope(slot.data(), kKvHeads, kHeadDim, t.cos.data() + b * kHeadDim, t.sin.data() + b * kHeadDim);
        benchmark::DoNotOptimize(slot.data());
      }
  state.counters["extra_key_memory_x"] = kBases;
}

// On the fly: per step, each layer re-rotates the whole unrotated key cache for every base.
void RotateOnTheFly(benchmark::State& state) {
  const int length = static_cast<int>(state.range(0));
  Tables t;
  std::vector<float> keys(static_cast<size_t>(length) * kKvHeads * kHeadDim, 0.5f), rotated(keys.size());
  for (auto _ : state)
    for (int l = 0; l < kLayers; ++l)
      for (int b = 0; b < kBases; ++b) {
        std::copy(keys.begin(), keys.end(), rotated.begin());
        // (Per position the angles differ; one row stands in for them: the work is the same.)
        stave::kernels::Rope(rotated.data(), static_cast<int64_t>(length) * kKvHeads, kHeadDim,
                             t.cos.data() + b * kHeadDim, t.sin.data() + b * kHeadDim);
        benchmark::DoNotOptimize(rotated.data());
      }
  state.counters["extra_key_memory_x"] = 0;
}

BENCHMARK(CachedRotatedCopies)->Unit(benchmark::kMicrosecond);
BENCHMARK(RotateOnTheFly)->Arg(128)->Arg(512)->Arg(1024)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
