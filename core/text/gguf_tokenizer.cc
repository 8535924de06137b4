#include "core/text/gguf_tokenizer.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "core/text/bpe_tokenizer.h"
#include "core/text/sv.h"
#include "core/text/spm_vocab_tokenizer.h"

namespace stave {
namespace {

using text::TokenType;

// An optional key: `fallback` when absent, the reader's error (naming file and key) when it has
// the wrong type.
template <typename T, typename Getter>
absl::StatusOr<T> Optional(const gguf::File& file, std::string_view key, T fallback, Getter get) {
  if (file.Find(key) == nullptr) return fallback;
  return get(key);
}

absl::StatusOr<int> TokenId(const gguf::File& file, std::string_view key, int fallback,
                            int vocab_size) {
  auto id = Optional<int64_t>(file, key, fallback, [&](std::string_view k) { return file.GetInt(k); });
  if (!id.ok()) return id.status();
  if (*id < 0 || *id >= vocab_size)
    return absl::InvalidArgumentError(absl::StrCat(file.name(), ": ", text::Sv(key), " is ", *id,
                                                   ", outside the vocabulary of ", vocab_size,
                                                   " tokens"));
  return static_cast<int>(*id);
}

absl::StatusOr<text::Vocab> LoadVocab(const gguf::File& file) {
  auto tokens = file.GetStringArray("tokenizer.ggml.tokens");
  if (!tokens.ok()) return tokens.status();
  const size_t n = tokens->size();
  std::vector<float> scores;
  if (file.Find("tokenizer.ggml.scores") != nullptr) {
    auto s = file.GetFloatArray("tokenizer.ggml.scores");
    if (!s.ok()) return s.status();
    scores = std::move(*s);
    if (scores.size() != n)
      return absl::InvalidArgumentError(absl::StrCat(file.name(), ": tokenizer.ggml.scores has ",
                                                     scores.size(), " entries for ", n, " tokens"));
  }
  std::vector<TokenType> types;
  if (file.Find("tokenizer.ggml.token_type") != nullptr) {
    auto t = file.GetIntArray("tokenizer.ggml.token_type");
    if (!t.ok()) return t.status();
    if (t->size() != n)
      return absl::InvalidArgumentError(absl::StrCat(file.name(),
                                                     ": tokenizer.ggml.token_type has ", t->size(),
                                                     " entries for ", n, " tokens"));
    types.reserve(n);
    // Values outside llama.cpp's enum are "undefined", as llama.cpp reads them.
    for (int64_t v : *t) types.push_back(v >= 0 && v <= 6 ? static_cast<TokenType>(v) : TokenType::kUndefined);
  }
  return text::Vocab::Create(std::move(*tokens), std::move(scores), std::move(types), file.name());
}

absl::StatusOr<std::unique_ptr<Tokenizer>> SpmFromGguf(const gguf::File& file, text::Vocab vocab) {
  text::SpmOptions options;
  auto add_space = Optional<int64_t>(file, "tokenizer.ggml.add_space_prefix", 1,
                                     [&](std::string_view k) { return file.GetInt(k); });
  if (!add_space.ok()) return add_space.status();
  options.add_space_prefix = *add_space != 0;
  auto bos = TokenId(file, "tokenizer.ggml.bos_token_id", 1, vocab.size());
  if (!bos.ok()) return bos.status();
  auto eos = TokenId(file, "tokenizer.ggml.eos_token_id", 2, vocab.size());
  if (!eos.ok()) return eos.status();
  auto unk = TokenId(file, "tokenizer.ggml.unknown_token_id", 0, vocab.size());
  if (!unk.ok()) return unk.status();
  options.bos_id = *bos;
  options.eos_id = *eos;
  options.unk_id = *unk;
  // llama.cpp marks Phi-3's special tokens RSTRIP by the model's name (there is no GGUF key).
  auto name = Optional<std::string>(file, "general.name", "",
                                    [&](std::string_view k) { return file.GetString(k); });
  if (!name.ok()) return name.status();
  const std::string lower = absl::AsciiStrToLower(*name);
  options.rstrip_user_defined =
      lower.find("phi-3") != std::string::npos || lower.find("phi3") != std::string::npos;
  auto tok = text::SpmVocabTokenizer::Create(std::move(vocab), options, file.name());
  if (!tok.ok()) return tok.status();
  return std::unique_ptr<Tokenizer>(std::move(*tok));
}

absl::StatusOr<std::unique_ptr<Tokenizer>> BpeFromGguf(const gguf::File& file, text::Vocab vocab) {
  auto merge_strings = file.GetStringArray("tokenizer.ggml.merges");
  if (!merge_strings.ok()) return merge_strings.status();
  std::vector<std::pair<std::string, std::string>> merges(merge_strings->size());
  for (size_t i = 0; i < merges.size(); ++i)
    if (!text::SplitMergeString((*merge_strings)[i], &merges[i]))
      return absl::InvalidArgumentError(absl::StrCat(file.name(), ": tokenizer.ggml.merges[", i,
                                                     "] (\"", (*merge_strings)[i],
                                                     "\") is not two tokens separated by a space"));
  auto bpe = text::BpeMerges::Create(vocab, merges,
                                     absl::StrCat(file.name(), ": tokenizer.ggml.merges"));
  if (!bpe.ok()) return bpe.status();

  // Without a `pre`, llama.cpp uses its default regexes (and warns that quality suffers).
  auto pre_name = Optional<std::string>(file, "tokenizer.ggml.pre", "default",
                                        [&](std::string_view k) { return file.GetString(k); });
  if (!pre_name.ok()) return pre_name.status();
  auto spec = text::GgufPreTokenizer(*pre_name);
  if (!spec.ok())
    return absl::InvalidArgumentError(absl::StrCat(file.name(), ": tokenizer.ggml.pre: ",
                                                   spec.status().message(),
                                                   " (stave knows llama.cpp's: default, gpt-2, "
                                                   "llama3/llama-bpe, qwen2, deepseek-llm, ...)"));
  std::vector<text::PreTokenizer::Step> steps;
  for (const std::string& r : spec->regexes) steps.push_back({r, false});
  auto pre = text::PreTokenizer::Create(std::move(steps), file.name());
  if (!pre.ok()) return pre.status();

  text::BpeOptions options;
  options.ignore_merges = spec->ignore_merges;
  // llama.cpp's defaults for gpt2 vocabularies are 11 and 11; every converted file sets both.
  auto bos = TokenId(file, "tokenizer.ggml.bos_token_id", std::min(11, vocab.size() - 1), vocab.size());
  if (!bos.ok()) return bos.status();
  auto eos = TokenId(file, "tokenizer.ggml.eos_token_id", std::min(11, vocab.size() - 1), vocab.size());
  if (!eos.ok()) return eos.status();
  options.bos_id = *bos;
  options.eos_id = *eos;
  // User-defined tokens are matched in text; control tokens are not parsed from text.
  std::vector<text::VerbatimToken> verbatim;
  for (int id = 0; id < vocab.size(); ++id)
    if (vocab.type(id) == TokenType::kUserDefined) verbatim.push_back({vocab.text(id), id});
  auto tok = text::BpeTokenizer::Create(std::move(vocab), std::move(*bpe), std::move(*pre),
                                        std::move(verbatim), options, file.name());
  if (!tok.ok()) return tok.status();
  return std::unique_ptr<Tokenizer>(std::move(*tok));
}

}  // namespace

absl::StatusOr<std::unique_ptr<Tokenizer>> TokenizerFromGguf(const gguf::File& file) {
  auto model = file.GetString("tokenizer.ggml.model");
  if (!model.ok()) return model.status();
  if (*model != "llama" && *model != "gpt2")
    return absl::InvalidArgumentError(absl::StrCat(
        file.name(), ": tokenizer.ggml.model is \"", *model,
        "\"; stave reads \"llama\" (SentencePiece-style) and \"gpt2\" (byte-level BPE)"));
  auto vocab = LoadVocab(file);
  if (!vocab.ok()) return vocab.status();
  return *model == "llama" ? SpmFromGguf(file, std::move(*vocab)) : BpeFromGguf(file, std::move(*vocab));
}

}  // namespace stave
