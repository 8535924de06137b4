// out[r, i] (+)= sum_k x[r, k] * W[i, k] for W stored as F32, F16, BF16, Q8_0 or Q4_0.
//
// Structure (every type, every level): W's rows are split across LibTorch's intra-op threads
// (at::parallel_for, in groups of the micro-kernel's NR rows; a grain keeps small matrices on one
// thread). Each thread walks its rows in cache tiles of ~32 KiB of weights and passes every chunk
// of up to NB activation rows over a tile while it is in L1/L2, so W is read from memory once for
// all rows: rows == 1 is the decode matrix-vector product, a few rows the batched step, many rows
// the prefill GEMM (the same loop nest; the tile keeps W in cache, the activations stay in L2).
// A micro-kernel keeps NR x NB accumulators in registers, so each weight load feeds NB rows and
// each activation load NR rows.
//
// Float weights (F32/F16/BF16): activations stay fp32; weights are widened in registers (F16 with
// vcvtph2ps, BF16 by a 16-bit shift) and fused-multiply-added. For BF16 with many rows the
// AVX512_BF16 level instead rounds the activations to bf16 once and uses vdpbf16ps (32 products
// per instruction instead of 16): internal::kBf16DotMinRows = 16. Measured (bench/
// quant_matmul_bench.cc --levels, 1 thread, bf16 speed-up vs the engine's fp32 per token):
// widening 2.88x / 2.17x / 1.43x at 4 / 16 / 128 rows, vdpbf16ps 2.62x / 2.32x / 2.01x (2.6-2.7x
// in other runs at 128): equal within the noise while memory-bound, so bf16 rounding only from
// 16 rows on.
//
// Q8_0/Q4_0 (llama.cpp's way): the activations are quantized once per call to int8 per block of
// 32 with an fp32 scale (amax / 127, round to nearest even), and each block product is an int8
// dot product (vpdpbusd with VNNI, vpmaddubsw + vpmaddwd on AVX2) scaled by d_w * d_x into fp32
// accumulators. The exception is Q8_0 decode (one row) on AVX-512: fp32 activations, weights
// widened in registers (Q8Fp32Tile). Measured with bench/quant_matmul_bench.cc --alt (110M decode,
// 1 thread, ms per token, fp32 engine ~37-45 ms, load from other builds):
//   q4_0: int8 7.0 / 2.95 ms vs fp32 activations 11.3 / 7.5 ms (two runs): int8, the nibble
//     unpacking costs less as one vpdpbusd operand than widened to fp32;
//   q8_0: int8 13.7 / 9.0 ms vs fp32 activations 7.9 / 7.8 ms: widening 32 bytes to 2 x 16 floats
//     is cheap and needs no per-block activation scale or weight-sum correction, so decode keeps
//     fp32 (no activation rounding either); with 2+ rows the int8 kernel's shared weight work
//     wins (prefill 128 rows: q8_0 1.73x the fp32 OpenBLAS GEMM at 1 thread).
// Prefill (many rows) uses the same int8 kernel, not a dequantize + fp32 GEMM: it measured
// 1.6-1.75x at::mm's OpenBLAS sgemm (1 thread), which dequantize + GEMM cannot beat (GEMM alone
// is 1.0x).
//
// Levels (chosen at run time, internal::Isa): AVX-512 F/BW/VL/DQ + VNNI (+ BF16), AVX2 + FMA +
// F16C, and portable C++ (dequantize a row, fp32 dot), which is also the reference the SIMD paths
// are tested against.
#include <ATen/Parallel.h>
#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/quant/quant.h"
#include "core/quant/quant_internal.h"

