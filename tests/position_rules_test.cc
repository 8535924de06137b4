// The position config rules of core/position_rules.h and the one default of position_config.h,
// which every interface (proto, CLI flags, staved's UpdateConfig and --config file) relies on.
#include "core/position_rules.h"

#include <cmath>

#include "proto/position_proto.h"
#include "tests/test_support.h"

namespace stave {
namespace {

TEST(PositionDefaults, TopKZeroSelectsEveryExpert) {
  PositionConfig moice{.mode = PositionMode::kMoice, .expert_bases = {10000, 20000, 40000}};
  EXPECT_EQ(WithPositionDefaults(moice).top_k, 3);
  moice.top_k = 2;
  EXPECT_EQ(WithPositionDefaults(moice).top_k, 2);  // a given top_k is kept
  EXPECT_EQ(WithPositionDefaults(PositionConfig{}).top_k, 0);  // no experts: nothing to select
  moice.top_k = -1;
  EXPECT_EQ(WithPositionDefaults(moice).top_k, -1);  // left for validation to refuse
}

TEST(PositionDefaults, TheProtoConversionUsesThem) {
  stave::v1::PositionConfig p;
  p.set_mode(stave::v1::POSITION_MODE_MOICE);
  for (double b : {10000.0, 20000.0}) p.add_expert_bases(b);
  auto all = FromProto(p);
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(all->top_k, 2);
  p.set_top_k(1);
  EXPECT_EQ(FromProto(p)->top_k, 1);
}

class PositionRulesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SKIP_UNLESS_SHARED(testing::kStoriesModel);
    model_ = testing::LoadStories260K();
    ASSERT_NE(model_, nullptr);
  }
  std::unique_ptr<Model> model_;
};

TEST_F(PositionRulesTest, SearchOptionsComeFromTheModel) {
  auto options = SearchOptionsFor(*model_, 5);
  EXPECT_EQ(options.head_dim, model_->config().head_dim());
  EXPECT_EQ(options.context, model_->config().max_seq_len);
  EXPECT_EQ(options.start_base, model_->config().rope_theta);
  EXPECT_EQ(options.count, 5);
}

TEST_F(PositionRulesTest, ValidatesTheFieldsOfInactiveModesToo) {
  EXPECT_TRUE(ValidateForModel(*model_, PositionConfig{}).ok());
  // Vanilla, but holding bases that buckets would refuse: refused now, not when switched.
  auto bad_bases = ValidateForModel(*model_, {.bases = {10000, std::nan("")}});
  EXPECT_EQ(bad_bases.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad_bases.message()), ::testing::HasSubstr("bases"));
  auto bad_top_k = ValidateForModel(*model_, {.expert_bases = {10000, 20000}, .top_k = 3});
  EXPECT_THAT(std::string(bad_top_k.message()), ::testing::HasSubstr("top_k"));
  auto bad_router = ValidateForModel(*model_, {.expert_bases = {10000}, .top_k = 1, .router_path = "/nonexistent/r"});
  EXPECT_THAT(std::string(bad_router.message()), ::testing::HasSubstr("router_path"));
}

TEST_F(PositionRulesTest, AnUpdateKeepsWhatItDoesNotSet) {
  PositionConfig start{.mode = PositionMode::kBuckets, .bases = {10000, 20000}};
  auto next = ApplyPositionUpdate(*model_, start, {.fusion = Fusion::kProbs});
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(next->mode, PositionMode::kBuckets);
  EXPECT_EQ(next->bases, (std::vector<double>{10000, 20000}));
  EXPECT_EQ(next->fusion, Fusion::kProbs);
}

TEST_F(PositionRulesTest, NewExpertBasesWithoutTopKSelectAllOfThem) {
  PositionConfig start{.mode = PositionMode::kMoice, .expert_bases = {10000, 20000}, .top_k = 1};
  auto more = ApplyPositionUpdate(*model_, start, {.expert_bases = std::vector<double>{10000, 20000, 40000}});
  ASSERT_TRUE(more.ok()) << more.status();
  EXPECT_EQ(more->top_k, 3);
  auto kept = ApplyPositionUpdate(*model_, start, {.mode = PositionMode::kMoice});
  ASSERT_TRUE(kept.ok()) << kept.status();
  EXPECT_EQ(kept->top_k, 1);  // the experts did not change: neither does top_k
  auto zero = ApplyPositionUpdate(*model_, start, {.top_k = 0});  // 0: the default, all
  ASSERT_TRUE(zero.ok()) << zero.status();
  EXPECT_EQ(zero->top_k, 2);
}

TEST_F(PositionRulesTest, BucketCountAloneRunsTheBaseSearch) {
  auto next = ApplyPositionUpdate(*model_, {}, {.mode = PositionMode::kBuckets, .bucket_count = 3});
  ASSERT_TRUE(next.ok()) << next.status();
  auto expected = SearchBases(SearchOptionsFor(*model_, 3));
  ASSERT_TRUE(expected.ok());
  EXPECT_EQ(next->bases, expected->bases);
  auto disagree = ApplyPositionUpdate(*model_, {}, {.bases = std::vector<double>{10000, 20000}, .bucket_count = 3});
  EXPECT_THAT(std::string(disagree.status().message()), ::testing::HasSubstr("bucket_count"));
  auto too_many = ApplyPositionUpdate(*model_, {}, {.bucket_count = kMaxBuckets + 1});
  EXPECT_THAT(std::string(too_many.status().message()), ::testing::HasSubstr("bucket_count"));
}

}  // namespace
}  // namespace stave
