// Generation rules: stop strings (with hold-back while streaming), max tokens, context limit,
// seeded reproducibility, input validation.
#include "core/sequence.h"

#include "core/checkpoint.h"
#include "core/generate.h"
#include "core/model.h"
#include "core/utf8.h"
#include "tests/test_support.h"

namespace stave {
namespace {

TEST(Sequence, StopStringEndsTextBeforeItAndNeverStreamsIt) {
  SKIP_UNLESS_SHARED("models/stories260K/stories260K.bin");
  auto model = testing::LoadStories260K();
  ASSERT_NE(model, nullptr);
  GenerationParams params;
  params.sampling.temperature = 0;
  params.max_tokens = 100;
  auto full = Generate(*model, "Once upon a time", params);
  ASSERT_TRUE(full.ok());
  // Greedy text starts ", there was a little girl named Lily."
  params.stop = {"Lily", "zzz"};
  std::string streamed;
  auto cut = Generate(*model, "Once upon a time", params, [&](int, std::string_view t) {
    streamed += t;
    return true;
  });
  ASSERT_TRUE(cut.ok());
  EXPECT_EQ(cut->finish_reason, "stop");
  EXPECT_EQ(cut->text, full->text.substr(0, full->text.find("Lily")));
  EXPECT_EQ(streamed, cut->text);
}

TEST(Sequence, MaxTokensAndCallbackCancellation) {
  SKIP_UNLESS_SHARED("models/stories260K/stories260K.bin");
  auto model = testing::LoadStories260K();
  ASSERT_NE(model, nullptr);
  GenerationParams params;
  params.max_tokens = 5;
  auto r = Generate(*model, "Hi", params);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->token_ids.size(), 5u);
  EXPECT_EQ(r->finish_reason, "length");
  params.max_tokens = 50;
  int calls = 0;
  auto c = Generate(*model, "Hi", params, [&](int, std::string_view) { return ++calls < 3; });
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->finish_reason, "cancelled");
  EXPECT_EQ(c->token_ids.size(), 3u);
}

TEST(Sequence, SeededSamplingIsReproducible) {
  SKIP_UNLESS_SHARED("models/stories260K/stories260K.bin");
  auto model = testing::LoadStories260K();
  ASSERT_NE(model, nullptr);
  GenerationParams params;
  params.max_tokens = 40;
  params.sampling = {.temperature = 1.0f, .top_k = 0, .top_p = 0.9f, .seed = 1234};
  auto a = Generate(*model, "The dog", params);
  auto b = Generate(*model, "The dog", params);
  params.sampling.seed = 99;
  auto c = Generate(*model, "The dog", params);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(a->token_ids, b->token_ids);
  EXPECT_NE(a->token_ids, c->token_ids);
}

TEST(Sequence, ContextLimitEndsWithLength) {
  auto config = ParseShapeSpec("dim=16,layers=1,heads=2,hidden=32,vocab=40,ctx=12");
  ASSERT_TRUE(config.ok());
  auto model = Model::FromCheckpoint(RandomCheckpoint(*config, 3), nullptr);
  GenerationParams params;
  params.max_tokens = 100;
  params.ignore_stop_token = true;
  auto seq = Sequence::Create(*model, {1, 5, 6, 7}, params);
  ASSERT_TRUE(seq.ok()) << seq.status();
  Sequence::Step step;
  while (!(*seq)->finished()) step = (*seq)->Next();
  EXPECT_EQ(step.finish_reason, "length");
  EXPECT_EQ((*seq)->token_ids().size(), 8u);  // 4 prompt + 8 generated = the context of 12
}

TEST(Sequence, InvalidInputsAreRejected) {
  auto config = ParseShapeSpec("dim=16,layers=1,heads=2,hidden=32,vocab=40,ctx=12");
  ASSERT_TRUE(config.ok());
  auto model = Model::FromCheckpoint(RandomCheckpoint(*config, 3), nullptr);
  GenerationParams ok;
  EXPECT_FALSE(Sequence::Create(*model, {}, ok).ok());
  EXPECT_FALSE(Sequence::Create(*model, std::vector<int>(12, 1), ok).ok());  // fills the context
  EXPECT_FALSE(Sequence::Create(*model, {1, 40}, ok).ok());                   // outside the vocab
  GenerationParams zero = ok;
  zero.max_tokens = 0;
  EXPECT_FALSE(Sequence::Create(*model, {1}, zero).ok());
  GenerationParams bad_p = ok;
  bad_p.sampling.top_p = 0;
  EXPECT_FALSE(Sequence::Create(*model, {1}, bad_p).ok());
}

TEST(Utf8, ValidTextIsUnchangedAndBadBytesBecomeReplacementCharacters) {
  const std::string valid = "plain, caf\xC3\xA9, \xE2\x82\xAC, \xF0\x9F\x98\x80";
  EXPECT_EQ(ToValidUtf8(valid), valid);
  const std::string fffd = "\xEF\xBF\xBD";
  EXPECT_EQ(ToValidUtf8("a\xE2\x82"), "a" + fffd);           // truncated at the end
  EXPECT_EQ(ToValidUtf8("a\x80" "b"), "a" + fffd + "b");          // stray continuation byte
  EXPECT_EQ(ToValidUtf8("\xC0\xAF"), fffd);                   // overlong encoding
  EXPECT_EQ(ToValidUtf8("\xED\xA0\x80x"), fffd + "x");       // a surrogate
  EXPECT_EQ(ToValidUtf8("\xF5\x80"), fffd);                   // beyond U+10FFFF
  EXPECT_EQ(ToValidUtf8("\xE2\x82\xE2\x82\xAC"), fffd + "\xE2\x82\xAC");  // bad, then good
  EXPECT_EQ(ToValidUtf8(""), "");
}

}  // namespace
}  // namespace stave
