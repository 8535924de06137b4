#include "core/text/token_partition.h"

#include <algorithm>
#include <cctype>

namespace stave::text {

void SortVerbatimTokens(std::vector<VerbatimToken>* tokens) {
  std::stable_sort(tokens->begin(), tokens->end(),
                   [](const VerbatimToken& a, const VerbatimToken& b) {
                     return a.text.size() > b.text.size();
                   });
}

std::vector<Fragment> PartitionVerbatim(std::string_view text,
                                        const std::vector<VerbatimToken>& tokens) {
  std::vector<Fragment> fragments;
  if (text.empty()) return fragments;
  fragments.push_back({text, -1});
  auto space = [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; };
  std::vector<Fragment> next;
  // One pass per token over the raw fragments left by the longer ones.
  for (const VerbatimToken& token : tokens) {
    if (token.text.empty()) continue;
    next.clear();
    bool found = false;
    for (const Fragment& f : fragments) {
      if (f.token >= 0) {
        next.push_back(f);
        continue;
      }
      std::string_view rest = f.text;
      size_t at;
      while ((at = rest.find(token.text)) != std::string_view::npos) {
        found = true;
        std::string_view left = rest.substr(0, at);
        if (token.lstrip)
          while (!left.empty() && space(left.back())) left.remove_suffix(1);
        if (!left.empty()) next.push_back({left, -1});
        next.push_back({{}, token.id});
        rest = rest.substr(at + token.text.size());
        if (token.rstrip)
          while (!rest.empty() && space(rest.front())) rest.remove_prefix(1);
      }
      if (!rest.empty()) next.push_back({rest, -1});
    }
    if (found) fragments.swap(next);
  }
  return fragments;
}

}  // namespace stave::text
