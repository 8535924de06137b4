#include "core/llama2c_tokenizer.h"

#include <cstring>

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

  // Merge the best-scoring adjacent pair until none merges. run.c scans left to right and keeps
  // the first strictly better score; the same tie-breaking matters for byte-exactness.
  while (true) {
    float best_score = -1e10f;
    int best_id = -1, best_idx = -1;
    for (size_t i = 0; i + 1 < tokens.size(); ++i) {
      int id = Lookup(pieces_[tokens[i]] + pieces_[tokens[i + 1]]);
      if (id != -1 && scores_[id] > best_score) {
        best_score = scores_[id];
        best_id = id;
        best_idx = static_cast<int>(i);
      }
    }
    if (best_idx == -1) break;
    tokens[best_idx] = best_id;
    tokens.erase(tokens.begin() + best_idx + 1);
  }
  return tokens;
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

}  // namespace stave
