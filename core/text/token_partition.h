// Splitting text at tokens that are matched verbatim before any pre-tokenization: llama.cpp's
// user-defined (and, when parsing special tokens, control) tokens, Hugging Face's added_tokens.
// Longer tokens are matched first, as llama.cpp's tokenizer_st_partition does.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace stave::text {

struct VerbatimToken {
  std::string text;
  int id = -1;
  bool lstrip = false;  // ASCII whitespace just before a match is dropped
  bool rstrip = false;  // ASCII whitespace just after a match is dropped
};

struct Fragment {
  std::string_view text;  // raw text to tokenize, when token < 0
  int token = -1;
};

// Sorts longest first (stable, so equal lengths keep the caller's order).
void SortVerbatimTokens(std::vector<VerbatimToken>* tokens);

// `text` as raw fragments and matched tokens, in order (no empty raw fragments). `tokens` must
// be sorted with SortVerbatimTokens.
std::vector<Fragment> PartitionVerbatim(std::string_view text,
                                        const std::vector<VerbatimToken>& tokens);

}  // namespace stave::text
