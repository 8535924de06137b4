#include "core/linear.h"

#include <torch/torch.h>

#include "core/small_batch_matmul.h"

namespace stave {
namespace {

// Decode-sized products on CPU (2..64 rows: the streams of a batched step and their bucket
// branches) go to the small-batch kernel, which reads the weights once for all rows; OpenBLAS
// GEMM is slower at these sizes (small_batch_matmul.h has the figures).
bool UseSmallBatchKernel(const at::Tensor& x, const at::Tensor& w) {
  return x.size(0) > 1 && x.size(0) <= kernels::kSmallBatchMaxRows && x.is_cpu() &&
         x.is_contiguous() && w.is_contiguous() && x.scalar_type() == at::kFloat;
}

// Packed weights on CPU: the quant kernels handle every row count (matrix-vector, small batch,
// GEMM). Not while autograd records: the kernels have no backward, the dequantized copy does.
// Non-contiguous inputs are made contiguous by the callers (a copy of activations is cheap next
// to dequantizing the weights).
bool UsePackedKernel(const at::Tensor& x, const Weight& w) {
  return x.is_cpu() && w.data.is_cpu() && x.scalar_type() == at::kFloat &&
         !(at::GradMode::is_enabled() && x.requires_grad());
}

}  // namespace

// The residual stream is kept as [rows, dim] (rows = batch x tokens) so projections are a single
// matrix-vector product in decode (one row) and a GEMM otherwise. Small models are bound by
// per-op overhead, so each helper uses as few LibTorch ops as it can.

at::Tensor RmsNorm(const at::Tensor& x, const at::Tensor& weight, double eps) {
  // Out of place while autograd records a trained gain (lab/llama_training): mul_ would overwrite
  // the product its gradient needs. Same operations in the same order either way.
  if (at::GradMode::is_enabled() && weight.requires_grad())
    return x * (x.square().mean(-1, /*keepdim=*/true) + eps).rsqrt() * weight;
  auto inv_rms = x.square().mean(-1, /*keepdim=*/true).add_(eps).rsqrt_();
  return (x * inv_rms).mul_(weight);
}

// y = x W^T. A single row goes through matrix-vector: measured ~2.5x faster than a one-row GEMM
// with LibTorch 1.13 + OpenBLAS, and decode is nothing but weight reading.
at::Tensor Linear(const at::Tensor& x, const at::Tensor& w) {
  if (x.size(0) == 1) return at::mv(w, x.view(-1)).view({1, -1});
  if (UseSmallBatchKernel(x, w)) {
    auto y = at::empty({x.size(0), w.size(0)}, x.options());
    kernels::SmallBatchMatmul(x.data_ptr<float>(), w.data_ptr<float>(), y.data_ptr<float>(),
                              x.size(0), w.size(0), w.size(1), /*accumulate=*/false);
    return y;
  }
  return at::mm(x, w.t());
}

// x += y W^T, in place (the residual connection fused into the projection). While autograd
// records (router training), out of place: the old x is still needed for the backward pass.
void AddLinear_(at::Tensor& x, const at::Tensor& y, const at::Tensor& w) {
  if (at::GradMode::is_enabled() && (x.requires_grad() || y.requires_grad())) {
    x = x.addmm(y, w.t());
  } else if (x.size(0) == 1) {
    x.view(-1).addmv_(w, y.view(-1));
  } else if (UseSmallBatchKernel(y, w) && x.is_contiguous()) {
    kernels::SmallBatchMatmul(y.data_ptr<float>(), w.data_ptr<float>(), x.data_ptr<float>(),
                              y.size(0), w.size(0), w.size(1), /*accumulate=*/true);
  } else {
    x.addmm_(y, w.t());
  }
}

at::Tensor Linear(const at::Tensor& x, const Weight& w) {
  if (!w.packed()) return Linear(x, w.data);
  if (!UsePackedKernel(x, w)) return Linear(x, Dequantize(w));
  const at::Tensor in = x.contiguous();
  auto y = at::empty({in.size(0), w.rows()}, in.options());
  quant::Matmul(w.type, w.data.data_ptr<uint8_t>(), w.rows(), w.cols, in.data_ptr<float>(), in.size(0),
                y.data_ptr<float>(), /*accumulate=*/false);
  return y;
}

void AddLinear_(at::Tensor& x, const at::Tensor& y, const Weight& w) {
  if (!w.packed()) return AddLinear_(x, y, w.data);
  if (!UsePackedKernel(y, w) || !x.is_contiguous() ||
      (at::GradMode::is_enabled() && x.requires_grad())) {
    return AddLinear_(x, y, Dequantize(w));
  }
  const at::Tensor in = y.contiguous();
  quant::Matmul(w.type, w.data.data_ptr<uint8_t>(), w.rows(), w.cols, in.data_ptr<float>(), in.size(0),
                x.data_ptr<float>(), /*accumulate=*/true);
}

}  // namespace stave
