// The server's versioned config store, its --config file parser and the loopback rule for writes.
#include "server/config_store.h"

#include <cmath>
#include <fstream>

#include "server/config_file.h"
#include "server/write_auth.h"
#include "tests/test_support.h"

namespace stave::server {
namespace {

class ConfigStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SKIP_UNLESS_SHARED(testing::kStoriesModel);
    model_ = testing::LoadStories260K();
    ASSERT_NE(model_, nullptr);
    store_ = std::make_unique<ConfigStore>(*model_, PositionConfig{});
  }
  absl::Status Apply(const ConfigUpdate& u) { return store_->Update(u).status(); }
  std::unique_ptr<Model> model_;
  std::unique_ptr<ConfigStore> store_;
};

TEST_F(ConfigStoreTest, StartsAtVersionOneAndCountsAcceptedUpdates) {
  EXPECT_EQ(store_->Current()->version, 1u);
  EXPECT_EQ(store_->Current()->position.mode, PositionMode::kVanilla);
  ASSERT_TRUE(Apply({.mode = PositionMode::kBuckets, .bases = std::vector<double>{10000, 20000}}).ok());
  EXPECT_EQ(store_->Current()->version, 2u);
  ASSERT_TRUE(Apply({.fusion = Fusion::kProbs}).ok());  // unset fields keep their value
  EXPECT_EQ(store_->Current()->version, 3u);
  EXPECT_EQ(store_->Current()->position.bases, (std::vector<double>{10000, 20000}));
  EXPECT_EQ(store_->Current()->position.fusion, Fusion::kProbs);
}

TEST_F(ConfigStoreTest, ASnapshotNeverChanges) {
  auto before = store_->Current();
  ASSERT_TRUE(Apply({.mode = PositionMode::kBuckets, .bases = std::vector<double>{10000, 30000}}).ok());
  EXPECT_EQ(before->version, 1u);
  EXPECT_EQ(before->position.mode, PositionMode::kVanilla);
  EXPECT_TRUE(before->position.bases.empty());
}

TEST_F(ConfigStoreTest, InvalidUpdatesChangeNothingAndNameTheField) {
  ASSERT_TRUE(Apply({.mode = PositionMode::kBuckets, .bases = std::vector<double>{10000, 20000}}).ok());
  const auto before = store_->Current();
  struct Case {
    ConfigUpdate update;
    std::string field;
  };
  std::vector<Case> cases = {
      {{.bases = std::vector<double>{10000, std::nan("")}}, "bases"},
      {{.bases = std::vector<double>{-5}}, "bases"},
      {{.bases = std::vector<double>{1.0}}, "bases"},
      {{.bases = std::vector<double>(17, 10000)}, "bases"},
      {{.bucket_count = 17}, "bucket_count"},
      {{.bases = std::vector<double>{10000, 20000}, .bucket_count = 3}, "bucket_count"},
      {{.expert_bases = std::vector<double>{10000, 20000}, .top_k = 3}, "top_k"},
      // A router file that does not exist: refused even though the mode stays buckets.
      {{.expert_bases = std::vector<double>{10000, 20000}, .router_path = std::string("/nonexistent/router")},
       "router_path"},
      {{.mode = PositionMode::kMoice}, "expert_bases"},
  };
  for (const auto& c : cases) {
    auto status = Apply(c.update);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << c.field << ": " << status;
    EXPECT_THAT(std::string(status.message()), ::testing::HasSubstr(c.field));
    EXPECT_EQ(store_->Current(), before) << c.field;
  }
}

TEST_F(ConfigStoreTest, ExpectedVersionIsHonoured) {
  auto stale = Apply({.mode = PositionMode::kVanilla, .expected_version = 7});
  EXPECT_EQ(stale.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->Current()->version, 1u);
  EXPECT_TRUE(Apply({.mode = PositionMode::kVanilla, .expected_version = 1}).ok());
  EXPECT_EQ(store_->Current()->version, 2u);
}

TEST_F(ConfigStoreTest, BucketCountAloneRunsTheBaseSearch) {
  ASSERT_TRUE(Apply({.mode = PositionMode::kBuckets, .bucket_count = 4}).ok());
  auto expected = SearchBases(SearchOptionsFor(*model_, 4));
  ASSERT_TRUE(expected.ok());
  EXPECT_EQ(store_->Current()->position.bases, expected->bases);
  EXPECT_EQ(store_->Current()->position.bases.size(), 4u);
  EXPECT_EQ(store_->Current()->position.bases.front(), model_->config().rope_theta);
}

