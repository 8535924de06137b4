// Internals of core/quant shared by quant.cc, quant_matmul.cc and the tests: the GGUF block
// layouts, portable 16-bit float conversions, and the instruction-set level the kernels use
// (with a test-only override so every compiled path can be exercised on one machine).
#pragma once

#include <cstdint>
#include <cstring>

#include "core/quant/quant.h"

namespace stave::quant::internal {

constexpr int kBlock = 32;  // weights per Q8_0 / Q4_0 block (ggml's QK8_0 == QK4_0 == 32)

// ggml's block_q8_0 and block_q4_0, byte for byte (no padding: 34 and 18 bytes).
struct BlockQ8_0 {
  uint16_t d;  // IEEE half scale
  int8_t qs[kBlock];
};
struct BlockQ4_0 {
  uint16_t d;              // IEEE half scale
  uint8_t qs[kBlock / 2];  // element j in the low nibble of qs[j], element j + 16 in the high
};
static_assert(sizeof(BlockQ8_0) == 34 && sizeof(BlockQ4_0) == 18, "ggml block layout");

inline uint32_t FloatBits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
inline float BitsFloat(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// IEEE binary16 -> fp32, exact (subnormals, infinities and NaN payloads kept).
inline float HalfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff;
  if (exp == 0x1f) return BitsFloat(sign | 0x7f800000 | (man << 13));
  if (exp != 0) return BitsFloat(sign | ((exp + 112) << 23) | (man << 13));
  // Zero or subnormal: man * 2^-24, exact in fp32.
  const float v = static_cast<float>(man) * (1.0f / 16777216.0f);
  return sign ? -v : v;
}

// fp32 -> IEEE binary16, round to nearest even (what F16C's vcvtps2ph with imm 0 and ggml's
// portable GGML_FP32_TO_FP16 do); overflow gives infinity, NaN stays a quiet NaN.
inline uint16_t FloatToHalf(float f) {
  const uint32_t x = FloatBits(f);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000);
  const uint32_t ax = x & 0x7fffffff;
  if (ax > 0x7f800000) return sign | 0x7e00 | ((ax >> 13) & 0x3ff);  // NaN, quiet
  if (ax >= 0x477ff000) return sign | 0x7c00;  // >= 65520 rounds to infinity
  if (ax >= 0x38800000) {                      // normal half (>= 2^-14)
    uint32_t h = (ax - 0x38000000) >> 13;
    const uint32_t rem = ax & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) ++h;  // a carry moves into the exponent
    return sign | static_cast<uint16_t>(h);
  }
  if (ax <= 0x33000000) return sign;  // <= 2^-25: rounds to (signed) zero, the tie to even
  const uint32_t e = ax >> 23, m = (ax & 0x7fffff) | 0x800000;
  const uint32_t shift = 126 - e;  // 14..24: units of the half subnormal step 2^-24
  uint32_t h = m >> shift;
  const uint32_t rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
  if (rem > half || (rem == half && (h & 1))) ++h;
  return sign | static_cast<uint16_t>(h);
}

inline float Bf16ToFloat(uint16_t h) { return BitsFloat(static_cast<uint32_t>(h) << 16); }

// fp32 -> bf16 as ggml's ggml_compute_fp32_to_bf16 (llama.cpp since mid-2024): round to nearest
// even on the top 16 bits, NaN forced quiet, subnormals kept (not flushed).
inline uint16_t FloatToBf16(float f) {
  const uint32_t u = FloatBits(f);
  if ((u & 0x7fffffff) > 0x7f800000) return static_cast<uint16_t>((u >> 16) | 64);
  return static_cast<uint16_t>((u + (0x7fff + ((u >> 16) & 1))) >> 16);
}

// Instruction-set levels of the Matmul kernels, lowest to highest.
//   kScalar: portable C++ (any CPU, any compiler target).
//   kAvx2: AVX2 + FMA + F16C, 256-bit; int8 products with vpmaddubsw.
//   kAvx512: AVX-512 F/BW/VL/DQ + VNNI; int8 products with vpdpbusd. A CPU with AVX-512 but
//     without VNNI (Skylake-X) runs kAvx2.
//   kAvx512Bf16: kAvx512 + AVX512_BF16 (vdpbf16ps for BF16 weights with many rows).
enum class Isa { kScalar = 0, kAvx2 = 1, kAvx512 = 2, kAvx512Bf16 = 3 };

// On kAvx512Bf16, Matmul with BF16 weights and at least this many activation rows rounds the
// activations to bf16 and uses vdpbf16ps; below it (and on other levels) it widens the weights
// to fp32 and keeps fp32 activations. See quant_matmul.cc for the measurement behind it.
constexpr int64_t kBf16DotMinRows = 16;

// Whether Matmul rounds the activations to int8 per block for this call (Q8_0/Q4_0 on the SIMD
// levels), except Q8_0 decode (one row) on the AVX-512 levels, which keeps fp32 activations.
bool Int8Activations(WeightType type, Isa isa, int64_t rows);

const char* IsaName(Isa isa);
Isa DetectedIsa();  // the best level this CPU supports
Isa ActiveIsa();    // the level Matmul uses now
// Test hook: makes Matmul use `isa` (must be <= DetectedIsa(); returns false and changes nothing
// otherwise). Not thread-safe against concurrent Matmul calls; tests only.
bool SetIsaForTesting(Isa isa);

}  // namespace stave::quant::internal
