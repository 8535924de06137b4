#include "core/tokenizer.h"

#include <fstream>

#include "core/llama2c_tokenizer.h"
#include "core/sentencepiece_tokenizer.h"
#include "tests/test_support.h"

namespace stave {
namespace {

constexpr char kSpModel[] = "models/llama-sp32k/tokenizer.model";
constexpr char kSpBin[] = "models/llama-sp32k/tokenizer.bin";

const std::vector<std::string>& Texts() {
  static const std::vector<std::string> texts = {
      "Hello world",
      "Once upon a time, there was a little girl named Lily.",
      "  leading spaces and\ttabs\nnewlines",
      "naïve café, Grüße, 東京, emoji 🦙!",
      "x = {\"key\": [1, 2, 3]} // code-ish",
  };
  return texts;
}

TEST(SentencePiece, KnownLlamaIds) {
  SKIP_UNLESS_SHARED(kSpModel);
  auto tok = LoadTokenizer(testing::SharedPath(kSpModel));
  ASSERT_TRUE(tok.ok()) << tok.status();
  EXPECT_EQ((*tok)->vocab_size(), 32000);
  EXPECT_EQ((*tok)->Encode("Hello world", true), (std::vector<int>{1, 15043, 3186}));
}

TEST(SentencePiece, DecodeRoundTrips) {
  SKIP_UNLESS_SHARED(kSpModel);
  auto tok = LoadTokenizer(testing::SharedPath(kSpModel));
  ASSERT_TRUE(tok.ok()) << tok.status();
  for (const auto& text : {Texts()[1], Texts()[3], Texts()[4]}) {
    auto ids = (*tok)->Encode(text, true);
    EXPECT_EQ((*tok)->Decode(std::span<const int>(ids).subspan(1), ids[0]), text);
  }
}

TEST(Llama2cTokenizer, EncodesLikeSentencePieceOnTheSameVocabulary) {
  // The llama2.c export of the 32k tokenizer must encode exactly as SentencePiece does.
  SKIP_UNLESS_SHARED(kSpBin);
  auto sp = LoadTokenizer(testing::SharedPath(kSpModel));
  auto l2 = LoadTokenizer(testing::SharedPath(kSpBin));
  ASSERT_TRUE(sp.ok()) << sp.status();
  ASSERT_TRUE(l2.ok()) << l2.status();
  EXPECT_NE(dynamic_cast<Llama2cTokenizer*>(l2->get()), nullptr);
  for (const auto& text : Texts()) {
    auto ids = (*l2)->Encode(text, true);
    EXPECT_EQ(ids, (*sp)->Encode(text, true)) << text;
    EXPECT_EQ((*l2)->Decode(std::span<const int>(ids).subspan(1), ids[0]), text) << text;
  }
}

TEST(Llama2cTokenizer, ByteFallbackAndBosSpaceRule) {
  SKIP_UNLESS_SHARED(kSpBin);
  auto tok = LoadTokenizer(testing::SharedPath(kSpBin));
  ASSERT_TRUE(tok.ok()) << tok.status();
  EXPECT_EQ((*tok)->Encode("", true), std::vector<int>{1});  // no dummy prefix for empty text
  EXPECT_EQ((*tok)->DecodeToken(1, 15043), "Hello");         // leading space dropped after BOS
  EXPECT_EQ((*tok)->DecodeToken(3186, 15043), " Hello");
  EXPECT_EQ((*tok)->DecodeToken(5, 0x41 + 3), "A");           // <0x41>
}

TEST(Tokenizer, MissingAndCorruptFilesAreErrors) {
  testing::TempDir dir;
  EXPECT_FALSE(LoadTokenizer(dir / "absent.model").ok());
  std::ofstream(dir / "junk.bin") << "\x05\x00\x00\x00\x00\x00\x80\x3f\xff\xff";
  auto junk = LoadTokenizer(dir / "junk.bin");
  ASSERT_FALSE(junk.ok());
  EXPECT_THAT(std::string(junk.status().message()), ::testing::HasSubstr("junk.bin"));
  std::ofstream(dir / "junk.model") << "not a model";
  EXPECT_FALSE(LoadTokenizer(dir / "junk.model").ok());
}

}  // namespace
}  // namespace stave
