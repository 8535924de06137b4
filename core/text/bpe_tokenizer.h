// Byte-level BPE tokenizer (GPT-2 family; llama.cpp's `gpt2` vocabularies and Hugging Face
// tokenizer.json with a ByteLevel pre-tokenizer): verbatim tokens are split out first, each text
// run is cut into words by the pre-tokenizer regexes, each word is mapped to the byte-level
// alphabet and BPE-merged. Decoding maps the alphabet back to bytes. Encode and DecodeToken keep
// no state: one tokenizer serves concurrent callers.
#pragma once

#include <memory>
#include <vector>

#include "core/text/bpe.h"
#include "core/text/pretokenizer.h"
#include "core/text/token_partition.h"
#include "core/text/vocab.h"
#include "core/tokenizer.h"

namespace stave::text {

struct BpeOptions {
  int bos_id = -1;  // -1: none (Encode's add_bos adds nothing)
  int eos_id = -1;
  bool ignore_merges = false;
  // HF ByteLevel add_prefix_space: a space before each text run that does not start with one;
  // decoding drops it again right after BOS.
  bool add_prefix_space = false;
};

class BpeTokenizer : public Tokenizer {
 public:
  // `verbatim` tokens are matched in text before pre-tokenization (ids must be in `vocab`).
  static absl::StatusOr<std::unique_ptr<BpeTokenizer>> Create(Vocab vocab, BpeMerges merges,
                                                             PreTokenizer pre,
                                                             std::vector<VerbatimToken> verbatim,
                                                             BpeOptions options,
                                                             std::string_view source);

  std::vector<int> Encode(std::string_view text, bool add_bos) const override;
  // Normal tokens through the byte-level alphabet; user-defined tokens as written; control and
  // other special types as nothing.
  std::string DecodeToken(int prev_token, int token) const override;
  int vocab_size() const override { return vocab_.size(); }
  int bos_id() const override { return options_.bos_id; }
  int eos_id() const override { return options_.eos_id; }

  const Vocab& vocab() const { return vocab_; }

 private:
  BpeTokenizer(Vocab vocab, BpeMerges merges, PreTokenizer pre, BpeOptions options);

  Vocab vocab_;
  BpeMerges merges_;
  PreTokenizer pre_;
  std::vector<VerbatimToken> verbatim_;
  BpeOptions options_;
};

}  // namespace stave::text
