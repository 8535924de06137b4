#include "core/tokenizer.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/formats/gguf.h"
#include "core/llama2c_tokenizer.h"
#include "core/sentencepiece_tokenizer.h"
#include "core/text/gguf_tokenizer.h"

namespace stave {

absl::StatusOr<std::unique_ptr<Tokenizer>> LoadTokenizer(const std::string& path,
                                                         int expected_vocab) {
  // By content or name first (GGUF magic, .json, .bin is llama2.c's format), otherwise try
  // SentencePiece, then llama2.c.
  std::unique_ptr<Tokenizer> tok;
  absl::Status sp_error;
  if (absl::EndsWith(path, ".json")) {
    auto json = LoadHfTokenizerJson(path);
    if (!json.ok()) return json.status();
    tok = *std::move(json);
  } else if (gguf::HasGgufMagic(path)) {
    auto gguf = gguf::File::Open(path);
    if (!gguf.ok()) return gguf.status();
    auto from_gguf = TokenizerFromGguf(**gguf);
    if (!from_gguf.ok()) return from_gguf.status();
    tok = *std::move(from_gguf);
  }
  if (tok == nullptr && !absl::EndsWith(path, ".bin")) {
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
