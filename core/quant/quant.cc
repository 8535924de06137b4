// Placeholder (scalar, slow) until the kernels land from branch wip-quant, which replaces it.
#include "core/quant/quant.h"

#include <cmath>
#include <cstring>
#include <vector>

namespace stave::quant {
namespace {
float Half(uint16_t h) {
  const uint32_t sign = (h & 0x8000u) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) bits = sign;
    else {
      float f = std::ldexp(static_cast<float>(mant), -24);
      std::memcpy(&bits, &f, 4);
      bits |= sign;
    }
  } else if (exp == 31) bits = sign | 0x7f800000u | (mant << 13);
  else bits = sign | ((exp + 112) << 23) | (mant << 13);
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}
}  // namespace

const char* WeightTypeName(WeightType type) {
  switch (type) {
    case WeightType::kF32: return "f32";
    case WeightType::kF16: return "f16";
    case WeightType::kBF16: return "bf16";
    case WeightType::kQ8_0: return "q8_0";
    case WeightType::kQ4_0: return "q4_0";
  }
  return "?";
}
int BlockColumns(WeightType type) {
  return type == WeightType::kQ8_0 || type == WeightType::kQ4_0 ? 32 : 1;
}
size_t RowBytes(WeightType type, int64_t cols) {
  switch (type) {
    case WeightType::kF32: return cols * 4;
    case WeightType::kF16: case WeightType::kBF16: return cols * 2;
    case WeightType::kQ8_0: return cols / 32 * 34;
    case WeightType::kQ4_0: return cols / 32 * 18;
  }
  return 0;
}
void QuantizeRows(WeightType, const float*, void*, int64_t, int64_t) {}
void DequantizeRows(WeightType type, const void* src, float* dst, int64_t rows, int64_t cols) {
  const auto* b = static_cast<const unsigned char*>(src);
  for (int64_t r = 0; r < rows; ++r, dst += cols, b += RowBytes(type, cols)) {
    for (int64_t j = 0; j < cols; ++j) {
      switch (type) {
        case WeightType::kF32: std::memcpy(dst + j, b + 4 * j, 4); break;
        case WeightType::kF16: { uint16_t h; std::memcpy(&h, b + 2 * j, 2); dst[j] = Half(h); break; }
        case WeightType::kBF16: { uint16_t h; std::memcpy(&h, b + 2 * j, 2); uint32_t u = uint32_t{h} << 16; std::memcpy(dst + j, &u, 4); break; }
        case WeightType::kQ8_0: { const unsigned char* blk = b + (j / 32) * 34; uint16_t h; std::memcpy(&h, blk, 2);
          dst[j] = Half(h) * static_cast<int8_t>(blk[2 + j % 32]); break; }
        case WeightType::kQ4_0: { const unsigned char* blk = b + (j / 32) * 18; uint16_t h; std::memcpy(&h, blk, 2);
          int k = j % 32; int nib = k < 16 ? (blk[2 + k] & 15) : (blk[2 + k - 16] >> 4); dst[j] = Half(h) * (nib - 8); break; }
      }
    }
  }
}
void Matmul(WeightType type, const void* w, int64_t n, int64_t d, const float* x, int64_t rows,
            float* out, bool accumulate) {
  std::vector<float> row(d);
  const auto* b = static_cast<const unsigned char*>(w);
  for (int64_t i = 0; i < n; ++i) {
    DequantizeRows(type, b + i * RowBytes(type, d), row.data(), 1, d);
    for (int64_t r = 0; r < rows; ++r) {
      float s = 0;
      for (int64_t k = 0; k < d; ++k) s += row[k] * x[r * d + k];
      out[r * n + i] = accumulate ? out[r * n + i] + s : s;
    }
  }
}
}  // namespace stave::quant
