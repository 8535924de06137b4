#include "core/llama2c_tokenizer.h"

#include <cstdio>
#include <cstring>
#include <queue>

#include "absl/strings/str_cat.h"
#include "core/mapped_file.h"

namespace stave {

absl::StatusOr<std::unique_ptr<Llama2cTokenizer>> Llama2cTokenizer::Load(const std::string& path) {
  auto file_or = MappedFile::Open(path);
  if (!file_or.ok()) return file_or.status();
  const auto& file = **file_or;
  auto tok = std::unique_ptr<Llama2cTokenizer>(new Llama2cTokenizer());
  size_t off = 4;  // max_token_length: not needed, pieces are std::strings
  if (file.size() < off)
    return absl::DataLossError(absl::StrCat(path, ": too short for a tokenizer.bin"));
  while (off < file.size()) {
    float score;
    int32_t len;
    if (off + 8 > file.size())
      return absl::DataLossError(absl::StrCat(path, ": truncated in token ", tok->pieces_.size()));
    std::memcpy(&score, file.data() + off, 4);
    std::memcpy(&len, file.data() + off + 4, 4);
    off += 8;
    if (len < 0 || off + static_cast<size_t>(len) > file.size())
      return absl::DataLossError(absl::StrCat(path, ": token ", tok->pieces_.size(),
                                              " has an invalid length ", len, " (truncated?)"));
    std::string piece(reinterpret_cast<const char*>(file.data() + off), len);
    off += len;
    tok->ids_.emplace(piece, static_cast<int>(tok->pieces_.size()));  // first occurrence wins
    tok->pieces_.push_back(std::move(piece));
    tok->scores_.push_back(score);
  }
  if (tok->pieces_.size() < 259)
    return absl::DataLossError(absl::StrCat(path, ": only ", tok->pieces_.size(),
                                            " tokens; a llama2.c tokenizer has at least 259"));
  return tok;
}

int Llama2cTokenizer::Lookup(const std::string& piece) const {
  auto it = ids_.find(piece);
  return it == ids_.end() ? -1 : it->second;
}

std::vector<int> Llama2cTokenizer::Encode(std::string_view text, bool add_bos) const {
  std::vector<int> tokens;
  if (add_bos) tokens.push_back(1);
  // run.c adds the dummy prefix only for non-empty text.
  if (!text.empty()) tokens.push_back(Lookup(" "));

  // One token per UTF-8 code point, byte fallback otherwise (mirrors run.c exactly, including
  // its cap of 4 bytes per code point).
  std::string buf;
  for (size_t i = 0; i < text.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if ((c & 0xC0) != 0x80) buf.clear();
    buf.push_back(static_cast<char>(c));
    if (i + 1 < text.size() && (static_cast<unsigned char>(text[i + 1]) & 0xC0) == 0x80 &&
        buf.size() < 4)
      continue;
    int id = Lookup(buf);
    if (id != -1) {
      tokens.push_back(id);
    } else {
      for (unsigned char b : buf) tokens.push_back(b + 3);
    }
    buf.clear();
  }

  // Merge the best-scoring adjacent pair until none merges. run.c rescans every pair after each
  // merge, which is quadratic (16k characters took 4.8 s), so this is the SentencePiece-style
  // priority queue over adjacent pairs: a doubly linked list over the tokens plus a heap of
  // candidate merges, O(n log n). The result is the same as run.c's: it merges the pair with the
  // strictly highest score and, among equal scores, the leftmost one (the first it meets when
  // scanning). Merges keep the left node, so original indices keep left-to-right order and the
  // heap breaks ties on the left node's index. BOS takes part in pairs, as in run.c.
  const int n = static_cast<int>(tokens.size());
  if (n < 2) return tokens;
  std::vector<int> prev(n), next(n);  // -1 at the ends; next[i] == -1 also once i is merged away
  for (int i = 0; i < n; ++i) {
    prev[i] = i - 1;
    next[i] = i + 1 < n ? i + 1 : -1;
  }
  struct Candidate {
    float score;
    int left, right;        // node indices
    int left_id, right_id;  // the ids they had when queued; stale entries no longer match
    int merged_id;
    // The heap's top is the highest score, then the lowest left index (run.c's leftmost pair).
    bool operator<(const Candidate& o) const {
      if (score != o.score) return score < o.score;
      return left > o.left;
    }
  };
  std::priority_queue<Candidate> queue;
  std::string pair;  // reused so a lookup allocates only when a piece outgrows it
  auto push = [&](int left, int right) {
    if (left < 0 || right < 0) return;
    const int left_id = tokens[left], right_id = tokens[right];
    if (left_id < 0 || right_id < 0) return;  // no " " in the vocabulary: nothing to merge with
    pair.assign(pieces_[left_id]);
    pair.append(pieces_[right_id]);
    int id = Lookup(pair);
    // run.c only takes scores above its initial best of -1e10 (this also drops NaN scores, which
    // would otherwise break the heap's ordering).
    if (id == -1 || !(scores_[id] > -1e10f)) return;
    queue.push({scores_[id], left, right, left_id, right_id, id});
  };
  for (int i = 0; i + 1 < n; ++i) push(i, i + 1);
  while (!queue.empty()) {
    Candidate c = queue.top();
    queue.pop();
    // Stale when the left node was merged away, has another right neighbour, or either side has
    // changed id since the entry was queued.
    if (next[c.left] != c.right || tokens[c.left] != c.left_id || tokens[c.right] != c.right_id)
      continue;
    tokens[c.left] = c.merged_id;
    const int after = next[c.right];
    next[c.left] = after;
    if (after != -1) prev[after] = c.left;
    next[c.right] = -1;
    push(prev[c.left], c.left);
    push(c.left, after);
  }
  std::vector<int> merged;
  for (int i = 0; i != -1; i = next[i]) merged.push_back(tokens[i]);
  return merged;
}

std::string Llama2cTokenizer::DecodeToken(int prev_token, int token) const {
  if (token < 0 || token >= vocab_size()) return "";
  const std::string& piece = pieces_[token];
  size_t start = (prev_token == 1 && !piece.empty() && piece[0] == ' ') ? 1 : 0;
  // "<0xXX>" byte tokens stand for the raw byte.
  if (piece.size() == 6 && piece.compare(0, 3, "<0x") == 0 && piece[5] == '>') {
    unsigned int byte = 0;
    if (std::sscanf(piece.c_str(), "<0x%02X>", &byte) == 1) return std::string(1, static_cast<char>(byte));
  }
  return piece.substr(start);
}

// llama2.c's export wrote SentencePiece pieces with U+2581 turned into spaces; ids 0-2 are
// <unk>, <s>, </s> and 3-258 the byte tokens <0x00>..<0xFF> (as llama.cpp's converter assumes).
std::vector<VocabularyEntry> Llama2cTokenizer::SentencePieceVocabulary() const {
  std::vector<VocabularyEntry> out;
  for (size_t id = 0; id < pieces_.size(); ++id) {
    std::string piece;
    for (char c : pieces_[id]) piece += c == ' ' ? std::string("\xe2\x96\x81") : std::string(1, c);
    int type = id == 0 ? VocabularyEntry::kUnknown
               : id <= 2 ? VocabularyEntry::kControl
               : id <= 258 ? VocabularyEntry::kByte
                           : VocabularyEntry::kNormal;
    out.push_back({std::move(piece), scores_[id], type});
  }
  return out;
}

}  // namespace stave