namespace stave::quant {
namespace {

using internal::BlockQ4_0;
using internal::BlockQ8_0;
using internal::Isa;
using internal::kBlock;

// Everything a micro-kernel needs; the prepared activations are filled for the quantized types
// (xq/xd/xb) or the bf16 dot (xbf).
struct Args {
  const uint8_t* w;
  size_t row_bytes;
  int64_t n, d;
  const float* x;
  const uint8_t* xq;  // int8 activations, xq_stride bytes per row (padded with zero blocks)
  int64_t xq_stride;
  const float* xd;  // activation block scales (lanes per block: 1 on AVX2, 8 on AVX-512)
  int64_t xd_stride;
  const int32_t* xb;  // Q4_0: -8 * sum of the block's int8 activations (same lane layout)
  int64_t xb_stride;
  const uint16_t* xbf;  // bf16 activations, d per row
  float* out;
  bool accumulate;
};

inline void Store(const Args& a, int64_t b, int64_t i, float s) {
  float* o = a.out + b * a.n + i;
  *o = a.accumulate ? *o + s : s;
}

inline const uint8_t* Row(const Args& a, int64_t i) { return a.w + i * a.row_bytes; }

// Software prefetch of the weights PrefetchRows(NR) rows ahead at the same offset, and how many
// W rows a decode (one x row) micro-kernel interleaves. Measured on the AMD EPYC (Zen 4, 32 MB
// L3) build host, one thread, one [65536, 768] matrix, one x row, GB/s of weights read, two runs
// each while other builds ran (noisy: +-20 %):
//   4 rows interleaved, prefetch 8 rows ahead:  f32 12-13, bf16 13, f16 13, q8_0 25, q4_0 23
//   4 rows, prefetch 16 ahead:                  f32 11-12, bf16 12-13, f16 9, q8_0 12-22, q4_0 25-27
//   1 row, prefetch 8 ahead:                    f32 14-15, bf16 9-16, f16 16-18, q8_0 38, q4_0 18-19
//   (no prefetch at all, 4 rows: q8_0 4.6, bf16 6.5 with at::mv's fp32 at 10.8)
// So decode streams one row at a time, 8 rows ahead, except Q4_0 (its nibble unpacking is the
// bottleneck once the data is in cache: 4 rows and 16 ahead); see kDecodeNr.
constexpr int PrefetchRows(int nr) { return nr >= 4 ? 16 : 8; }
template <WeightType T>
constexpr int kDecodeNr = T == WeightType::kQ4_0 ? 4 : 1;

inline void Prefetch(const uint8_t* p) { _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T0); }

template <WeightType T>
constexpr int64_t ElemBytes() {
  return T == WeightType::kF32 ? 4 : 2;
}

template <WeightType T>
inline float ScalarW(const uint8_t* row, int64_t j) {
  if constexpr (T == WeightType::kF32) {
    float v;
    std::memcpy(&v, row + 4 * j, 4);
    return v;
  } else {
    uint16_t h;
    std::memcpy(&h, row + 2 * j, 2);
    if constexpr (T == WeightType::kF16) return internal::HalfToFloat(h);
    return internal::Bf16ToFloat(h);
  }
}

// ---------------------------------------------------------------------------------------------
// Portable path: each weight row dequantized to fp32 once, then one fp32 dot per activation row.
void RowsScalar(WeightType type, const Args& a, int64_t i0, int64_t i1, int64_t b0, int nb) {
  thread_local std::vector<float> buf;
  buf.resize(static_cast<size_t>(a.d));
  for (int64_t i = i0; i < i1; ++i) {
    DequantizeRows(type, Row(a, i), buf.data(), 1, a.d);
    for (int b = 0; b < nb; ++b) {
      const float* xr = a.x + (b0 + b) * a.d;
      float s = 0.0f;
      for (int64_t j = 0; j < a.d; ++j) s += buf[j] * xr[j];
      Store(a, b0 + b, i, s);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// AVX2 + FMA + F16C (256-bit).
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
namespace avx2 {

inline float Hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

template <WeightType T>
inline __m256 LoadW(const uint8_t* row, int64_t j) {
  if constexpr (T == WeightType::kF32) {
    return _mm256_loadu_ps(reinterpret_cast<const float*>(row) + j);
  } else {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * j));
    if constexpr (T == WeightType::kF16) return _mm256_cvtph_ps(h);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  }
}

template <WeightType T, int NR, int NB>
void FloatTile(const Args& a, int64_t i, int64_t b0) {
  const int64_t d = a.d, d8 = d / 8 * 8;
  const uint8_t* rows[NR];
  for (int r = 0; r < NR; ++r) rows[r] = Row(a, i + r);
  __m256 acc[NR][NB];
  for (int r = 0; r < NR; ++r)
    for (int b = 0; b < NB; ++b) acc[r][b] = _mm256_setzero_ps();
  const int64_t ahead = PrefetchRows(NR) * static_cast<int64_t>(a.row_bytes);
  for (int64_t j = 0; j < d8; j += 8) {
    __m256 wv[NR];
    for (int r = 0; r < NR; ++r) {
      if ((j * ElemBytes<T>()) % 64 == 0) Prefetch(rows[r] + ahead + j * ElemBytes<T>());
      wv[r] = LoadW<T>(rows[r], j);
    }
    for (int b = 0; b < NB; ++b) {
      const __m256 xv = _mm256_loadu_ps(a.x + (b0 + b) * d + j);
      for (int r = 0; r < NR; ++r) acc[r][b] = _mm256_fmadd_ps(wv[r], xv, acc[r][b]);
    }
  }
  for (int r = 0; r < NR; ++r)
    for (int b = 0; b < NB; ++b) {
      float s = Hsum(acc[r][b]);
      for (int64_t j = d8; j < d; ++j) s += ScalarW<T>(rows[r], j) * a.x[(b0 + b) * d + j];
      Store(a, b0 + b, i + r, s);
    }
}

// Q8_0/Q4_0, one block (one 256-bit vector of int8) at a time. Q4_0: the nibbles are the unsigned
// operand of vpmaddubsw (0..15, no saturation) and the -8 offset is added back as -8 * sum(x) per
// block (a.xb). Q8_0: vpmaddubsw needs one unsigned operand: |w| and x with w's sign (at most
// 128 * 127 * 2 per 16-bit pair, no saturation).
template <WeightType T, int NR, int NB>
void QuantTile(const Args& a, int64_t i, int64_t b0) {
  const int64_t nblk = a.d / kBlock;
  const __m256i ones16 = _mm256_set1_epi16(1);
  const __m128i m4 = _mm_set1_epi8(0x0f);
  const uint8_t* rows[NR];
  for (int r = 0; r < NR; ++r) rows[r] = Row(a, i + r);
  __m256 acc[NR][NB];
  for (int r = 0; r < NR; ++r)
    for (int b = 0; b < NB; ++b) acc[r][b] = _mm256_setzero_ps();
  const int64_t ahead = PrefetchRows(NR) * static_cast<int64_t>(a.row_bytes);
  constexpr int64_t kBlockBytes = T == WeightType::kQ8_0 ? sizeof(BlockQ8_0) : sizeof(BlockQ4_0);
  for (int64_t k = 0; k < nblk; ++k) {
    __m256i wq[NR], ws[NR];
    __m256 dw[NR];
    for (int r = 0; r < NR; ++r) {
      if (T == WeightType::kQ8_0 || k % 2 == 0) Prefetch(rows[r] + ahead + k * kBlockBytes);
      if constexpr (T == WeightType::kQ8_0) {
        const auto* blk = reinterpret_cast<const BlockQ8_0*>(rows[r]) + k;
        ws[r] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk->qs));
        wq[r] = _mm256_sign_epi8(ws[r], ws[r]);
        dw[r] = _mm256_set1_ps(_cvtsh_ss(blk->d));
      } else {
        const auto* blk = reinterpret_cast<const BlockQ4_0*>(rows[r]) + k;
        const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk->qs));
        wq[r] = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(q, 4), m4), _mm_and_si128(q, m4));
        dw[r] = _mm256_set1_ps(_cvtsh_ss(blk->d));
      }
    }
    for (int b = 0; b < NB; ++b) {
      const __m256i xv = _mm256_loadu_si256(
          reinterpret_cast<const __m256i*>(a.xq + (b0 + b) * a.xq_stride + k * kBlock));
      const __m256 dx = _mm256_broadcast_ss(a.xd + (b0 + b) * a.xd_stride + k);
      for (int r = 0; r < NR; ++r) {
        __m256i p;
        if constexpr (T == WeightType::kQ8_0) {
          p = _mm256_madd_epi16(_mm256_maddubs_epi16(wq[r], _mm256_sign_epi8(xv, ws[r])), ones16);
        } else {
          p = _mm256_add_epi32(_mm256_madd_epi16(_mm256_maddubs_epi16(wq[r], xv), ones16),
                               _mm256_castsi128_si256(
                                   _mm_cvtsi32_si128(a.xb[(b0 + b) * a.xb_stride + k])));
        }
        acc[r][b] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_mul_ps(dw[r], dx), acc[r][b]);
      }
    }
  }
  for (int r = 0; r < NR; ++r)
    for (int b = 0; b < NB; ++b) Store(a, b0 + b, i + r, Hsum(acc[r][b]));
}

