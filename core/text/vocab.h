// A tokenizer vocabulary: token texts by id, their scores and types (llama.cpp's token types, as
// GGUF's tokenizer.ggml.token_type stores them), and the text -> id index. Shared by the
// SentencePiece-style and the byte-level BPE tokenizers.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "core/text/sv.h"

namespace stave::text {

// Values as stored in GGUF (llama.cpp's llama_token_type).
enum class TokenType : int {
  kUndefined = 0,
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6,
};

class Vocab {
 public:
  // `texts` by id; `scores` and `types` may be empty (0 and kNormal) or must have one entry per
  // token. `source` names the file in errors. Empty texts become "[EMPTY_<id>]" and, when a text
  // repeats, the last id wins the text -> id index: both as llama.cpp loads vocabularies.
  static absl::StatusOr<Vocab> Create(std::vector<std::string> texts, std::vector<float> scores,
                                      std::vector<TokenType> types, std::string_view source);

  int size() const { return static_cast<int>(texts_.size()); }
  // -1 when `text` is no token.
  int Find(std::string_view text) const {
    auto it = ids_.find(Sv(text));
    return it == ids_.end() ? -1 : it->second;
  }
  const std::string& text(int id) const { return texts_[id]; }
  float score(int id) const { return scores_[id]; }
  TokenType type(int id) const { return types_[id]; }
  bool valid(int id) const { return id >= 0 && id < size(); }

 private:
  std::vector<std::string> texts_;
  std::vector<float> scores_;
  std::vector<TokenType> types_;
  absl::flat_hash_map<std::string, int> ids_;
};

}  // namespace stave::text
