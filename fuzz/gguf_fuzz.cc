// gguf::File::Parse on arbitrary bytes, then every typed accessor on every key and every tensor's
// data range: a malformed file must be an error, never a crash or a read outside the bytes.
#include <cstdint>
#include <string>

#include "core/formats/gguf.h"
#include "fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto file = stave::gguf::File::Parse(data, size, "fuzz.gguf");
  if (!file.ok()) return 0;
  const auto& f = **file;
  for (const auto& [key, value] : f.metadata()) {
    FUZZ_CHECK(f.Find(key) != nullptr);
    // Results do not matter, only that each accessor answers with a value or a Status.
    (void)f.GetInt(key);
    (void)f.GetFloat(key);
    (void)f.GetString(key);
    (void)f.GetStringArray(key);
    (void)f.GetFloatArray(key);
    (void)f.GetIntArray(key);
  }
  for (const auto& t : f.tensors()) {
    FUZZ_CHECK(f.FindTensor(t.name) != nullptr);
    FUZZ_CHECK(t.data >= data && t.bytes <= size && t.data - data <= static_cast<ptrdiff_t>(size - t.bytes));
    FUZZ_CHECK(t.elements() >= 0);
    (void)stave::gguf::TensorTypeName(t.type);
    // Touch the first and last byte: ASan flags a range that is not inside the input.
    if (t.bytes > 0) {
      volatile unsigned char first = t.data[0], last = t.data[t.bytes - 1];
      (void)first;
      (void)last;
    }
  }
  return 0;
}
