// Weight formats: names, sizes, and fp32 <-> type conversions, byte-identical to GGUF/ggml.
// Scalar code: these run once per weight at load or conversion time, not per token. The
// quantizers follow llama.cpp's reference ones (ggml/src/ggml-quants.c, quantize_row_q8_0_ref and
// quantize_row_q4_0_ref) operation for operation, so files written here and by llama-quantize
// agree bit for bit (tests/quant_test.cc checks this against llama.cpp's files when present).
#include "core/quant/quant.h"

#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

#include "core/quant/quant_internal.h"

namespace stave::quant {
namespace {

using internal::BlockQ4_0;
using internal::BlockQ8_0;
using internal::kBlock;

void CheckCols(WeightType type, int64_t cols) {
  if (cols < 0 || cols % BlockColumns(type) != 0)
    throw std::invalid_argument(std::string("stave::quant: a row of ") + WeightTypeName(type) +
                                " weights needs a multiple of " +
                                std::to_string(BlockColumns(type)) + " columns, got " +
                                std::to_string(cols));
}

// llama.cpp's quantize_row_q8_0_ref: d = amax / 127 (fp32), stored as fp16; q = roundf(x / d)
// computed as x * (1/d) with the fp32 d (not the stored fp16 one).
void QuantizeQ8_0(const float* x, BlockQ8_0* y, int64_t blocks) {
  for (int64_t i = 0; i < blocks; ++i, x += kBlock) {
    float amax = 0.0f;
    for (int j = 0; j < kBlock; ++j) amax = std::fmax(amax, std::fabs(x[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = internal::FloatToHalf(d);
    for (int j = 0; j < kBlock; ++j) y[i].qs[j] = static_cast<int8_t>(std::roundf(x[j] * id));
  }
}

// llama.cpp's quantize_row_q4_0_ref: `max` is the element of largest magnitude with its sign
// (the first one on ties), d = max / -8, q = min(15, (int8)(x / d + 8.5)) (truncation, so
// round-half-up of x / d + 8), element j in the low nibble of qs[j], element j + 16 in the high.
void QuantizeQ4_0(const float* x, BlockQ4_0* y, int64_t blocks) {
  for (int64_t i = 0; i < blocks; ++i, x += kBlock) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < kBlock; ++j)
      if (amax < std::fabs(x[j])) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    const float d = max / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = internal::FloatToHalf(d);
    for (int j = 0; j < kBlock / 2; ++j) {
      const int q0 = static_cast<int8_t>(x[j] * id + 8.5f);
      const int q1 = static_cast<int8_t>(x[j + kBlock / 2] * id + 8.5f);
      y[i].qs[j] = static_cast<uint8_t>((q0 < 15 ? q0 : 15) | (q1 < 15 ? q1 : 15) << 4);
    }
  }
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
  return "unknown";
}

bool WeightTypeFromName(std::string_view name, WeightType* type) {
  for (WeightType t : {WeightType::kF32, WeightType::kF16, WeightType::kBF16, WeightType::kQ8_0, WeightType::kQ4_0})
    if (name == WeightTypeName(t)) {
      *type = t;
      return true;
    }
  return false;
}

int BlockColumns(WeightType type) {
  return type == WeightType::kQ8_0 || type == WeightType::kQ4_0 ? kBlock : 1;
}

size_t RowBytes(WeightType type, int64_t cols) {
  CheckCols(type, cols);
  const auto c = static_cast<size_t>(cols);
  switch (type) {
    case WeightType::kF32: return c * 4;
    case WeightType::kF16:
    case WeightType::kBF16: return c * 2;
    case WeightType::kQ8_0: return c / kBlock * sizeof(BlockQ8_0);
    case WeightType::kQ4_0: return c / kBlock * sizeof(BlockQ4_0);
  }
  return 0;
}

void QuantizeRows(WeightType type, const float* src, void* dst, int64_t rows, int64_t cols) {
  CheckCols(type, cols);
  const int64_t count = rows * cols;
  switch (type) {
    case WeightType::kF32:
      std::memcpy(dst, src, static_cast<size_t>(count) * 4);
      return;
    case WeightType::kF16: {
      auto* out = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < count; ++i) out[i] = internal::FloatToHalf(src[i]);
      return;
    }
    case WeightType::kBF16: {
      auto* out = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < count; ++i) out[i] = internal::FloatToBf16(src[i]);
      return;
    }
    case WeightType::kQ8_0:  // rows are whole blocks, so the rows are one run of blocks
      QuantizeQ8_0(src, static_cast<BlockQ8_0*>(dst), count / kBlock);
      return;
    case WeightType::kQ4_0:
      QuantizeQ4_0(src, static_cast<BlockQ4_0*>(dst), count / kBlock);
      return;
  }
}

void DequantizeRows(WeightType type, const void* src, float* dst, int64_t rows, int64_t cols) {
  CheckCols(type, cols);
  const int64_t count = rows * cols;
  switch (type) {
    case WeightType::kF32:
      std::memcpy(dst, src, static_cast<size_t>(count) * 4);
      return;
    case WeightType::kF16: {
      const auto* in = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < count; ++i) dst[i] = internal::HalfToFloat(in[i]);
      return;
    }
    case WeightType::kBF16: {
      const auto* in = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < count; ++i) dst[i] = internal::Bf16ToFloat(in[i]);
      return;
    }
    case WeightType::kQ8_0: {
      const auto* in = static_cast<const BlockQ8_0*>(src);
      for (int64_t i = 0; i < count / kBlock; ++i) {
        const float d = internal::HalfToFloat(in[i].d);
        for (int j = 0; j < kBlock; ++j) dst[i * kBlock + j] = d * in[i].qs[j];
      }
      return;
    }
    case WeightType::kQ4_0: {
      const auto* in = static_cast<const BlockQ4_0*>(src);
      for (int64_t i = 0; i < count / kBlock; ++i) {
        const float d = internal::HalfToFloat(in[i].d);
        for (int j = 0; j < kBlock / 2; ++j) {
          dst[i * kBlock + j] = d * ((in[i].qs[j] & 0x0f) - 8);
          dst[i * kBlock + j + kBlock / 2] = d * ((in[i].qs[j] >> 4) - 8);
        }
      }
      return;
    }
  }
}

}  // namespace stave::quant
