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

// From tokenizer.ggml.* metadata (model, tokens, scores, token_type, merges, pre, bos/eos ids).
absl::StatusOr<std::unique_ptr<Tokenizer>> TokenizerFromGguf(const gguf::File& file);

// A Hugging Face tokenizer.json with a BPE model (ByteLevel pre-tokenizer, added/special tokens).
absl::StatusOr<std::unique_ptr<Tokenizer>> LoadHfTokenizerJson(const std::string& path);

}  // namespace stave
