// ParseLlama2cLayout (the llama2.c loader's header and size checks) on arbitrary bytes: on
// success the config is valid and the blocks tile the file exactly, each shape matching its bytes.
#include <cstdint>

#include "core/llama2c_header.h"
#include "fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto layout = stave::ParseLlama2cLayout(data, size, "fuzz.bin");
  if (!layout.ok()) return 0;
  FUZZ_CHECK(stave::ValidateConfig(layout->config, "fuzz.bin").ok());
  size_t offset = 28;  // the 7-int32 header
  for (const auto& b : layout->blocks) {
    FUZZ_CHECK(b.offset == offset);
    size_t bytes = sizeof(float);
    for (int64_t d : b.shape) {
      FUZZ_CHECK(d > 0);
      FUZZ_CHECK(!__builtin_mul_overflow(bytes, static_cast<size_t>(d), &bytes));
    }
    FUZZ_CHECK(!__builtin_add_overflow(offset, bytes, &offset));
  }
  FUZZ_CHECK(offset == size);
  return 0;
}
