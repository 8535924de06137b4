#include "core/sentencepiece_tokenizer.h"

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "core/sentencepiece_shim.h"

namespace stave {

SentencePieceTokenizer::SentencePieceTokenizer(std::unique_ptr<SentencePieceShim> sp)
    : sp_(std::move(sp)) {}
SentencePieceTokenizer::~SentencePieceTokenizer() = default;

absl::StatusOr<std::unique_ptr<SentencePieceTokenizer>> SentencePieceTokenizer::Load(
    const std::string& path) {
  std::string error;
  auto sp = SentencePieceShim::Load(path, &error);
  if (sp == nullptr)
    return absl::InvalidArgumentError(absl::StrCat(path, ": not a SentencePiece model: ", error));
  return std::unique_ptr<SentencePieceTokenizer>(new SentencePieceTokenizer(std::move(sp)));
}

std::vector<int> SentencePieceTokenizer::Encode(std::string_view text, bool add_bos) const {
  std::vector<int> ids = sp_->Encode(text);
  if (add_bos) ids.insert(ids.begin(), sp_->bos_id());
  return ids;
}

std::string SentencePieceTokenizer::DecodeToken(int prev_token, int token) const {
  if (token < 0 || token >= sp_->piece_size() || sp_->is_control(token)) return "";
  if (sp_->is_unknown(token)) return " \xE2\x81\x87 ";  // " ⁇ ", as SentencePiece decodes <unk>
  const std::string piece = sp_->id_to_piece(token);
  if (sp_->is_byte(token)) {
    unsigned int byte = 0;
    std::sscanf(piece.c_str(), "<0x%02X>", &byte);
    return std::string(1, static_cast<char>(byte));
  }
  std::string text = absl::StrReplaceAll(piece, {{"\xE2\x96\x81", " "}});  // U+2581 -> space
  if (prev_token == sp_->bos_id() && !text.empty() && text[0] == ' ') text.erase(0, 1);
  return text;
}

int SentencePieceTokenizer::vocab_size() const { return sp_->piece_size(); }
int SentencePieceTokenizer::bos_id() const { return sp_->bos_id(); }

std::vector<VocabularyEntry> SentencePieceTokenizer::SentencePieceVocabulary() const {
  std::vector<VocabularyEntry> out;
  for (int id = 0; id < sp_->piece_size(); ++id) {
    int type = sp_->is_unknown(id) ? VocabularyEntry::kUnknown
               : sp_->is_control(id) ? VocabularyEntry::kControl
               : sp_->is_byte(id)    ? VocabularyEntry::kByte
                                     : VocabularyEntry::kNormal;
    out.push_back({sp_->id_to_piece(id), sp_->score(id), type});
  }
  return out;
}

}  // namespace stave
