// Integration: concurrent streams through staved share engine steps (continuous batching), give
// the same tokens as a request alone, and return every KV block when they end, cancelled or not.
#include <future>
#include <thread>

#include "core/generate.h"
#include "tests/staved_process.h"

namespace stave {
namespace {

using testing::Request;
using testing::Staved;
using testing::Stream;

TEST(ServerBatching, ConcurrentStreamsShareStepsKeepTheirTokensAndFreeTheirBlocks) {
  Staved server({"--model=" + testing::SlowModelDir(), "--tokenizer=", "--max-batch-tokens=32"});
  ASSERT_FALSE(server.address().empty());
  auto model = *Model::Load(testing::SlowModelDir());
  const std::vector<std::string> prompts = {"Once upon a time", "The dog", "A long time ago, in a small town by the sea",
                                            "Lily"};
  std::vector<std::future<testing::Streamed>> streams;
  for (const auto& p : prompts)
    streams.push_back(std::async(std::launch::async, [&, p] { return Stream(*server.Stub(), Request(p, 60)); }));
  // One more, cancelled part-way: its blocks must come back too.
  grpc::ClientContext cancelled;
  auto reader = server.Stub()->Generate(&cancelled, Request("Cancel me", 400));
  stave::v1::GenerateResponse first;
  ASSERT_TRUE(reader->Read(&first));
  cancelled.TryCancel();
  reader->Finish();
  for (size_t i = 0; i < prompts.size(); ++i) {
    auto out = streams[i].get();
    ASSERT_TRUE(out.status.ok()) << out.status.error_message();
    GenerationParams params;
    params.max_tokens = 60;
    params.sampling.temperature = 0;
    auto alone = Generate(*model, prompts[i], params);
    EXPECT_EQ(out.tokens, alone->token_ids) << prompts[i];
  }
  // Batched: on average more than one row per engine step.
  const double rows = server.Metric("stave_batch_rows_sum"), steps = server.Metric("stave_batch_rows_count");
  EXPECT_GT(rows / steps, 1.5) << rows << " rows in " << steps << " steps";
  EXPECT_GT(server.Metric("stave_kv_cache_capacity_blocks"), 0);
  EXPECT_TRUE(Staved::Eventually([&] { return server.Metric("stave_kv_cache_used_blocks") == 0; }))
      << server.Metric("stave_kv_cache_used_blocks") << " blocks still held";
  EXPECT_EQ(server.Metric("stave_active_sequences"), 0);
}

TEST(ServerBatching, ARequestThatCanNeverFitIsRefusedNamingNeedAndPool) {
  Staved server({"--model=" + testing::SlowModelDir(), "--tokenizer=", "--kv-cache-mb=2"});
  ASSERT_FALSE(server.address().empty());
  auto request = Request("Once upon a time", 900);
  request.mutable_position()->set_mode(stave::v1::POSITION_MODE_BUCKETS);
  for (int i = 0; i < 8; ++i) request.mutable_position()->add_bases(10000 + 1000 * i);
  auto out = Stream(*server.Stub(), request);
  EXPECT_EQ(out.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(out.status.error_message(), ::testing::HasSubstr("--kv-cache-mb"));
  EXPECT_TRUE(Stream(*server.Stub(), Request("Once upon a time", 4)).status.ok());  // a small one fits
}

}  // namespace
}  // namespace stave
