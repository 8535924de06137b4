// Tokenizers whose vocabulary comes from a GGUF file's metadata or a Hugging Face tokenizer.json:
// `llama` (SentencePiece-style: scores, byte fallback, token types) and `gpt2` (byte-level BPE with
// merges and the pre-tokenizer named by tokenizer.ggml.pre).
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "core/formats/gguf.h"
#include "core/tokenizer.h"

namespace stave {

// From tokenizer.ggml.* metadata (model, tokens, scores, token_type, merges, pre, bos/eos ids,
// add_space_prefix), encoding exactly as llama.cpp does without parse_special: user-defined tokens
// are matched in text, control tokens are not (and decode to nothing). bos_id()/eos_id() are
// tokenizer.ggml.bos_token_id/eos_token_id (llama.cpp's defaults when absent: 1/2 for `llama`,
// 11/11 for `gpt2`). Errors name the file and the key: a missing or mistyped key, a count that
// does not match the tokens, a merge naming an unknown token, an unknown model or pre-tokenizer.
absl::StatusOr<std::unique_ptr<Tokenizer>> TokenizerFromGguf(const gguf::File& file);

// A Hugging Face tokenizer.json with a byte-level BPE model: model.vocab and model.merges ("a b"
// or ["a", "b"]), optional model.ignore_merges; a ByteLevel pre-tokenizer, alone or last in a
// Sequence after Split (Isolated/Removed) or Digits steps; no normalizer or NFC (taken as a
// no-op, as llama.cpp does); added_tokens matched verbatim before pre-tokenization (honouring
// lstrip/rstrip; special ones decode to nothing). BOS comes from the post-processor's template,
// else tokenizer_config.json next to the file, else a special added token with a usual name;
// EOS from tokenizer_config.json, else the usual names; -1 when none is found. Files over 64 MiB
// are refused. Errors name the file and the field.
absl::StatusOr<std::unique_ptr<Tokenizer>> LoadHfTokenizerJson(const std::string& path);

}  // namespace stave
