// Byte-pair encoding of one pre-tokenized word by ranked merges (GPT-2 style): start from the
// word's code points, repeatedly merge the adjacent pair with the lowest merge rank (the leftmost
// among equal ranks) until no pair has a merge. Heap over a linked list of symbols:
// O(n log n) per word, so a megabyte of one repeated letter (one huge word) stays fast.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "core/text/vocab.h"

namespace stave::text {

class BpeMerges {
 public:
  // Merge i (rank i) joins tokens `merges[i].first` and `.second` into the token of their
  // concatenation; all three must be in `vocab` (an error naming `source` and the merge
  // otherwise). A repeated pair keeps its first (lowest) rank.
  static absl::StatusOr<BpeMerges> Create(const Vocab& vocab,
                                          const std::vector<std::pair<std::string, std::string>>& merges,
                                          std::string_view source);

  // Appends the ids of `word` (text in the vocabulary's alphabet). With ignore_merges a word that
  // is itself a token is that token (llama.cpp's and HF's ignore_merges, Llama 3). Code points
  // that are no token become the tokens of their single bytes, where those exist (llama.cpp).
  void Encode(const Vocab& vocab, std::string_view word, bool ignore_merges,
              std::vector<int>* out) const;

  size_t size() const { return merges_.size(); }

 private:
  struct Merge {
    int rank;
    int merged;
  };
  static uint64_t Key(int left, int right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
  }
  absl::flat_hash_map<uint64_t, Merge> merges_;
};

// "a b" (GGUF's tokenizer.ggml.merges, tokenizer.json's string form) split at the first space
// after the first byte, as llama.cpp does; false when there is none.
bool SplitMergeString(std::string_view merge, std::pair<std::string, std::string>* out);

}  // namespace stave::text