template <WeightType T, int NR, int NB>
void Rows(const Args& a, int64_t i0, int64_t i1, int64_t b0) {
  constexpr bool kQuant = T == WeightType::kQ8_0 || T == WeightType::kQ4_0;
  int64_t i = i0;
  for (; i + NR <= i1; i += NR) {
    if constexpr (kQuant) QuantTile<T, NR, NB>(a, i, b0);
    else FloatTile<T, NR, NB>(a, i, b0);
  }
  for (; i < i1; ++i) {
    if constexpr (kQuant) QuantTile<T, 1, NB>(a, i, b0);
    else FloatTile<T, 1, NB>(a, i, b0);
  }
}

// 16 registers: float types 4 W rows for 1-2 x rows, 2 beyond (8 accumulators at most); the
// quantized ones 2 W rows x up to 3 x rows (6 accumulators + 3 per W row + temporaries).
constexpr int kFloatNbMax = 4, kQuantNbMax = 3;

template <WeightType T>
void Dispatch(const Args& a, int64_t i0, int64_t i1, int64_t b0, int nb) {
  if constexpr (T == WeightType::kQ8_0 || T == WeightType::kQ4_0) {
    switch (nb) {
      case 1: return Rows<T, kDecodeNr<T>, 1>(a, i0, i1, b0);
      case 2: return Rows<T, 2, 2>(a, i0, i1, b0);
      default: return Rows<T, 2, 3>(a, i0, i1, b0);
    }
  } else {
    switch (nb) {
      case 1: return Rows<T, kDecodeNr<T>, 1>(a, i0, i1, b0);
      case 2: return Rows<T, 4, 2>(a, i0, i1, b0);
      case 3: return Rows<T, 2, 3>(a, i0, i1, b0);
      default: return Rows<T, 2, 4>(a, i0, i1, b0);
    }
  }
}

}  // namespace avx2
#pragma GCC pop_options

