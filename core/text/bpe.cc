#include "core/text/bpe.h"

#include <algorithm>
#include <queue>

#include "absl/strings/str_cat.h"
#include "core/text/sv.h"

namespace stave::text {

bool SplitMergeString(std::string_view merge, std::pair<std::string, std::string>* out) {
  const size_t space = merge.find(' ', 1);
  if (space == std::string_view::npos || space + 1 >= merge.size()) return false;
  out->first = std::string(merge.substr(0, space));
  out->second = std::string(merge.substr(space + 1));
  return true;
}

absl::StatusOr<BpeMerges> BpeMerges::Create(
    const Vocab& vocab, const std::vector<std::pair<std::string, std::string>>& merges,
    std::string_view source) {
  BpeMerges m;
  m.merges_.reserve(merges.size());
  for (size_t i = 0; i < merges.size(); ++i) {
    const auto& [a, b] = merges[i];
    const int left = vocab.Find(a), right = vocab.Find(b);
    const int merged = vocab.Find(absl::StrCat(a, b));
    if (left < 0 || right < 0 || merged < 0) {
      const std::string& missing = left < 0 ? a : right < 0 ? b : absl::StrCat(a, b);
      return absl::InvalidArgumentError(absl::StrCat(Sv(source), ": merge ", i, " (\"", a, " ", b,
                                                     "\") names \"", missing,
                                                     "\", which is not in the vocabulary"));
    }
    if (i > static_cast<size_t>(INT32_MAX))
      return absl::InvalidArgumentError(absl::StrCat(Sv(source), ": too many merges"));
    m.merges_.try_emplace(Key(left, right), Merge{static_cast<int>(i), merged});
  }
  return m;
}

void BpeMerges::Encode(const Vocab& vocab, std::string_view word, bool ignore_merges,
                       std::vector<int>* out) const {
  if (word.empty()) return;
  if (ignore_merges) {
    const int whole = vocab.Find(word);
    if (whole >= 0) {
      out->push_back(whole);
      return;
    }
  }
  // Symbols: one per code point (its length from the lead byte, as llama.cpp splits), with the
  // byte range it covers so unknown ones can fall back to bytes.
  struct Symbol {
    int id;
    int prev, next;  // -1 at the ends
    uint32_t begin, end;
  };
  std::vector<Symbol> symbols;
  symbols.reserve(word.size());
  for (size_t i = 0; i < word.size();) {
    const unsigned char c = static_cast<unsigned char>(word[i]);
    const size_t len = std::min<size_t>(word.size() - i, c < 0xC0 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4);
    const int n = static_cast<int>(symbols.size());
    symbols.push_back({vocab.Find(word.substr(i, len)), n - 1, n + 1, static_cast<uint32_t>(i),
                       static_cast<uint32_t>(i + len)});
    i += len;
  }
  symbols.back().next = -1;

  struct Candidate {
    int rank;
    int left, right;        // symbol indices
    int left_id, right_id;  // ids when queued; a changed symbol makes the entry stale
    int merged;
    // Top of the heap: lowest rank, then leftmost.
    bool operator<(const Candidate& o) const {
      if (rank != o.rank) return rank > o.rank;
      return left > o.left;
    }
  };
  std::priority_queue<Candidate> queue;
  auto push = [&](int left, int right) {
    if (left < 0 || right < 0) return;
    const int a = symbols[left].id, b = symbols[right].id;
    if (a < 0 || b < 0) return;
    auto it = merges_.find(Key(a, b));
    if (it == merges_.end()) return;
    queue.push({it->second.rank, left, right, a, b, it->second.merged});
  };
  for (int i = 0; i + 1 < static_cast<int>(symbols.size()); ++i) push(i, i + 1);
  while (!queue.empty()) {
    const Candidate c = queue.top();
    queue.pop();
    Symbol& left = symbols[c.left];
    if (left.next != c.right || left.id != c.left_id || symbols[c.right].id != c.right_id) continue;
    Symbol& right = symbols[c.right];
    left.id = c.merged;
    left.end = right.end;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = c.left;
    right.id = -2;  // merged away: never matches a queued id again
    right.next = right.prev = -1;
    push(left.prev, c.left);
    push(c.left, left.next);
  }
  for (int i = 0; i >= 0; i = symbols[i].next) {
    const Symbol& s = symbols[i];
    if (s.id >= 0) {
      out->push_back(s.id);
      continue;
    }
    // Not a token: its single bytes, those that are tokens (llama.cpp drops the others).
    for (uint32_t b = s.begin; b < s.end; ++b) {
      const int id = vocab.Find(word.substr(b, 1));
      if (id >= 0) out->push_back(id);
    }
  }
}

}  // namespace stave::text
