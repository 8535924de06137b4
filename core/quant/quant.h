// Weight storage types below fp32 and the products that compute with them natively: GGUF/ggml's
// block formats Q8_0 and Q4_0 (32 weights per block with one fp16 scale) and the 16-bit floats
// BF16 and F16, laid out exactly as in GGUF files so that a mapped file is used in place.
// Activations are fp32 at the interface; see quant_matmul.cc for what the kernels do inside.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace stave::quant {

enum class WeightType { kF32, kF16, kBF16, kQ8_0, kQ4_0 };

const char* WeightTypeName(WeightType type);  // "f32", "f16", "bf16", "q8_0", "q4_0"
// The type WeightTypeName names; false for any other name.
bool WeightTypeFromName(std::string_view name, WeightType* type);

// Columns per block (1 for the float types, 32 for Q8_0/Q4_0); a row's length must be a multiple.
int BlockColumns(WeightType type);
// Bytes of one row of `cols` weights (cols a multiple of BlockColumns).
size_t RowBytes(WeightType type, int64_t cols);

// fp32 -> type (round to nearest; Q8_0/Q4_0 as llama.cpp's reference quantizers), and back.
void QuantizeRows(WeightType type, const float* src, void* dst, int64_t rows, int64_t cols);
void DequantizeRows(WeightType type, const void* src, float* dst, int64_t rows, int64_t cols);

// out[r, i] = sum_k x[r, k] * W[i, k] (or += with accumulate) for W [n, d] stored as `type`
// (RowBytes(type, d) bytes per row), x [rows, d] and out [rows, n] contiguous fp32. Any rows >= 1:
// one row is the decode matrix-vector product, a few rows the batched engine's step, many rows
// prefill. Runs on LibTorch's intra-op threads; picks AVX-512 (VNNI/BF16 where present), AVX2 or
// portable code by the CPU at run time. d must be a positive multiple of BlockColumns(type)
// (std::invalid_argument otherwise, as RowBytes/QuantizeRows/DequantizeRows for cols); n or
// rows of 0 do nothing. Q8_0/Q4_0 round the activations to int8 per block of 32 inside (as
// llama.cpp does), and BF16 with 16 rows or more on AVX512_BF16 CPUs rounds them to bf16, so
// those products carry that rounding besides the weights' own; the others use fp32 activations.
void Matmul(WeightType type, const void* w, int64_t n, int64_t d, const float* x, int64_t rows,
            float* out, bool accumulate);

}  // namespace stave::quant