// ---------------------------------------------------------------------------------------------
// AVX-512 F/BW/VL/DQ + VNNI (512-bit), and AVX512_BF16 for the bf16 dot.
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx512bf16,avx2,fma,f16c")
// GCC 12's own intrinsics (_mm512_castsi256_si512, _mm512_insertf32x8, ...) start from an
// "undefined" register and trip -Wuninitialized (GCC bug 105593); nothing of ours is uninitialized.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
namespace avx512 {

template <WeightType T>
inline __m512 LoadW(const uint8_t* row, int64_t j) {
  if constexpr (T == WeightType::kF32) {
    return _mm512_loadu_ps(reinterpret_cast<const float*>(row) + j);
  } else {
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 2 * j));
    if constexpr (T == WeightType::kF16) return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
}

template <WeightType T, int NR, int NB>
void FloatTile(const Args& a, int64_t i, int64_t b0) {
  const int64_t d = a.d, d16 = d / 16 * 16;
  const uint8_t* rows[NR];
  for (int r = 0; r < NR; ++r) rows[r] = Row(a, i + r);
  __m512 acc[NR][NB];
  for (int r = 0; r < NR; ++r)
    for (int b = 0; b < NB; ++b) acc[r][b] = _mm512_setzero_ps();
  const int64_t ahead = PrefetchRows(NR) * static_cast<int64_t>(a.row_bytes);
  for (int64_t j = 0; j < d16; j += 16) {
    __m512 wv[NR];
    for (int r = 0; r < NR; ++r) {
      Prefetch(rows[r] + ahead + j * ElemBytes<T>());
      wv[r] = LoadW<T>(rows[r], j);
    }
    for (int b = 0; b < NB; ++b) {
      const __m512 xv = _mm512_loadu_ps(a.x + (b0 + b) * d + j);
      for (int r = 0; r < NR; ++r) acc[r][b] = _mm512_fmadd_ps(wv[r], xv, acc[r][b]);
    }
  }
  for (int r = 0; r < NR; ++r)
    for (int b = 0; b < NB; ++b) {
      float s = _mm512_reduce_add_ps(acc[r][b]);
      for (int64_t j = d16; j < d; ++j) s += ScalarW<T>(rows[r], j) * a.x[(b0 + b) * d + j];
      Store(a, b0 + b, i + r, s);
    }
}

// BF16 weights against bf16-rounded activations (a.xbf): vdpbf16ps multiplies 32 bf16 pairs and
// adds them into 16 fp32 lanes; the tail (d % 32) in scalar fp32 from the same bf16 values.
template <int NR, int NB>
void Bf16DotTile(const Args& a, int64_t i, int64_t b0) {
  const int64_t d = a.d, d32 = d / 32 * 32;
  const uint16_t* rows[NR];
  for (int r = 0; r < NR; ++r) rows[r] = reinterpret_cast<const uint16_t*>(Row(a, i + r));
  __m512 acc[NR][NB];
  for (int r = 0; r < NR; ++r)
    for (int b = 0; b < NB; ++b) acc[r][b] = _mm512_setzero_ps();
  const int64_t ahead = PrefetchRows(NR) * static_cast<int64_t>(a.row_bytes);
  for (int64_t j = 0; j < d32; j += 32) {
    __m512bh wv[NR];
    for (int r = 0; r < NR; ++r) {
      Prefetch(reinterpret_cast<const uint8_t*>(rows[r] + j) + ahead);
      wv[r] = (__m512bh)_mm512_loadu_si512(rows[r] + j);
    }
    for (int b = 0; b < NB; ++b) {
      const __m512bh xv = (__m512bh)_mm512_loadu_si512(a.xbf + (b0 + b) * d + j);
      for (int r = 0; r < NR; ++r) acc[r][b] = _mm512_dpbf16_ps(acc[r][b], wv[r], xv);
    }
  }
  for (int r = 0; r < NR; ++r)
    for (int b = 0; b < NB; ++b) {
      float s = _mm512_reduce_add_ps(acc[r][b]);
      for (int64_t j = d32; j < d; ++j)
        s += internal::Bf16ToFloat(rows[r][j]) * internal::Bf16ToFloat(a.xbf[(b0 + b) * d + j]);
      Store(a, b0 + b, i + r, s);
    }
}

