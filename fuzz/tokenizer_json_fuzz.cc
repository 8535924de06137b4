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
#include "fuzz/exercise_tokenizer.h"
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
  ExerciseTokenizer(**tokenizer, std::string_view());
  return 0;
}
