// llama.cpp's SentencePiece-style tokenizer (llm_tokenizer_spm) over a GGUF `llama` vocabulary:
// spaces become U+2581, a space is prepended to each text run that starts the input or follows
// a verbatim token (add_space_prefix), code points are merged pairwise by the score of the token
// they form (highest first, leftmost among equals), and symbols that are no token become
// <0xXX> byte tokens. User-defined tokens are matched verbatim in the text first; control
// tokens are not parsed from text (a prompt cannot inject <s>). Stateless after Create: one
// tokenizer serves concurrent callers.
#pragma once

#include <memory>
#include <vector>

#include "core/text/token_partition.h"
#include "core/text/vocab.h"
#include "core/tokenizer.h"

namespace stave::text {

struct SpmOptions {
  bool add_space_prefix = true;
  int bos_id = 1;
  int eos_id = 2;
  int unk_id = 0;
  // Whitespace after these user-defined tokens is dropped (llama.cpp's RSTRIP attribute, which
  // it sets for Phi-3 vocabularies).
  bool rstrip_user_defined = false;
};

class SpmVocabTokenizer : public Tokenizer {
 public:
  // The ids in `options` must be in the vocabulary.
  static absl::StatusOr<std::unique_ptr<SpmVocabTokenizer>> Create(Vocab vocab, SpmOptions options,
                                                                   std::string_view source);

  std::vector<int> Encode(std::string_view text, bool add_bos) const override;
  // Control, unknown, unused and undefined tokens decode to nothing; U+2581 to spaces; byte
  // tokens to their byte; the leading space of a token right after BOS is dropped when
  // add_space_prefix added it.
  std::string DecodeToken(int prev_token, int token) const override;
  int vocab_size() const override { return vocab_.size(); }
  int bos_id() const override { return options_.bos_id; }
  int eos_id() const override { return options_.eos_id; }
  // Pieces, scores and token types as GGUF stores them (so `stave convert` can write them back).
  std::vector<VocabularyEntry> SentencePieceVocabulary() const override;

  const Vocab& vocab() const { return vocab_; }

 private:
  SpmVocabTokenizer(Vocab vocab, SpmOptions options);
  void EncodeRun(std::string_view text, std::vector<int>* out) const;
  int ByteToken(unsigned char byte) const;

  Vocab vocab_;
  SpmOptions options_;
  std::vector<VerbatimToken> verbatim_;
  int byte_tokens_[256];
};

}  // namespace stave::text