// Q8_0/Q4_0, two blocks (one 512-bit vector of int8) at a time; an odd last block is loaded
// zero-extended (its activation bytes and scales are zero-padded by PrepareActivations).
//   Q4_0: nibbles (0..15) are vpdpbusd's unsigned operand, the int8 activations the signed one;
//     the accumulator starts at a.xb (-8 * sum(x) of each block in its first lane).
//   Q8_0: the activations are stored as unsigned x + 128 and the weights are the signed operand;
//     the accumulator starts at -128 * sum(w) (per lane: vpdpbusd of ones with w, shifted), so
//     sum((x + 128) w) - 128 sum(w) = sum(x w), computed once per weight block for all x rows.
// Each block's int32 sums are converted and scaled by d_w * d_x (lanes 0-7 one block, 8-15 the
// next) into fp32 accumulators, reduced once per row.
template <WeightType T, int NR, int NB>
void QuantTile(const Args& a, int64_t i, int64_t b0) {
  const int64_t nblk = a.d / kBlock, npair = (nblk + 1) / 2;
  const __m512i m4 = _mm512_set1_epi8(0x0f), ones8 = _mm512_set1_epi8(1);
  const __m512i nib_idx = _mm512_set_epi64(3, 2, 3, 2, 1, 0, 1, 0);
  const long long s4 = 0x0004000400040004LL;
  const __m512i nib_shift = _mm512_set_epi64(s4, s4, 0, 0, s4, s4, 0, 0);
  const uint8_t* rows[NR];
  for (int r = 0; r < NR; ++r) rows[r] = Row(a, i + r);
  __m512 acc[NR][NB];
  for (int r = 0; r < NR; ++r)
    for (int b = 0; b < NB; ++b) acc[r][b] = _mm512_setzero_ps();
  const int64_t ahead = PrefetchRows(NR) * static_cast<int64_t>(a.row_bytes);
  constexpr int64_t kBlockBytes = T == WeightType::kQ8_0 ? sizeof(BlockQ8_0) : sizeof(BlockQ4_0);
  for (int64_t kp = 0; kp < npair; ++kp) {
    const int64_t k = 2 * kp;
    const bool two = k + 1 < nblk;
    __m512i wq[NR], wbias[NR];
    __m512 dw[NR];
    for (int r = 0; r < NR; ++r) {
      Prefetch(rows[r] + ahead + k * kBlockBytes);
      if constexpr (T == WeightType::kQ8_0) {
        const auto* blk = reinterpret_cast<const BlockQ8_0*>(rows[r]) + k;
        const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk[0].qs));
        const float d0 = _cvtsh_ss(blk[0].d);
        if (two) {
          wq[r] = _mm512_inserti64x4(_mm512_castsi256_si512(lo),
                                     _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk[1].qs)),
                                     1);
          dw[r] = _mm512_insertf32x8(_mm512_set1_ps(d0), _mm256_set1_ps(_cvtsh_ss(blk[1].d)), 1);
        } else {
          wq[r] = _mm512_zextsi256_si512(lo);
          dw[r] = _mm512_insertf32x8(_mm512_set1_ps(d0), _mm256_setzero_ps(), 1);
        }
        wbias[r] = _mm512_sub_epi32(
            _mm512_setzero_si512(),
            _mm512_slli_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), ones8, wq[r]), 7));
      } else {
        const auto* blk = reinterpret_cast<const BlockQ4_0*>(rows[r]) + k;
        const __m128i q0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk[0].qs));
        const float d0 = _cvtsh_ss(blk[0].d);
        __m256i t;
        if (two) {
          t = _mm256_inserti128_si256(_mm256_castsi128_si256(q0),
                                      _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk[1].qs)), 1);
          dw[r] = _mm512_insertf32x8(_mm512_set1_ps(d0), _mm256_set1_ps(_cvtsh_ss(blk[1].d)), 1);
        } else {
          t = _mm256_zextsi128_si256(q0);
          dw[r] = _mm512_insertf32x8(_mm512_set1_ps(d0), _mm256_setzero_ps(), 1);
        }
        // [q0, q0, q1, q1] by 128-bit lanes, then the high nibbles of the 2nd and 4th lane.
        const __m512i z = _mm512_permutexvar_epi64(nib_idx, _mm512_castsi256_si512(t));
        wq[r] = _mm512_and_si512(_mm512_srlv_epi16(z, nib_shift), m4);
      }
    }
    for (int b = 0; b < NB; ++b) {
      const __m512i xv = _mm512_loadu_si512(a.xq + (b0 + b) * a.xq_stride + k * kBlock);
      const __m512 dx = _mm512_loadu_ps(a.xd + (b0 + b) * a.xd_stride + kp * 16);
      __m512i xbias;
      if constexpr (T == WeightType::kQ4_0)
        xbias = _mm512_loadu_si512(a.xb + (b0 + b) * a.xb_stride + kp * 16);
      for (int r = 0; r < NR; ++r) {
        __m512i p;
        if constexpr (T == WeightType::kQ8_0) p = _mm512_dpbusd_epi32(wbias[r], xv, wq[r]);
        else p = _mm512_dpbusd_epi32(xbias, wq[r], xv);
        acc[r][b] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), _mm512_mul_ps(dw[r], dx), acc[r][b]);
      }
    }
  }
  for (int r = 0; r < NR; ++r)
    for (int b = 0; b < NB; ++b) Store(a, b0 + b, i + r, _mm512_reduce_add_ps(acc[r][b]));
}