TEST_F(ConfigStoreTest, ExpertBasesAloneSelectAllExperts) {
  ASSERT_TRUE(Apply({.mode = PositionMode::kMoice, .expert_bases = std::vector<double>{10000, 20000, 40000}}).ok());
  EXPECT_EQ(store_->Current()->position.top_k, 3);
}

TEST_F(ConfigStoreTest, ReplaceStartsFromTheDefaults) {
  ASSERT_TRUE(Apply({.mode = PositionMode::kBuckets, .bases = std::vector<double>{10000, 20000}}).ok());
  ASSERT_TRUE(store_->Replace({.fusion = Fusion::kProbs}).ok());
  EXPECT_EQ(store_->Current()->position.mode, PositionMode::kVanilla);
  EXPECT_TRUE(store_->Current()->position.bases.empty());
}

TEST(ConfigFile, ParsesYamlAndJson) {
  auto yaml = ParseConfigText("mode: buckets\nbases: [10000, 17500]\nfusion: probs\n", "/etc/stave");
  ASSERT_TRUE(yaml.ok()) << yaml.status();
  EXPECT_EQ(yaml->mode, PositionMode::kBuckets);
  EXPECT_EQ(*yaml->bases, (std::vector<double>{10000, 17500}));
  EXPECT_EQ(yaml->fusion, Fusion::kProbs);
  auto json = ParseConfigText(R"({"mode": "moice", "expert_bases": [10000, 20000], "top_k": 1,
                                  "router_path": "r.safetensors"})", "/etc/stave");
  ASSERT_TRUE(json.ok()) << json.status();
  EXPECT_EQ(json->mode, PositionMode::kMoice);
  EXPECT_EQ(*json->top_k, 1);
  EXPECT_EQ(*json->router_path, "/etc/stave/r.safetensors");  // relative to the file
  auto count = ParseConfigText("mode: buckets\nbucket_count: 6\n", ".");
  ASSERT_TRUE(count.ok());
  EXPECT_EQ(count->bucket_count, 6);
  EXPECT_TRUE(ParseConfigText("", ".").ok());  // empty: the defaults
}

TEST(ConfigFile, ErrorsNameTheProblem) {
  auto unknown = ParseConfigText("mode: buckets\nbasis: [1]\n", ".");
  EXPECT_THAT(std::string(unknown.status().message()), ::testing::HasSubstr("unknown key 'basis'"));
  auto mode = ParseConfigText("mode: sideways\n", ".");
  EXPECT_THAT(std::string(mode.status().message()), ::testing::HasSubstr("mode"));
  auto number = ParseConfigText("bases: [10000, lots]\n", ".");
  EXPECT_THAT(std::string(number.status().message()), ::testing::HasSubstr("line 1"));
  auto syntax = ParseConfigText("bases: [10000,\n", ".");
  EXPECT_FALSE(syntax.ok());
  EXPECT_FALSE(ParseConfigText("- just\n- a list\n", ".").ok());
}

TEST(WriteAuth, OnlyLoopbackPeersAreLoopback) {
  EXPECT_TRUE(IsLoopbackPeer("ipv4:127.0.0.1:5000"));
  EXPECT_TRUE(IsLoopbackPeer("ipv4:127.3.2.1:5000"));
  EXPECT_TRUE(IsLoopbackPeer("ipv6:[::1]:5000"));
  EXPECT_TRUE(IsLoopbackPeer("ipv6:[::ffff:127.0.0.1]:5000"));
  EXPECT_TRUE(IsLoopbackPeer("unix:/tmp/s"));
  EXPECT_FALSE(IsLoopbackPeer("ipv4:10.0.0.7:5000"));
  EXPECT_FALSE(IsLoopbackPeer("ipv4:128.0.0.1:5000"));
  EXPECT_FALSE(IsLoopbackPeer("ipv6:[::2]:5000"));
  EXPECT_FALSE(IsLoopbackPeer("ipv6:[fe80::1]:5000"));
}

TEST(WriteAuth, TokenFileMustExistAndHoldAToken) {
  testing::TempDir dir;
  EXPECT_EQ(WriteAuth::FromTokenFile(dir / "absent").status().code(), absl::StatusCode::kNotFound);
  { std::ofstream(dir / "empty") << "  \n"; }
  EXPECT_EQ(WriteAuth::FromTokenFile(dir / "empty").status().code(), absl::StatusCode::kInvalidArgument);
  { std::ofstream(dir / "token") << "s3cret\n"; }
  EXPECT_TRUE(WriteAuth::FromTokenFile(dir / "token").ok());
}

}  // namespace
}  // namespace stave::server
