// A projection matrix [rows, cols] as the forward passes use it: fp32 (an at::Tensor), or packed
// in one of GGUF's storage types (F16, BF16, Q8_0, Q4_0), which the CPU kernels of core/quant
// compute with directly; elsewhere (other devices, autograd) it is dequantized with LibTorch ops.
#pragma once

#include <ATen/core/Tensor.h>

#include "core/quant/quant.h"

namespace stave {

struct Weight {
  // fp32 [rows, cols], or the packed rows: uint8 [rows, quant::RowBytes(type, cols)].
  at::Tensor data;
  quant::WeightType type = quant::WeightType::kF32;
  int64_t cols = 0;

  bool packed() const { return type != quant::WeightType::kF32; }
  int64_t rows() const { return data.size(0); }
  static Weight Dense(at::Tensor t) { return Weight{t, quant::WeightType::kF32, t.size(1)}; }
};

// fp32 [rows, cols] of any weight, with LibTorch ops only (runs on every device): the plain path
// beside the CPU kernels, and the reference the kernels are tested against.
at::Tensor Dequantize(const Weight& w);

// fp32 rows `ids` [R] of a (possibly packed) embedding table: [R, cols].
at::Tensor EmbeddingRows(const Weight& table, const at::Tensor& ids);

}  // namespace stave
