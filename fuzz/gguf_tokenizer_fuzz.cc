// A GGUF file's tokenizer metadata -> TokenizerFromGguf, then Encode and Decode of text: the
// tokenizer built from a hostile vocabulary (empty tokens, bad merges, out-of-range ids) must
// refuse it with a Status or tokenize without crashing, every id inside the vocabulary.
#include <cstdint>
#include <string>
#include <string_view>

#include "core/formats/gguf.h"
#include "core/text/gguf_tokenizer.h"
#include "fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto file = stave::gguf::File::Parse(data, size, "fuzz.gguf");
  if (!file.ok()) return 0;
  auto tokenizer = stave::TokenizerFromGguf(**file);
  if (!tokenizer.ok()) return 0;
  const auto& tok = **tokenizer;
  const int vocab = tok.vocab_size();
  FUZZ_CHECK(vocab > 0);
  // Fixed text (ASCII, multi-byte UTF-8, invalid UTF-8, whitespace runs, digits) and the last
  // bytes of the input itself, so the fuzzer can steer the text too.
  const std::string_view tail(reinterpret_cast<const char*>(data) + (size > 64 ? size - 64 : 0),
                              size > 64 ? 64 : size);
  for (std::string_view text : {std::string_view("Hello world, it's 2024!  \n\tok"),
                                std::string_view("\xc3\xa9t\xc3\xa9 \xe4\xb8\xad\xe6\x96\x87 \xf0\x9f\x98\x80"),
                                std::string_view("\xff\xfe\x80 bad\xc3"), std::string_view(""), tail}) {
    for (bool bos : {false, true}) {
      const auto ids = tok.Encode(text, bos);
      int prev = -1;
      for (int id : ids) {
        FUZZ_CHECK(id >= 0 && id < vocab);
        (void)tok.DecodeToken(prev, id);
        prev = id;
      }
    }
  }
  return 0;
}
