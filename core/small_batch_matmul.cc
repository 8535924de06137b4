#include "core/small_batch_matmul.h"

#include <ATen/Parallel.h>
#include <immintrin.h>

#include <algorithm>

namespace stave::kernels {
namespace {

// GCC 12's own _mm512_reduce_add_ps reads an uninitialised __Y inside avx512fintrin.h
// (GCC PR105593) and warns wherever it is inlined; the result does not depend on it.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

// NB rows of x against NR rows of W at a time: NR * NB accumulators stay in registers and each
// 16-float load of x feeds NR fused multiply-adds.
template <int NB, int NR>
__attribute__((target("avx512f"))) void RowsAvx512(const float* x, int64_t x_stride, const float* w,
                                                  float* out, int64_t out_stride, int64_t n_begin,
                                                  int64_t n_end, int64_t d, bool accumulate) {
  const int64_t d16 = d / 16 * 16;
  int64_t i = n_begin;
  for (; i + NR <= n_end; i += NR) {
    const float* wr = w + i * d;
    __m512 acc[NR][NB];
    for (int r = 0; r < NR; ++r)
      for (int b = 0; b < NB; ++b) acc[r][b] = _mm512_setzero_ps();
    for (int64_t j = 0; j < d16; j += 16) {
      __m512 wv[NR];
      for (int r = 0; r < NR; ++r) wv[r] = _mm512_loadu_ps(wr + r * d + j);
      for (int b = 0; b < NB; ++b) {
        const __m512 xv = _mm512_loadu_ps(x + b * x_stride + j);
        for (int r = 0; r < NR; ++r) acc[r][b] = _mm512_fmadd_ps(wv[r], xv, acc[r][b]);
      }
    }
    for (int r = 0; r < NR; ++r)
      for (int b = 0; b < NB; ++b) {
        float s = _mm512_reduce_add_ps(acc[r][b]);
        for (int64_t j = d16; j < d; ++j) s += wr[r * d + j] * x[b * x_stride + j];
        float* o = out + b * out_stride + i + r;
        *o = accumulate ? *o + s : s;
      }
  }
  for (; i < n_end; ++i)  // the last rows when n_end - n_begin is not a multiple of NR
    for (int b = 0; b < NB; ++b) {
      float s = 0;
      for (int64_t j = 0; j < d; ++j) s += w[i * d + j] * x[b * x_stride + j];
      float* o = out + b * out_stride + i;
      *o = accumulate ? *o + s : s;
    }
}
#pragma GCC diagnostic pop

// Portable fallback for CPUs without AVX-512 (and the same loop order).
void RowsScalar(const float* x, int64_t x_stride, int nb, const float* w, float* out,
                int64_t out_stride, int64_t n_begin, int64_t n_end, int64_t d, bool accumulate) {
  for (int64_t i = n_begin; i < n_end; ++i)
    for (int b = 0; b < nb; ++b) {
      float s = 0;
      for (int64_t j = 0; j < d; ++j) s += w[i * d + j] * x[b * x_stride + j];
      float* o = out + b * out_stride + i;
      *o = accumulate ? *o + s : s;
    }
}

using RowsFn = void (*)(const float*, int64_t, const float*, float*, int64_t, int64_t, int64_t,
                        int64_t, bool);
// Four W rows per pass while 4 x NB accumulators fit in the 32 registers, two beyond.
constexpr RowsFn kAvx512[] = {nullptr,           RowsAvx512<1, 4>, RowsAvx512<2, 4>,
                              RowsAvx512<3, 4>,  RowsAvx512<4, 4>, RowsAvx512<5, 4>,
                              RowsAvx512<6, 4>,  RowsAvx512<7, 2>, RowsAvx512<8, 2>};

}  // namespace

void SmallBatchMatmul(const float* x, const float* w, float* out, int64_t rows, int64_t n,
                      int64_t d, bool accumulate) {
  static const bool avx512 = __builtin_cpu_supports("avx512f");
  // Split W's rows across threads in even-sized blocks; tiny matrices stay on one thread.
  const int64_t grain = std::max<int64_t>(64, (1 << 16) / std::max<int64_t>(1, d));
  // Within a thread's rows of W, tiles of ~128 KiB: every chunk of up to 8 x rows (16
  // accumulators) passes over a tile while it is in cache, so W is read from memory once for
  // all rows, not once per chunk of 8.
  const int64_t tile = std::max<int64_t>(4, (int64_t{32} << 10) / std::max<int64_t>(1, d) / 4 * 4);
  at::parallel_for(0, (n + 3) / 4, grain / 4, [&](int64_t begin, int64_t end) {
    const int64_t lo = begin * 4, hi = std::min(n, end * 4);
    for (int64_t t = lo; t < hi; t += tile) {
      const int64_t t_end = std::min(hi, t + tile);
      for (int64_t b0 = 0; b0 < rows; b0 += 8) {
        const int nb = static_cast<int>(std::min<int64_t>(8, rows - b0));
        if (avx512)
          kAvx512[nb](x + b0 * d, d, w, out + b0 * n, n, t, t_end, d, accumulate);
        else
          RowsScalar(x + b0 * d, d, nb, w, out + b0 * n, n, t, t_end, d, accumulate);
      }
    }
  });
}

}  // namespace stave::kernels
