// Text <-> token ids. Two implementations: llama2.c's tokenizer.bin (a byte-exact port of the
// reference runner's encoder/decoder) and SentencePiece models through libsentencepiece.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace stave {

// One entry of a SentencePiece-style vocabulary as GGUF stores it (tokenizer.ggml.tokens /
// scores / token_type): spaces as U+2581, byte tokens as <0xXX>.
struct VocabularyEntry {
  enum Type { kNormal = 1, kUnknown = 2, kControl = 3, kByte = 6 };
  std::string piece;
  float score = 0;
  int type = kNormal;
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  // Token ids for `text`, preceded by BOS when add_bos.
  virtual std::vector<int> Encode(std::string_view text, bool add_bos) const = 0;
  // The bytes `token` stands for when it follows `prev_token` (a leading space is dropped right
  // after BOS, as both references do). Byte-fallback tokens give raw bytes, which may be partial
  // UTF-8 sequences.
  virtual std::string DecodeToken(int prev_token, int token) const = 0;
  virtual int vocab_size() const = 0;
  virtual int bos_id() const { return 1; }
  // The vocabulary for writing it into a GGUF file (`stave convert --quantize`); empty when this
  // tokenizer is not SentencePiece-style.
  virtual std::vector<VocabularyEntry> SentencePieceVocabulary() const { return {}; }
  // The end-of-sequence token a model stops on (GGUF's tokenizer.ggml.eos_token_id; 2 for the
  // llama2.c and SentencePiece vocabularies, which keep Llama's layout).
  virtual int eos_id() const { return 2; }

  // Concatenated DecodeToken over `tokens`, the first following `prev_token`. (Inline so that
  // tokenizer libraries need no .cc of the core.)
  std::string Decode(std::span<const int> tokens, int prev_token) const {
    std::string out;
    for (int t : tokens) {
      out += DecodeToken(prev_token, t);
      prev_token = t;
    }
    return out;
  }
};

// Picks the implementation by content: SentencePiece model protos vs llama2.c tokenizer.bin.
// expected_vocab > 0 checks the size against the model's.
absl::StatusOr<std::unique_ptr<Tokenizer>> LoadTokenizer(const std::string& path,
                                                         int expected_vocab = 0);

}  // namespace stave
