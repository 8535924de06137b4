// Integration: the Config service, write authorisation and the --config file, against a staved
// child process on loopback.
#include <fstream>
#include <thread>

#include "core/generate.h"
#include "tests/staved_process.h"

namespace stave {
namespace {

using testing::Request;
using testing::Staved;
using testing::Stream;

stave::v1::PositionConfig GetConfig(const Staved& server) {
  stave::v1::PositionConfig config;
  grpc::ClientContext context;
  EXPECT_TRUE(server.ConfigStub()->GetConfig(&context, {}, &config).ok());
  return config;
}

grpc::Status Update(const Staved& server, const stave::v1::UpdateConfigRequest& request,
                    stave::v1::PositionConfig* out = nullptr, const std::string& token = "") {
  stave::v1::PositionConfig ignored;
  grpc::ClientContext context;
  if (!token.empty()) context.AddMetadata("authorization", "Bearer " + token);
  return server.ConfigStub()->UpdateConfig(&context, request, out != nullptr ? out : &ignored);
}

stave::v1::UpdateConfigRequest Buckets(std::vector<double> bases) {
  stave::v1::UpdateConfigRequest request;
  request.set_mode(stave::v1::POSITION_MODE_BUCKETS);
  for (double b : bases) request.add_bases(b);
  return request;
}

class ConfigServerTest : public ::testing::Test {
 protected:
  void SetUp() override { SKIP_UNLESS_SHARED(testing::kStoriesModel); }
};

TEST_F(ConfigServerTest, AnUpdateDuringAStreamLeavesItOnItsVersion) {
  // The slow model: stories260K finished its 16-bucket stream before the update on a fast host.
  Staved server({"--model=" + testing::SlowModelDir(), "--tokenizer="});
  ASSERT_FALSE(server.address().empty());
  EXPECT_EQ(GetConfig(server).version(), 1u);
  // Sixteen buckets make the stream slow enough to still be running when the update lands.
  stave::v1::PositionConfig applied;
  ASSERT_TRUE(Update(server, Buckets(std::vector<double>(16, 10000)), &applied).ok());
  EXPECT_EQ(applied.version(), 2u);
  auto stub = server.Stub();
  bool updated_while_running = false;
  auto during = Stream(*stub, Request("Once upon a time", 200), [&](const stave::v1::GenerateResponse&) {
    if (updated_while_running) return;
    stave::v1::UpdateConfigRequest vanilla;
    vanilla.set_mode(stave::v1::POSITION_MODE_VANILLA);
    ASSERT_TRUE(Update(server, vanilla).ok());
    updated_while_running = server.Metric("stave_active_sequences") == 1;
    ASSERT_TRUE(updated_while_running) << "the stream ended before the update; the test proves nothing";
  });
  ASSERT_TRUE(during.status.ok()) << during.status.error_message();
  EXPECT_EQ(during.config_version, 2u);
  // 16 copies of the model's own base generate exactly what vanilla does.
  auto model = *Model::Load(testing::SlowModelDir());
  GenerationParams params;
  params.max_tokens = 200;
  params.sampling.temperature = 0;
  auto local = Generate(*model, "Once upon a time", params);
  EXPECT_EQ(during.tokens, local->token_ids);
  auto after = Stream(*stub, Request("Once upon a time", 10));
  EXPECT_EQ(after.config_version, 3u);
  EXPECT_EQ(server.Metric("stave_config_version"), 3);
}

TEST_F(ConfigServerTest, InvalidUpdatesChangeNothing) {
  Staved server;
  ASSERT_TRUE(Update(server, Buckets({10000, 20000})).ok());
  const auto before = GetConfig(server);
  auto expect = [&](const stave::v1::UpdateConfigRequest& request, grpc::StatusCode code, const std::string& field) {
    auto status = Update(server, request);
    EXPECT_EQ(status.error_code(), code) << field << ": " << status.error_message();
    EXPECT_THAT(status.error_message(), ::testing::HasSubstr(field));
    EXPECT_EQ(GetConfig(server).DebugString(), before.DebugString()) << field;
  };
  expect(Buckets({10000, std::nan("")}), grpc::StatusCode::INVALID_ARGUMENT, "bases");
  expect(Buckets(std::vector<double>(17, 20000)), grpc::StatusCode::INVALID_ARGUMENT, "bases");
  stave::v1::UpdateConfigRequest moice;
  moice.set_mode(stave::v1::POSITION_MODE_MOICE);
  moice.add_expert_bases(10000);
  moice.add_expert_bases(20000);
  moice.set_router_path("/nonexistent/router.safetensors");
  expect(moice, grpc::StatusCode::INVALID_ARGUMENT, "router_path");
  auto stale = Buckets({10000, 30000});
  stale.set_expected_version(1);
  expect(stale, grpc::StatusCode::FAILED_PRECONDITION, "expected_version");
  // The right version applies.
  stale.set_expected_version(before.version());
  stave::v1::PositionConfig applied;
  ASSERT_TRUE(Update(server, stale, &applied).ok());
  EXPECT_EQ(applied.version(), before.version() + 1);
}

TEST_F(ConfigServerTest, BucketCountAloneRunsTheBaseSearch) {
  Staved server;
  stave::v1::UpdateConfigRequest request;
  request.set_mode(stave::v1::POSITION_MODE_BUCKETS);
  request.set_bucket_count(4);
  stave::v1::PositionConfig applied;
  ASSERT_TRUE(Update(server, request, &applied).ok());
  ASSERT_EQ(applied.bases_size(), 4);
  stave::v1::SearchBasesRequest search;
  search.set_count(4);
  stave::v1::SearchBasesResponse searched;
  grpc::ClientContext context;
  ASSERT_TRUE(server.ConfigStub()->SearchBases(&context, search, &searched).ok());
  EXPECT_EQ(std::vector<double>(applied.bases().begin(), applied.bases().end()),
            std::vector<double>(searched.bases().begin(), searched.bases().end()));
  EXPECT_EQ(applied.bases(0), 10000);
}

TEST_F(ConfigServerTest, WritesNeedTheTokenWhenOneIsConfigured) {
  testing::TempDir dir;
  { std::ofstream(dir / "token") << "s3cret\n"; }
  Staved server({"--admin-token-file=" + (dir / "token")});
  ASSERT_FALSE(server.address().empty());
  auto missing = Update(server, Buckets({10000, 20000}));
  EXPECT_EQ(missing.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(missing.error_message(), ::testing::HasSubstr("Bearer"));
  EXPECT_EQ(Update(server, Buckets({10000, 20000}), nullptr, "guess").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(GetConfig(server).version(), 1u);  // reads need no token
  EXPECT_TRUE(Update(server, Buckets({10000, 20000}), nullptr, "s3cret").ok());
  EXPECT_EQ(GetConfig(server).version(), 2u);
}

TEST_F(ConfigServerTest, TheConfigFileIsReloadedAndABadOneIsRejected) {
  testing::TempDir dir;
  const std::string file = dir / "position.json";
  auto write = [&](const std::string& text) {
    // Write-then-rename, as a ConfigMap update does: the watcher never sees half a file.
    { std::ofstream(file + ".tmp") << text; }
    std::filesystem::rename(file + ".tmp", file);
  };
  write(R"({"mode": "buckets", "bases": [10000, 20000]})");
  Staved server({"--config=" + file, "--config-poll-ms=50"});
  ASSERT_FALSE(server.address().empty());
  auto config = GetConfig(server);
  EXPECT_EQ(config.mode(), stave::v1::POSITION_MODE_BUCKETS);
  EXPECT_EQ(config.bases_size(), 2);
  EXPECT_EQ(config.config_file(), file);
  EXPECT_EQ(config.config_file_error(), "");
  const uint64_t first = config.version();

  write("mode: moice\nexpert_bases: [10000, 20000]\ntop_k: 1\n");  // YAML this time
  ASSERT_TRUE(Staved::Eventually([&] { return GetConfig(server).mode() == stave::v1::POSITION_MODE_MOICE; }));
  EXPECT_EQ(GetConfig(server).version(), first + 1);
  EXPECT_EQ(Stream(*server.Stub(), Request("Once upon a time", 5)).config_version, first + 1);

  write("mode: sideways\n");
  ASSERT_TRUE(Staved::Eventually([&] { return !GetConfig(server).config_file_error().empty(); }));
  config = GetConfig(server);
  EXPECT_THAT(config.config_file_error(), ::testing::HasSubstr("mode"));
  EXPECT_EQ(config.version(), first + 1);  // the old config stays in force
  EXPECT_EQ(config.mode(), stave::v1::POSITION_MODE_MOICE);
  EXPECT_EQ(server.Metric("stave_config_file_errors_total"), 1);
  EXPECT_EQ(server.Metric("stave_config_file_ok"), 0);

  write("mode: vanilla\n");
  ASSERT_TRUE(Staved::Eventually([&] { return GetConfig(server).config_file_error().empty(); }));
  EXPECT_EQ(GetConfig(server).mode(), stave::v1::POSITION_MODE_VANILLA);
  EXPECT_EQ(server.Metric("stave_config_file_ok"), 1);
}

TEST_F(ConfigServerTest, ABadConfigFileAtStartStopsStaved) {
  testing::TempDir dir;
  { std::ofstream(dir / "bad.yaml") << "bases: [10000, -1]\nmode: buckets\n"; }
  Staved server({"--config=" + (dir / "bad.yaml")});
  EXPECT_TRUE(server.address().empty());
  const int status = server.Wait();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) != 0);
}

}  // namespace
}  // namespace stave