// Q8_0 decode (one x row) with fp32 activations: each block's int8 weights widened to fp32 in
// registers (vpmovsxbd + vcvtdq2ps), two FMAs against x into a block sum, one FMA scaling it by
// d_w. Chosen over the int8 kernel for one row by measurement (see kQ8Fp32DecodeRows); no
// activation rounding either.
template <int NR>
void Q8Fp32Tile(const Args& a, int64_t i) {
  const int64_t nblk = a.d / kBlock;
  const int64_t ahead = PrefetchRows(NR) * static_cast<int64_t>(a.row_bytes);
  const BlockQ8_0* rows[NR];
  for (int r = 0; r < NR; ++r) rows[r] = reinterpret_cast<const BlockQ8_0*>(Row(a, i + r));
  __m512 acc[NR];
  for (int r = 0; r < NR; ++r) acc[r] = _mm512_setzero_ps();
  for (int64_t k = 0; k < nblk; ++k) {
    const __m512 x0 = _mm512_loadu_ps(a.x + k * kBlock), x1 = _mm512_loadu_ps(a.x + k * kBlock + 16);
    for (int r = 0; r < NR; ++r) {
      const BlockQ8_0* blk = rows[r] + k;
      Prefetch(reinterpret_cast<const uint8_t*>(blk) + ahead);
      const __m512 lo = _mm512_cvtepi32_ps(
          _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk->qs))));
      const __m512 hi = _mm512_cvtepi32_ps(
          _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk->qs + 16))));
      const __m512 s = _mm512_fmadd_ps(hi, x1, _mm512_mul_ps(lo, x0));
      acc[r] = _mm512_fmadd_ps(s, _mm512_set1_ps(_cvtsh_ss(blk->d)), acc[r]);
    }
  }
  for (int r = 0; r < NR; ++r) Store(a, 0, i + r, _mm512_reduce_add_ps(acc[r]));
}

enum class Kind { kFloat, kQuant, kBf16Dot, kQ8Fp32 };

template <Kind K, WeightType T, int NR, int NB>
inline void Tile(const Args& a, int64_t i, int64_t b0) {
  if constexpr (K == Kind::kQuant) QuantTile<T, NR, NB>(a, i, b0);
  else if constexpr (K == Kind::kBf16Dot) Bf16DotTile<NR, NB>(a, i, b0);
  else if constexpr (K == Kind::kQ8Fp32) Q8Fp32Tile<NR>(a, i);
  else FloatTile<T, NR, NB>(a, i, b0);
}

template <Kind K, WeightType T, int NR, int NB>
void Rows(const Args& a, int64_t i0, int64_t i1, int64_t b0) {
  int64_t i = i0;
  for (; i + NR <= i1; i += NR) Tile<K, T, NR, NB>(a, i, b0);
  for (; i < i1; ++i) Tile<K, T, 1, NB>(a, i, b0);
}

// 32 registers: 4 W rows for up to 6 x rows (24 accumulators), 2 W rows for 7-8. Quantized:
// 4 W rows x up to 4 x rows (16 accumulators + 3 vectors per W row), 2 W rows beyond.
constexpr int kFloatNbMax = 8, kQuantNbMax = 6;

template <Kind K, WeightType T>
void Dispatch(const Args& a, int64_t i0, int64_t i1, int64_t b0, int nb) {
  if constexpr (K == Kind::kQ8Fp32) {
    (void)nb;  // one row only
    return Rows<K, T, 1, 1>(a, i0, i1, b0);
  } else if constexpr (K == Kind::kQuant) {
    switch (nb) {
      case 1: return Rows<K, T, kDecodeNr<T>, 1>(a, i0, i1, b0);
      case 2: return Rows<K, T, 4, 2>(a, i0, i1, b0);
      case 3: return Rows<K, T, 4, 3>(a, i0, i1, b0);
      case 4: return Rows<K, T, 4, 4>(a, i0, i1, b0);
      case 5: return Rows<K, T, 2, 5>(a, i0, i1, b0);
      default: return Rows<K, T, 2, 6>(a, i0, i1, b0);
    }
  } else {
    switch (nb) {
      case 1: return Rows<K, T, kDecodeNr<T>, 1>(a, i0, i1, b0);
      case 2: return Rows<K, T, 4, 2>(a, i0, i1, b0);
      case 3: return Rows<K, T, 4, 3>(a, i0, i1, b0);
      case 4: return Rows<K, T, 4, 4>(a, i0, i1, b0);
      case 5: return Rows<K, T, 4, 5>(a, i0, i1, b0);
      case 6: return Rows<K, T, 4, 6>(a, i0, i1, b0);
      case 7: return Rows<K, T, 2, 7>(a, i0, i1, b0);
      default: return Rows<K, T, 2, 8>(a, i0, i1, b0);
    }
  }
}

}  // namespace avx512
#pragma GCC diagnostic pop
#pragma GCC pop_options

