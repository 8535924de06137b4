// The layout of a llama2.c `.bin` checkpoint (see llama2c_checkpoint.h) from its 7-int32 header,
// without LibTorch: the model config and where each fp32 block lies, checked against the file's
// size. The loader and the fuzz target share it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/model_config.h"

namespace stave {

struct Llama2cBlock {
  std::string name;            // llama2.c's name ("wq", "token_embedding_table", ...)
  std::vector<int64_t> shape;  // fp32 elements
  size_t offset = 0;           // from the start of the file
};

struct Llama2cLayout {
  ModelConfig config;
  std::vector<Llama2cBlock> blocks;  // in file order; they end exactly at the file's end
};

absl::StatusOr<Llama2cLayout> ParseLlama2cLayout(const unsigned char* data, size_t size,
                                                 const std::string& path);

}  // namespace stave
