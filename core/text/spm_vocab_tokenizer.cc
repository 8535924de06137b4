#include "core/text/spm_vocab_tokenizer.h"

#include <queue>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "core/text/sv.h"

namespace stave::text {
namespace {

constexpr absl::string_view kSpace = "\xE2\x96\x81";  // U+2581, SentencePiece's escaped space

// "<0xXX>" -> XX, or -1.
int ByteOfToken(std::string_view text) {
  if (text.size() != 6 || text.substr(0, 3) != "<0x" || text[5] != '>') return -1;
  int value = 0;
  for (char c : text.substr(3, 2)) {
    int digit = c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10
                : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (digit < 0) return -1;
    value = value * 16 + digit;
  }
  return value;
}

}  // namespace

SpmVocabTokenizer::SpmVocabTokenizer(Vocab vocab, SpmOptions options)
    : vocab_(std::move(vocab)), options_(options) {}

absl::StatusOr<std::unique_ptr<SpmVocabTokenizer>> SpmVocabTokenizer::Create(
    Vocab vocab, SpmOptions options, std::string_view source) {
  for (auto [name, id] : {std::pair<const char*, int>{"BOS", options.bos_id},
                          {"EOS", options.eos_id}, {"unknown token", options.unk_id}})
    if (!vocab.valid(id))
      return absl::InvalidArgumentError(absl::StrCat(Sv(source), ": ", name, " id ", id,
                                                     " is outside the vocabulary of ",
                                                     vocab.size(), " tokens"));
  auto tok = std::unique_ptr<SpmVocabTokenizer>(new SpmVocabTokenizer(std::move(vocab), options));
  const Vocab& v = tok->vocab_;
  for (int id = 0; id < v.size(); ++id) {
    if (v.type(id) != TokenType::kUserDefined) continue;
    const std::string& t = v.text(id);
    const bool rstrip = options.rstrip_user_defined && t != "<unk>" && t != "<s>" &&
                        t != "<|endoftext|>";
    tok->verbatim_.push_back({t, id, false, rstrip});
  }
  SortVerbatimTokens(&tok->verbatim_);
  // llama.cpp's byte_to_token: the <0xXX> token, else the byte itself as a token. Where neither
  // exists the unknown token stands in (llama.cpp would throw).
  static const char kHex[] = "0123456789ABCDEF";
  for (int b = 0; b < 256; ++b) {
    const char name[] = {'<', '0', 'x', kHex[b >> 4], kHex[b & 15], '>'};
    int id = v.Find(std::string_view(name, 6));
    if (id < 0) id = v.Find(std::string(1, static_cast<char>(b)));
    tok->byte_tokens_[b] = id >= 0 ? id : options.unk_id;
  }
  return tok;
}

int SpmVocabTokenizer::ByteToken(unsigned char byte) const { return byte_tokens_[byte]; }

std::vector<int> SpmVocabTokenizer::Encode(std::string_view text, bool add_bos) const {
  std::vector<int> out;
  if (add_bos) out.push_back(options_.bos_id);
  bool after_special = true;  // the text start counts as following a special token
  std::string run;
  for (const Fragment& f : PartitionVerbatim(text, verbatim_)) {
    if (f.token >= 0) {
      out.push_back(f.token);
      after_special = true;
      continue;
    }
    run.clear();
    if (options_.add_space_prefix && after_special) run.push_back(' ');
    run.append(f.text);
    EncodeRun(absl::StrReplaceAll(run, {{absl::string_view(" "), kSpace}}), &out);
    after_special = false;
  }
  return out;
}

void SpmVocabTokenizer::EncodeRun(std::string_view text, std::vector<int>* out) const {
  if (text.empty()) return;
  // Symbols cover byte ranges of `text`; a merge extends the left one over the right one.
  struct Symbol {
    int prev, next;
    uint32_t begin, size;  // size 0: merged away
  };
  std::vector<Symbol> symbols;
  symbols.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    // Code point length from the lead byte alone (unicode_len_utf8), clipped at the end.
    static constexpr uint8_t kLen[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    const size_t len = std::min<size_t>(kLen[static_cast<unsigned char>(text[i]) >> 4], text.size() - i);
    const int n = static_cast<int>(symbols.size());
    symbols.push_back({n - 1, n + 1, static_cast<uint32_t>(i), static_cast<uint32_t>(len)});
    i += len;
  }
  symbols.back().next = -1;

  struct Bigram {
    float score;
    int left, right;
    uint32_t size;
    // Top of the heap: highest score, then leftmost (llm_bigram_spm::comparator).
    bool operator<(const Bigram& o) const {
      if (score != o.score) return score < o.score;
      return left > o.left;
    }
  };
  std::priority_queue<Bigram> queue;
  auto push = [&](int left, int right) {
    if (left < 0 || right < 0) return;
    const uint32_t size = symbols[left].size + symbols[right].size;
    const int id = vocab_.Find(text.substr(symbols[left].begin, size));
    if (id < 0) return;
    queue.push({vocab_.score(id), left, right, size});
  };
  for (int i = 1; i < static_cast<int>(symbols.size()); ++i) push(i - 1, i);
  while (!queue.empty()) {
    const Bigram b = queue.top();
    queue.pop();
    Symbol& left = symbols[b.left];
    Symbol& right = symbols[b.right];
    // Stale when either side was merged away or has grown since (llama.cpp's check: sizes only
    // grow, so unchanged sizes mean unchanged symbols).
    if (left.size == 0 || right.size == 0 || left.size + right.size != b.size) continue;
    left.size += right.size;
    right.size = 0;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = b.left;
    push(left.prev, b.left);
    push(b.left, left.next);
  }
  for (int i = 0; i >= 0; i = symbols[i].next) {
    const std::string_view piece = text.substr(symbols[i].begin, symbols[i].size);
    const int id = vocab_.Find(piece);
    if (id >= 0) {
      out->push_back(id);
    } else {
      // Only unmerged code points can be no token (merges always form tokens): byte fallback.
      for (unsigned char c : piece) out->push_back(ByteToken(c));
    }
  }
}

std::string SpmVocabTokenizer::DecodeToken(int prev_token, int token) const {
  if (!vocab_.valid(token)) return "";
  const std::string& text = vocab_.text(token);
  std::string piece;
  switch (vocab_.type(token)) {
    case TokenType::kNormal:
      piece = absl::StrReplaceAll(text, {{kSpace, absl::string_view(" ")}});
      break;
    case TokenType::kByte: {
      const int byte = ByteOfToken(text);
      piece = byte >= 0 ? std::string(1, static_cast<char>(byte)) : text;
      break;
    }
    case TokenType::kUserDefined:
      piece = text;
      break;
    default:  // control, unknown, unused, undefined: not text (llama.cpp without `special`)
      return "";
  }
  if (prev_token == options_.bos_id && options_.add_space_prefix && !piece.empty() &&
      piece[0] == ' ')
    piece.erase(0, 1);
  return piece;
}

std::vector<VocabularyEntry> SpmVocabTokenizer::SentencePieceVocabulary() const {
  std::vector<VocabularyEntry> out;
  out.reserve(vocab_.size());
  for (int id = 0; id < vocab_.size(); ++id)
    out.push_back({vocab_.text(id), vocab_.score(id), static_cast<int>(vocab_.type(id))});
  return out;
}

}  // namespace stave::text