// ---------------------------------------------------------------------------------------------
// Level selection.

Isa Detect() {
  __builtin_cpu_init();
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                    __builtin_cpu_supports("f16c");
  if (!avx2) return Isa::kScalar;
  const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
                      __builtin_cpu_supports("avx512vnni");
  if (!avx512) return Isa::kAvx2;
  return __builtin_cpu_supports("avx512bf16") ? Isa::kAvx512Bf16 : Isa::kAvx512;
}

const Isa g_detected = Detect();
std::atomic<int> g_active{static_cast<int>(g_detected)};

using internal::kBf16DotMinRows;

// Quantizes each activation row per block of 32 (scale amax / 127 in fp32, round to nearest
// even) into a's xq/xd/xb buffers. lanes: copies of each block's scale and bias (1 for AVX2,
// 8 for AVX-512, whose kernel reads 16 lanes for two blocks); pad_pairs: round the blocks up to
// an even count with zeros; u8: store x + 128 (the unsigned vpdpbusd operand).
struct QuantScratch {
  std::vector<uint8_t> q;
  std::vector<float> d;
  std::vector<int32_t> b;
};

void PrepareActivations(Args& a, int64_t rows, QuantScratch& s, int lanes, bool pad_pairs,
                        bool u8, bool bias) {
  const int64_t nblk = a.d / kBlock, nblk_pad = pad_pairs ? (nblk + 1) / 2 * 2 : nblk;
  a.xq_stride = nblk_pad * kBlock;
  a.xd_stride = a.xb_stride = nblk_pad * lanes;
  s.q.assign(static_cast<size_t>(rows * a.xq_stride), 0);
  s.d.assign(static_cast<size_t>(rows * a.xd_stride), 0.0f);
  if (bias) s.b.assign(static_cast<size_t>(rows * a.xb_stride), 0);
  a.xq = s.q.data();
  a.xd = s.d.data();
  a.xb = bias ? s.b.data() : nullptr;
  auto quantize = [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r)
      for (int64_t k = 0; k < nblk; ++k) {
        const float* x = a.x + r * a.d + k * kBlock;
        float amax = 0.0f;
        for (int j = 0; j < kBlock; ++j) amax = std::max(amax, std::fabs(x[j]));
        const float dx = amax / 127.0f, id = dx != 0.0f ? 1.0f / dx : 0.0f;
        uint8_t* q = s.q.data() + r * a.xq_stride + k * kBlock;
        int32_t sum = 0;
        for (int j = 0; j < kBlock; ++j) {
          // Round to nearest even as std::nearbyint, without its libm call on baseline x86-64
          // (no SSE4.1 roundss): adding 1.5 * 2^23 leaves no fraction bits for |v| <= 127.
          const int v = static_cast<int>((x[j] * id + 12582912.0f) - 12582912.0f);
          sum += v;
          q[j] = static_cast<uint8_t>(u8 ? v + 128 : v);
        }
        for (int l = 0; l < lanes; ++l) s.d[r * a.xd_stride + k * lanes + l] = dx;
        if (bias) s.b[r * a.xb_stride + k * lanes] = -8 * sum;
      }
  };
  at::parallel_for(0, rows, std::max<int64_t>(1, 8192 / a.d), quantize);
}

void PrepareBf16(Args& a, int64_t rows, std::vector<uint16_t>& buf) {
  buf.resize(static_cast<size_t>(rows * a.d));
  for (int64_t i = 0; i < rows * a.d; ++i) buf[i] = internal::FloatToBf16(a.x[i]);
  a.xbf = buf.data();
}

using TileFn = void (*)(const Args&, int64_t, int64_t, int64_t, int);

}  // namespace

namespace internal {

const char* IsaName(Isa isa) {
  switch (isa) {
    case Isa::kScalar: return "scalar";
    case Isa::kAvx2: return "avx2";
    case Isa::kAvx512: return "avx512_vnni";
    case Isa::kAvx512Bf16: return "avx512_vnni_bf16";
  }
  return "unknown";
}

Isa DetectedIsa() { return g_detected; }

bool Int8Activations(WeightType type, Isa isa, int64_t rows) {
  if (type != WeightType::kQ8_0 && type != WeightType::kQ4_0) return false;
  if (isa == Isa::kScalar) return false;
  if (type == WeightType::kQ8_0 && rows == 1 && isa >= Isa::kAvx512) return false;
  return true;
}
Isa ActiveIsa() { return static_cast<Isa>(g_active.load(std::memory_order_relaxed)); }

bool SetIsaForTesting(Isa isa) {
  if (static_cast<int>(isa) > static_cast<int>(g_detected)) return false;
  g_active.store(static_cast<int>(isa), std::memory_order_relaxed);
  return true;
}

}  // namespace internal

