// Integration: request ids in gRPC metadata, the per-request log line (--log-json) and the
// metric names dashboards rely on, against a staved child process on a loopback ephemeral port.
#include <fstream>
#include <regex>

#include <nlohmann/json.hpp>

#include "tests/staved_process.h"

namespace stave {
namespace {

using testing::Request;
using testing::Staved;

class ObservabilityTest : public ::testing::Test {
 protected:
  void SetUp() override { SKIP_UNLESS_SHARED(testing::kStoriesModel); }
};

// The x-request-id of a call's initial metadata ("" when absent).
std::string RequestIdOf(const grpc::ClientContext& context) {
  const auto& metadata = context.GetServerInitialMetadata();
  auto it = metadata.find("x-request-id");
  return it == metadata.end() ? "" : std::string(it->second.data(), it->second.size());
}

// A Generate stream read to its end; returns the request id staved sent back.
std::string GenerateWithId(stave::v1::Inference::Stub& stub, const std::string& client_id, grpc::Status* status) {
  grpc::ClientContext context;
  if (!client_id.empty()) context.AddMetadata("x-request-id", client_id);
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  auto reader = stub.Generate(&context, Request("Once upon a time", 12));
  stave::v1::GenerateResponse msg;
  while (reader->Read(&msg)) {
  }
  *status = reader->Finish();
  return RequestIdOf(context);
}

TEST_F(ObservabilityTest, RequestIdsComeBackInGrpcMetadata) {
  Staved server;
  ASSERT_FALSE(server.address().empty());
  auto stub = server.Stub();
  grpc::Status status;
  EXPECT_EQ(GenerateWithId(*stub, "client-id_1.x", &status), "client-id_1.x");
  EXPECT_TRUE(status.ok()) << status.error_message();
  const std::string generated = GenerateWithId(*stub, "", &status);
  EXPECT_TRUE(std::regex_match(generated, std::regex("[0-9a-f]{16}"))) << generated;
  const std::string replaced = GenerateWithId(*stub, std::string(65, 'a'), &status);
  EXPECT_TRUE(std::regex_match(replaced, std::regex("[0-9a-f]{16}"))) << "a 65-character id is replaced: " << replaced;
  EXPECT_NE(GenerateWithId(*stub, "", &status), generated);

  // Refused and unary calls too.
  grpc::Status refused;
  {
    grpc::ClientContext context;
    context.AddMetadata("x-request-id", "refused-1");
    auto request = Request("Once", 0);
    request.set_temperature(-1);  // invalid
    auto reader = stub->Generate(&context, request);
    stave::v1::GenerateResponse msg;
    while (reader->Read(&msg)) {
    }
    refused = reader->Finish();
    EXPECT_EQ(RequestIdOf(context), "refused-1");
  }
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  grpc::ClientContext context;
  context.AddMetadata("x-request-id", "tok-7");
  stave::v1::TokenizeRequest tokenize;
  tokenize.set_text("Hello");
  stave::v1::TokenizeResponse tokens;
  ASSERT_TRUE(stub->Tokenize(&context, tokenize, &tokens).ok());
  EXPECT_EQ(RequestIdOf(context), "tok-7");
  grpc::ClientContext score_context;
  stave::v1::ScoreRequest score;
  score.set_prompt("Once upon a time");
  score.set_continuation(" there");
  stave::v1::ScoreResponse scored;
  ASSERT_TRUE(stub->Score(&score_context, score, &scored).ok());
  EXPECT_TRUE(std::regex_match(RequestIdOf(score_context), std::regex("[0-9a-f]{16}")));
}

TEST_F(ObservabilityTest, MetricsFollowPrometheusNames) {
  Staved server;
  ASSERT_FALSE(server.address().empty());
  auto stub = server.Stub();
  auto done = testing::Stream(*stub, Request("Once upon a time", 7));
  ASSERT_TRUE(done.status.ok());
  ASSERT_EQ(done.finish_reason, "length");
  const auto tokenized = [&] {
    grpc::ClientContext context;
    stave::v1::TokenizeRequest request;
    request.set_text("Once upon a time");
    stave::v1::TokenizeResponse response;
    return stub->Tokenize(&context, request, &response).ok() ? response.token_ids_size() : -1;
  }();
  ASSERT_GT(tokenized, 0);
  // The finish line is counted just before the last message goes out.
  EXPECT_TRUE(Staved::Eventually(
      [&] { return server.Metric("stave_generations_total{finish_reason=\"length\",transport=\"grpc\"}") == 1; }));
  EXPECT_EQ(server.Metric("stave_requests_total{code=\"OK\",method=\"Generate\",transport=\"grpc\"}"), 1);
  EXPECT_EQ(server.Metric("stave_requests_total{code=\"OK\",method=\"Tokenize\",transport=\"grpc\"}"), 1);
  EXPECT_EQ(server.Metric("stave_request_duration_seconds_count{method=\"Generate\",transport=\"grpc\"}"), 1);
  EXPECT_GT(server.Metric("stave_request_duration_seconds_sum{method=\"Generate\",transport=\"grpc\"}"), 0);
  EXPECT_EQ(server.Metric("stave_prompt_tokens_count"), 1);
  // BOS + the prompt's tokens: what Tokenize (with add_bos, its default) counts.
  grpc::ClientContext context;
  stave::v1::TokenizeRequest with_bos;
  with_bos.set_text("Once upon a time");
  with_bos.set_add_bos(true);
  stave::v1::TokenizeResponse bos_tokens;
  ASSERT_TRUE(stub->Tokenize(&context, with_bos, &bos_tokens).ok());
  EXPECT_EQ(server.Metric("stave_prompt_tokens_sum"), bos_tokens.token_ids_size());
  EXPECT_EQ(server.Metric("stave_queue_time_seconds_count"), 1);
  EXPECT_GT(server.Metric("stave_kv_cache_capacity_blocks"), 0);
  EXPECT_EQ(server.Metric("stave_kv_cache_used_blocks"), 0);
  // Renamed: a gauge does not end in _total.
  EXPECT_EQ(server.Metric("stave_kv_blocks_total"), -1);
  EXPECT_EQ(server.Metric("stave_kv_blocks_used"), -1);
  // What `staved --version` prints, as labels.
  const auto [code, version] = testing::RunStavedToExit({"--version"});
  std::smatch m;
  ASSERT_TRUE(std::regex_search(version, m, std::regex(R"(staved (\S+) \((\S+) build\))"))) << version;
  EXPECT_EQ(server.Metric("stave_build_info{build_type=\"" + m[2].str() + "\",version=\"" + m[1].str() + "\"}"), 1);
}

TEST_F(ObservabilityTest, JsonLogLineOfAFinishedRequestHasItsFields) {
  testing::TempDir dir;
  const std::string log_path = dir / "staved.log";
  {
    Staved server({"--log-json"}, false, log_path);
    ASSERT_FALSE(server.address().empty());
    grpc::Status status;
    GenerateWithId(*server.Stub(), "log-me-1", &status);
    ASSERT_TRUE(status.ok());
  }  // stopped: its log is complete
  std::ifstream log(log_path);
  nlohmann::json finished;
  int lines = 0;
  for (std::string line; std::getline(log, line); ++lines) {
    auto parsed = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    ASSERT_TRUE(parsed.is_object()) << "not a JSON object: " << line;
    if (parsed.value("request_id", "") == "log-me-1") finished = parsed;
  }
  ASSERT_GT(lines, 1);
  ASSERT_TRUE(finished.is_object()) << "no log line for request log-me-1";
  EXPECT_EQ(finished["message"], "request finished");
  EXPECT_EQ(finished["level"], "info");
  EXPECT_EQ(finished["method"], "Generate");
  EXPECT_EQ(finished["transport"], "grpc");
  EXPECT_THAT(finished["peer"].get<std::string>(), ::testing::HasSubstr("127.0.0.1"));
  EXPECT_EQ(finished["code"], "OK");
  EXPECT_GT(finished["prompt_tokens"].get<int>(), 1);
  EXPECT_EQ(finished["generated_tokens"], 12);
  EXPECT_EQ(finished["finish_reason"], "length");
  EXPECT_EQ(finished["config_version"], 1);
  const double queue = finished["queue_seconds"], ttft = finished["ttft_seconds"],
               duration = finished["duration_seconds"];
  EXPECT_GE(queue, 0);
  EXPECT_LE(queue, ttft);
  EXPECT_LE(ttft, duration);
  EXPECT_GT(duration, 0);
}

}  // namespace
}  // namespace stave
