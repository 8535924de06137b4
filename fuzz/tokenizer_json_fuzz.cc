// A Hugging Face tokenizer.json -> LoadHfTokenizerJson, then Encode/Decode as in the GGUF
// tokenizer target. The loader takes a path (it reads through ReadTextFile with a size bound), so
// the input is written to a per-process temporary file first.
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "core/text/gguf_tokenizer.h"
#include "fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path =
      (std::filesystem::temp_directory_path() / ("stave_fuzz_tokenizer_" + std::to_string(getpid()) + ".json"))
          .string();
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
    FUZZ_CHECK(out.good());
  }
  auto tokenizer = stave::LoadHfTokenizerJson(path);
  if (!tokenizer.ok()) return 0;
  const auto& tok = **tokenizer;
  const int vocab = tok.vocab_size();
  FUZZ_CHECK(vocab > 0);
  for (std::string_view text : {std::string_view("Hello world, it's 2024!  \n\tok <|endoftext|>"),
                                std::string_view("\xc3\xa9t\xc3\xa9 \xe4\xb8\xad\xe6\x96\x87 \xf0\x9f\x98\x80"),
                                std::string_view("\xff\xfe\x80 bad\xc3"), std::string_view("")}) {
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
