// Pre-tokenization: splitting text into the words BPE merges within, by a sequence of regexes
// (PCRE2, UTF + Unicode properties). Each regex splits every piece the previous one produced into
// its matches and the text between them, which is how llama.cpp applies its per-model regex lists
// (unicode_regex_split) and how Hugging Face's Split pre-tokenizer with behavior "Isolated" works.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace stave::text {

class PreTokenizer {
 public:
  struct Step {
    std::string pattern;
    // Isolated: matches and the gaps between them are pieces. Removed: only the gaps are (HF's
    // Split with behavior "Removed", e.g. splitting on whitespace).
    bool drop_matches = false;
  };

  // Compiles the patterns; an error names `source` and the pattern. `\s` and `\S` mean Unicode
  // White_Space as in Rust's regex crate and llama.cpp's tables (PCRE2's own `\s` misses U+0085).
  static absl::StatusOr<PreTokenizer> Create(std::vector<Step> steps, std::string_view source);

  // The pieces of `text` in order, viewing `text`; their concatenation is `text` unless a step
  // drops matches. Ill-formed UTF-8 never matches a pattern, so it ends up in gap pieces.
  std::vector<std::string_view> Split(std::string_view text) const;

  bool empty() const { return steps_.empty(); }

  PreTokenizer(PreTokenizer&&) noexcept;
  PreTokenizer& operator=(PreTokenizer&&) noexcept;
  ~PreTokenizer();

 private:
  struct Compiled;
  PreTokenizer();
  std::vector<std::unique_ptr<Compiled>> steps_;
};

// The regexes llama.cpp uses for a GGUF's tokenizer.ggml.pre (llama-vocab.cpp), and whether a
// word that is a whole token skips the merges (llama.cpp's ignore_merges, set for Llama 3).
struct GgufPreTokenizerSpec {
  std::vector<std::string> regexes;
  bool ignore_merges = false;
};
// NotFound naming `pre` when stave does not know it.
absl::StatusOr<GgufPreTokenizerSpec> GgufPreTokenizer(std::string_view pre);

// GPT-2's regex, which HF's ByteLevel pre-tokenizer applies when use_regex is true.
extern const char kGpt2Regex[];

}  // namespace stave::text
