// llama2.c tokenizer.bin: int32 max_token_length, then per token: float32 score, int32 length,
// bytes. Encoding follows run.c's encode(): a dummy-prefix space, one token per UTF-8 code point
// (or <0xXX> byte tokens, id = byte + 3, when the code point is not in the vocabulary), then
// repeated merging of the adjacent pair whose concatenation has the highest score.
#pragma once

#include <string>
#include <unordered_map>
#include <vector>

#include "core/tokenizer.h"

namespace stave {

class Llama2cTokenizer : public Tokenizer {
 public:
  static absl::StatusOr<std::unique_ptr<Llama2cTokenizer>> Load(const std::string& path);

  std::vector<int> Encode(std::string_view text, bool add_bos) const override;
  std::string DecodeToken(int prev_token, int token) const override;
  int vocab_size() const override { return static_cast<int>(pieces_.size()); }
  std::vector<VocabularyEntry> SentencePieceVocabulary() const override;

 private:
  int Lookup(const std::string& piece) const;
  std::vector<std::string> pieces_;
  std::vector<float> scores_;
  std::unordered_map<std::string, int> ids_;
};

}  // namespace stave