void Matmul(WeightType type, const void* w, int64_t n, int64_t d, const float* x, int64_t rows,
            float* out, bool accumulate) {
  if (d <= 0 || d % BlockColumns(type) != 0)
    throw std::invalid_argument(std::string("stave::quant::Matmul: d = ") + std::to_string(d) +
                                " is not a positive multiple of the " + WeightTypeName(type) +
                                " block (" + std::to_string(BlockColumns(type)) + ")");
  if (n <= 0 || rows <= 0) return;
  const Isa isa = internal::ActiveIsa();
  const bool quant = type == WeightType::kQ8_0 || type == WeightType::kQ4_0;
  Args a{};
  a.w = static_cast<const uint8_t*>(w);
  a.row_bytes = RowBytes(type, d);
  a.n = n;
  a.d = d;
  a.x = x;
  a.out = out;
  a.accumulate = accumulate;

  thread_local QuantScratch scratch;
  thread_local std::vector<uint16_t> bf16_scratch;
  TileFn fn = nullptr;
  int nr = 1, nb_max = 8;
  if (isa == Isa::kScalar) {
    nr = 1;
    nb_max = 8;
  } else if (isa == Isa::kAvx2) {
    nr = quant ? 2 : 4;
    nb_max = quant ? avx2::kQuantNbMax : avx2::kFloatNbMax;
    switch (type) {
      case WeightType::kF32: fn = avx2::Dispatch<WeightType::kF32>; break;
      case WeightType::kF16: fn = avx2::Dispatch<WeightType::kF16>; break;
      case WeightType::kBF16: fn = avx2::Dispatch<WeightType::kBF16>; break;
      case WeightType::kQ8_0: fn = avx2::Dispatch<WeightType::kQ8_0>; break;
      case WeightType::kQ4_0: fn = avx2::Dispatch<WeightType::kQ4_0>; break;
    }
    if (internal::Int8Activations(type, isa, rows))
      PrepareActivations(a, rows, scratch, 1, false, false, type == WeightType::kQ4_0);
  } else {
    using avx512::Kind;
    nr = 4;
    nb_max = quant ? avx512::kQuantNbMax : avx512::kFloatNbMax;
    switch (type) {
      case WeightType::kF32: fn = avx512::Dispatch<Kind::kFloat, WeightType::kF32>; break;
      case WeightType::kF16: fn = avx512::Dispatch<Kind::kFloat, WeightType::kF16>; break;
      case WeightType::kBF16:
        if (isa == Isa::kAvx512Bf16 && rows >= kBf16DotMinRows) {
          fn = avx512::Dispatch<Kind::kBf16Dot, WeightType::kBF16>;
          PrepareBf16(a, rows, bf16_scratch);
        } else {
          fn = avx512::Dispatch<Kind::kFloat, WeightType::kBF16>;
        }
        break;
      case WeightType::kQ8_0:
        fn = internal::Int8Activations(type, isa, rows)
                 ? avx512::Dispatch<Kind::kQuant, WeightType::kQ8_0>
                 : avx512::Dispatch<Kind::kQ8Fp32, WeightType::kQ8_0>;
        break;
      case WeightType::kQ4_0: fn = avx512::Dispatch<Kind::kQuant, WeightType::kQ4_0>; break;
    }
    if (internal::Int8Activations(type, isa, rows))
      PrepareActivations(a, rows, scratch, 8, true, type == WeightType::kQ8_0,
                         type == WeightType::kQ4_0);
  }

  // Split W's rows across threads in groups of nr; at least ~64 K weights per thread so small
  // matrices stay on one thread. Within a thread, cache tiles of ~32 KiB of weights (a multiple
  // of nr rows): each chunk of up to nb_max activation rows passes over a tile while it is in
  // cache, so W is read from memory once for all rows. A static split: handing out tiles from
  // an atomic counter instead measured no better at 2 threads (static time / dynamic time,
  // medians on the 110M shapes: 0.96 / 0.94 / 0.80 for bf16 / q8_0 / q4_0 decode, 0.62-0.99 for
  // 16 and 128 rows; load average ~10 from other builds on the 2 cores).
  const int64_t groups = (n + nr - 1) / nr;
  const int64_t grain = std::max<int64_t>(1, std::max<int64_t>(64, (1 << 16) / d) / nr);
  const int64_t tile = std::max<int64_t>(
      nr, static_cast<int64_t>((size_t{32} << 10) / a.row_bytes) / nr * nr);
  at::parallel_for(0, groups, grain, [&](int64_t begin, int64_t end) {
    const int64_t lo = begin * nr, hi = std::min(n, end * nr);
    for (int64_t t = lo; t < hi; t += tile) {
      const int64_t t_end = std::min(hi, t + tile);
      for (int64_t b0 = 0; b0 < rows; b0 += nb_max) {
        const int nb = static_cast<int>(std::min<int64_t>(nb_max, rows - b0));
        if (fn) fn(a, t, t_end, b0, nb);
        else RowsScalar(type, a, t, t_end, b0, nb);
      }
    }
  });
}

}  // namespace stave::quant
