#include "core/tokenizer.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/llama2c_tokenizer.h"
#include "core/sentencepiece_tokenizer.h"

namespace stave {

absl::StatusOr<std::unique_ptr<Tokenizer>> LoadTokenizer(const std::string& path,
                                                         int expected_vocab) {
  // By name first (.bin is llama2.c's format), otherwise try SentencePiece, then llama2.c.
  std::unique_ptr<Tokenizer> tok;
  absl::Status sp_error;
  if (!absl::EndsWith(path, ".bin")) {
    auto sp = SentencePieceTokenizer::Load(path);
    if (sp.ok()) tok = *std::move(sp);
    else sp_error = sp.status();
  }
  if (tok == nullptr) {
    auto l2 = Llama2cTokenizer::Load(path);
    if (!l2.ok()) {
      if (!sp_error.ok() && absl::IsNotFound(l2.status())) return sp_error;
      return l2.status();
    }
    tok = *std::move(l2);
  }
  if (expected_vocab > 0 && tok->vocab_size() > expected_vocab)
    return absl::InvalidArgumentError(absl::StrCat("tokenizer ", path, " has ", tok->vocab_size(),
                                                   " tokens but the model has ", expected_vocab,
                                                   " (wrong --tokenizer?)"));
  return tok;
}

}  // namespace stave
