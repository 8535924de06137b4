// The matrix products and RMSNorm of the forward passes, with the kernel choice in one place:
// one row -> matrix-vector, a few rows on CPU -> the small-batch kernel, more -> GEMM.
#pragma once

#include <ATen/core/Tensor.h>

#include "core/weight.h"

namespace stave {

at::Tensor RmsNorm(const at::Tensor& x, const at::Tensor& weight, double eps);

// y = x W^T for x [rows, d], w [n, d].
at::Tensor Linear(const at::Tensor& x, const at::Tensor& w);

// x += y W^T, in place (the residual connection fused into the projection); out of place while
// autograd records.
void AddLinear_(at::Tensor& x, const at::Tensor& y, const at::Tensor& w);

// The same for weights of any storage type: packed ones run the core/quant kernels on CPU (no
// fp32 copy of the weights), and are dequantized per call elsewhere or while autograd records.
at::Tensor Linear(const at::Tensor& x, const Weight& w);
void AddLinear_(at::Tensor& x, const at::Tensor& y, const Weight& w);

}  // namespace stave
