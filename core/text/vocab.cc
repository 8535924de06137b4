#include "core/text/vocab.h"

#include "absl/strings/str_cat.h"

namespace stave::text {

absl::StatusOr<Vocab> Vocab::Create(std::vector<std::string> texts, std::vector<float> scores,
                                    std::vector<TokenType> types, std::string_view source) {
  const size_t n = texts.size();
  if (n == 0) return absl::InvalidArgumentError(absl::StrCat(Sv(source), ": the vocabulary is empty"));
  if (n > static_cast<size_t>(INT32_MAX))
    return absl::InvalidArgumentError(absl::StrCat(Sv(source), ": ", n, " tokens is too many"));
  if (!scores.empty() && scores.size() != n)
    return absl::InvalidArgumentError(absl::StrCat(Sv(source), ": ", scores.size(), " scores for ", n,
                                                   " tokens"));
  if (!types.empty() && types.size() != n)
    return absl::InvalidArgumentError(absl::StrCat(Sv(source), ": ", types.size(), " token types for ",
                                                   n, " tokens"));
  Vocab v;
  v.texts_ = std::move(texts);
  v.scores_ = scores.empty() ? std::vector<float>(n, 0.0f) : std::move(scores);
  v.types_ = types.empty() ? std::vector<TokenType>(n, TokenType::kNormal) : std::move(types);
  v.ids_.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    if (v.texts_[i].empty()) v.texts_[i] = absl::StrCat("[EMPTY_", i, "]");
    v.ids_[v.texts_[i]] = static_cast<int>(i);
  }
  return v;
}

}  // namespace stave::text
