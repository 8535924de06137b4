// A GGUF file's tokenizer metadata -> TokenizerFromGguf, then Encode and Decode of text: the
// tokenizer built from a hostile vocabulary (empty tokens, bad merges, out-of-range ids) must
// refuse it with a Status or tokenize without crashing, every id inside the vocabulary.
#include <cstdint>
#include <string>
#include <string_view>

#include "core/formats/gguf.h"
#include "core/text/gguf_tokenizer.h"
#include "fuzz/exercise_tokenizer.h"
#include "fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto file = stave::gguf::File::Parse(data, size, "fuzz.gguf");
  if (!file.ok()) return 0;
  auto tokenizer = stave::TokenizerFromGguf(**file);
  if (!tokenizer.ok()) return 0;
  // The last bytes of the input itself as extra text, so the fuzzer can steer the text too.
  const std::string_view tail(reinterpret_cast<const char*>(data) + (size > 64 ? size - 64 : 0),
                              size > 64 ? 64 : size);
  ExerciseTokenizer(**tokenizer, tail);
  return 0;
}
