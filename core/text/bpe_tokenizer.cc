#include "core/text/bpe_tokenizer.h"

#include "absl/strings/str_cat.h"
#include "core/text/byte_level.h"
#include "core/text/sv.h"

namespace stave::text {

BpeTokenizer::BpeTokenizer(Vocab vocab, BpeMerges merges, PreTokenizer pre, BpeOptions options)
    : vocab_(std::move(vocab)),
      merges_(std::move(merges)),
      pre_(std::move(pre)),
      options_(options) {}

absl::StatusOr<std::unique_ptr<BpeTokenizer>> BpeTokenizer::Create(
    Vocab vocab, BpeMerges merges, PreTokenizer pre, std::vector<VerbatimToken> verbatim,
    BpeOptions options, std::string_view source) {
  for (auto [name, id] : {std::pair<const char*, int>{"BOS", options.bos_id}, {"EOS", options.eos_id}})
    if (id != -1 && !vocab.valid(id))
      return absl::InvalidArgumentError(absl::StrCat(Sv(source), ": ", name, " id ", id,
                                                     " is outside the vocabulary of ",
                                                     vocab.size(), " tokens"));
  for (const VerbatimToken& t : verbatim)
    if (!vocab.valid(t.id))
      return absl::InvalidArgumentError(
          absl::StrCat(Sv(source), ": token \"", t.text, "\" has id ", t.id, ", outside the vocabulary"));
  auto tok = std::unique_ptr<BpeTokenizer>(
      new BpeTokenizer(std::move(vocab), std::move(merges), std::move(pre), options));
  tok->verbatim_ = std::move(verbatim);
  SortVerbatimTokens(&tok->verbatim_);
  return tok;
}

std::vector<int> BpeTokenizer::Encode(std::string_view text, bool add_bos) const {
  std::vector<int> out;
  if (add_bos && options_.bos_id >= 0) out.push_back(options_.bos_id);
  std::string run;
  for (const Fragment& f : PartitionVerbatim(text, verbatim_)) {
    if (f.token >= 0) {
      out.push_back(f.token);
      continue;
    }
    std::string_view raw = f.text;
    if (options_.add_prefix_space && raw.front() != ' ') {
      run = absl::StrCat(" ", Sv(raw));
      raw = run;
    }
    for (std::string_view word : pre_.Split(raw))
      merges_.Encode(vocab_, ByteLevelEncode(word), options_.ignore_merges, &out);
  }
  return out;
}

std::string BpeTokenizer::DecodeToken(int prev_token, int token) const {
  if (!vocab_.valid(token)) return "";
  std::string piece;
  switch (vocab_.type(token)) {
    case TokenType::kNormal:
      piece = ByteLevelDecode(vocab_.text(token));
      break;
    case TokenType::kUserDefined:
      piece = vocab_.text(token);
      break;
    default:
      return "";
  }
  if (options_.add_prefix_space && prev_token == options_.bos_id && prev_token >= 0 &&
      !piece.empty() && piece[0] == ' ')
    piece.erase(0, 1);
  return piece;
}

}  // namespace stave::text
