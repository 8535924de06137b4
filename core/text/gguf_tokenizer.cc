#include "core/text/gguf_tokenizer.h"

// Placeholder until the tokenizer work lands (branch wip-tok replaces this file).
namespace stave {
absl::StatusOr<std::unique_ptr<Tokenizer>> TokenizerFromGguf(const gguf::File& file) {
  return absl::UnimplementedError(file.name() + ": GGUF tokenizers are not implemented yet; pass --tokenizer");
}
absl::StatusOr<std::unique_ptr<Tokenizer>> LoadHfTokenizerJson(const std::string& path) {
  return absl::UnimplementedError(path + ": tokenizer.json is not implemented yet");
}
}  // namespace stave
