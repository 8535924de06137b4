// SentencePiece `tokenizer.model` files through libsentencepiece.
#pragma once

#include <memory>
#include <string>

#include "core/tokenizer.h"

namespace stave {

class SentencePieceShim;

class SentencePieceTokenizer : public Tokenizer {
 public:
  static absl::StatusOr<std::unique_ptr<SentencePieceTokenizer>> Load(const std::string& path);
  ~SentencePieceTokenizer() override;

  std::vector<int> Encode(std::string_view text, bool add_bos) const override;
  std::string DecodeToken(int prev_token, int token) const override;
  int vocab_size() const override;
  int bos_id() const override;
  std::vector<VocabularyEntry> SentencePieceVocabulary() const override;

 private:
  explicit SentencePieceTokenizer(std::unique_ptr<SentencePieceShim> sp);
  std::unique_ptr<SentencePieceShim> sp_;
};

}  // namespace stave
