// ParseSafetensorsHeader (what SafetensorsFile::Open runs on the mapped file) on arbitrary bytes:
// on success every tensor's byte range must lie inside the data and match its shape exactly,
// which is what LoadFloat relies on when it views the bytes with that shape.
#include <cstdint>

#include "core/safetensors_header.h"
#include "fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto header = stave::ParseSafetensorsHeader(data, size, "fuzz.safetensors");
  if (!header.ok()) return 0;
  for (const auto& [name, e] : header->entries) {
    const size_t dtype_size = stave::SafetensorsDtypeSize(e.dtype);
    FUZZ_CHECK(dtype_size > 0);
    FUZZ_CHECK(e.offset >= 8 && e.offset <= size && e.bytes <= size - e.offset);
    // A zero dimension makes any other dimension fine (an empty tensor, e.g. [2^63-1, 0]);
    // otherwise the product must fit. (First found as a FUZZ_CHECK failure of this target on
    // [9223372036854735808, 0]: regress-huge-dim-times-zero.safetensors.)
    bool empty = false;
    for (int64_t d : e.shape) {
      FUZZ_CHECK(d >= 0);
      empty |= d == 0;
    }
    size_t bytes = dtype_size;
    if (empty) {
      bytes = 0;
    } else {
      for (int64_t d : e.shape) FUZZ_CHECK(!__builtin_mul_overflow(bytes, static_cast<size_t>(d), &bytes));
    }
    FUZZ_CHECK(bytes == e.bytes);
  }
  return 0;
}
