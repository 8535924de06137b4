// y = x W^T for a few rows x (decode: one row per sequence or per bucket branch), reading each
// weight once for all rows. Why hand-written: with LibTorch 1.13 + OpenBLAS here, a GEMM with
// 2-16 rows reads weights at only 4-5 GB/s (OpenBLAS packs for large matrices), so six bucket
// branches decoded 4x slower than one; this kernel streams W row by row and does all rows' dot
// products from registers. `stave bench` measures it; see docs/benchmarks.md.
#pragma once

#include <cstdint>

namespace stave::kernels {

// Up to 64 rows (a decode step of 64 streams, or of 4 streams with 16 buckets): measured with
// `stave bench --concurrency 1,16,64` on the 110M shape, 64 streams decoded 501 tokens/s through
// this kernel against 344 through OpenBLAS GEMM (2 threads, AMD EPYC, one run).
inline constexpr int kSmallBatchMaxRows = 64;

// x [rows, d], w [n, d], out [rows, n], all contiguous fp32; rows <= kSmallBatchMaxRows (any
// count: chunks of 8 rows pass over cache-sized tiles of W, so W streams from memory once).
// accumulate: out += x W^T instead of out = x W^T.
void SmallBatchMatmul(const float* x, const float* w, float* out, int64_t rows, int64_t n,
                      int64_t d, bool accumulate);

}  // namespace stave::kernels
