#include "core/weight.h"

#include <torch/torch.h>

namespace stave {

at::Tensor Dequantize(const Weight& w) {
  using quant::WeightType;
  const int64_t rows = w.rows();
  switch (w.type) {
    case WeightType::kF32:
      return w.data;
    case WeightType::kF16:
      return w.data.view(at::kHalf).to(at::kFloat).view({rows, w.cols});
    case WeightType::kBF16:
      return w.data.view(at::kBFloat16).to(at::kFloat).view({rows, w.cols});
    case WeightType::kQ8_0: {
      // Blocks of 34 bytes: fp16 scale d, then 32 int8 q; value = d * q.
      auto blocks = w.data.view({rows, w.cols / 32, 34});
      auto d = blocks.narrow(2, 0, 2).contiguous().view(at::kHalf).to(at::kFloat);  // [rows, nb, 1]
      auto q = blocks.narrow(2, 2, 32).contiguous().view(at::kChar).to(at::kFloat);
      return (q * d).view({rows, w.cols});
    }
    case WeightType::kQ4_0: {
      // Blocks of 18 bytes: fp16 scale d, then 16 bytes; element j is the low nibble of byte j,
      // element j + 16 its high nibble; value = d * (nibble - 8).
      auto blocks = w.data.view({rows, w.cols / 32, 18});
      auto d = blocks.narrow(2, 0, 2).contiguous().view(at::kHalf).to(at::kFloat);
      auto qs = blocks.narrow(2, 2, 16).to(at::kInt);
      auto q = at::cat({qs.bitwise_and(15), qs.bitwise_right_shift(4)}, 2).to(at::kFloat).sub_(8);
      return (q * d).view({rows, w.cols});
    }
  }
  return w.data;
}

at::Tensor EmbeddingRows(const Weight& table, const at::Tensor& ids) {
  if (!table.packed()) return table.data.index_select(0, ids);
  if (table.data.is_cpu()) {
    // Only the looked-up rows are converted (the table is as large as the classifier).
    auto cpu_ids = ids.to(at::kLong).contiguous();
    auto out = at::empty({cpu_ids.size(0), table.cols}, at::kFloat);
    const int64_t row_bytes = table.data.size(1);
    const auto* bytes = table.data.data_ptr<uint8_t>();
    const int64_t* id = cpu_ids.data_ptr<int64_t>();
    for (int64_t r = 0; r < cpu_ids.size(0); ++r) {
      TORCH_CHECK(id[r] >= 0 && id[r] < table.rows(), "token id ", id[r], " outside the vocabulary");
      quant::DequantizeRows(table.type, bytes + id[r] * row_bytes, out.data_ptr<float>() + r * table.cols, 1,
                            table.cols);
    }
    return out;
  }
  Weight rows{table.data.index_select(0, ids), table.type, table.cols};
  return Dequantize(rows);
}

}  // namespace stave
