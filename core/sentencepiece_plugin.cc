// The sentencepiece plugin (see sentencepiece_shim.h for why it is a separate library).
#include <sentencepiece_processor.h>

#include "core/sentencepiece_shim.h"

namespace stave {
namespace {

class SentencePieceImpl : public SentencePieceShim {
 public:
  bool Load(const char* path, std::string* error) {
    auto status = sp_.Load(path);
    if (!status.ok()) *error = status.ToString();
    return status.ok();
  }
  std::vector<int> Encode(std::string_view text) const override {
    std::vector<int> ids;
    sp_.Encode(text, &ids).IgnoreError();
    return ids;
  }
  int piece_size() const override { return sp_.GetPieceSize(); }
  int bos_id() const override { return sp_.bos_id(); }
  bool is_control(int id) const override { return sp_.IsControl(id); }
  bool is_unknown(int id) const override { return sp_.IsUnknown(id); }
  bool is_byte(int id) const override { return sp_.IsByte(id); }
  std::string id_to_piece(int id) const override { return sp_.IdToPiece(id); }
  float score(int id) const override { return sp_.GetScore(id); }

 private:
  sentencepiece::SentencePieceProcessor sp_;
};

}  // namespace
}  // namespace stave

extern "C" __attribute__((visibility("default"))) stave::SentencePieceShim* stave_sentencepiece_load(
    const char* path, std::string* error) {
  auto impl = new stave::SentencePieceImpl();
  if (!impl->Load(path, error)) {
    delete impl;
    return nullptr;
  }
  return impl;
}
