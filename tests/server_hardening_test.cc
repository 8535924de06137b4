// Integration: a hostile client or a careless operator against a staved child process on
// loopback (issue #16). Each test is one finding of the probe: it failed before the fix.
#include <sys/stat.h>

#include <fstream>
#include <future>
#include <optional>
#include <thread>

#include "tests/sentencepiece_skip.h"
#include "tests/staved_process.h"

namespace stave {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using testing::OpenStream;
using testing::Request;
using testing::RunStavedToExit;
using testing::SlowRequest;
using testing::Staved;
using testing::Stream;
using testing::TempDir;

class HardeningTest : public ::testing::Test {
 protected:
  void SetUp() override { SKIP_UNLESS_SHARED(testing::kStoriesModel); }
};

std::vector<std::string> StoriesArgs() {
  return {"--model=" + testing::SharedPath(testing::kStoriesModel),
          "--tokenizer=" + testing::SharedPath(testing::kStoriesTokenizer)};
}

stave::v1::PositionConfig MoiceNaming(const std::string& router_path, const std::string& router) {
  stave::v1::PositionConfig p;
  p.set_mode(stave::v1::POSITION_MODE_MOICE);
  p.add_expert_bases(10000);
  p.set_router_path(router_path);
  p.set_router(router);
  return p;
}

TEST_F(HardeningTest, ARequestCannotMakeTheServerOpenAFileItNames) {
  TempDir dir;
  const std::string secret = dir / "admin-token";
  std::ofstream(secret) << "s3cr3t-token-value";
  Staved server;
  ASSERT_FALSE(server.address().empty());
  auto stub = server.Stub();
  auto expect_refused = [&](const grpc::Status& status, const std::string& field) {
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
    EXPECT_THAT(status.error_message(), HasSubstr(field));
    // Nothing of the file: not its first bytes (as a "header length"), its size or its path.
    EXPECT_THAT(status.error_message(), Not(HasSubstr("s3cr")));
    EXPECT_THAT(status.error_message(), Not(HasSubstr("8371475046662878067")));  // "s3cr3t-t" as a length
    EXPECT_THAT(status.error_message(), Not(HasSubstr(dir.path())));
  };
  for (const auto& [path, name] : std::vector<std::pair<std::string, std::string>>{
           {secret, ""}, {"", "../../" + secret}, {"", secret}}) {
    auto request = Request("Once upon a time", 4);
    *request.mutable_position() = MoiceNaming(path, name);
    expect_refused(Stream(*stub, request).status, path.empty() ? "router" : "router_path");

    stave::v1::ScoreRequest score;
    score.set_prompt("Once upon a time");
    score.set_continuation(" there");
    *score.mutable_position() = MoiceNaming(path, name);
    stave::v1::ScoreResponse scored;
    grpc::ClientContext score_context;
    expect_refused(stub->Score(&score_context, score, &scored), path.empty() ? "router" : "router_path");

    stave::v1::UpdateConfigRequest update;
    update.set_mode(stave::v1::POSITION_MODE_MOICE);
    update.add_expert_bases(10000);
    if (!path.empty()) update.set_router_path(path);
    else update.set_router(name);
    stave::v1::PositionConfig applied;
    grpc::ClientContext update_context;
    expect_refused(server.ConfigStub()->UpdateConfig(&update_context, update, &applied),
                   path.empty() ? "router" : "router_path");
  }
  stave::v1::PositionConfig config;
  grpc::ClientContext context;
  ASSERT_TRUE(server.ConfigStub()->GetConfig(&context, {}, &config).ok());
  EXPECT_EQ(config.version(), 1u);  // no refused update changed anything
}

TEST(HardeningDefaultModel, AnswersNameModelsAndRoutersNeverServerPaths) {
  SKIP_UNLESS_SENTENCEPIECE();  // models/default/tokenizer.model
  Staved server({}, /*default_model=*/true);
  ASSERT_FALSE(server.address().empty());
  auto stub = server.Stub();
  stave::v1::ModelInfo info;
  grpc::ClientContext info_context;
  ASSERT_TRUE(stub->GetModelInfo(&info_context, {}, &info).ok());
  EXPECT_EQ(info.path(), "default");
  EXPECT_THAT(std::vector<std::string>(info.routers().begin(), info.routers().end()), ::testing::Contains("router"));
  stave::v1::PositionConfig config;
  grpc::ClientContext context;
  ASSERT_TRUE(server.ConfigStub()->GetConfig(&context, {}, &config).ok());
  EXPECT_EQ(config.router(), "router");
  EXPECT_EQ(config.router_path(), "");

  // A request may name the router; an unknown name is told what exists.
  auto request = Request("Find the value of the query key.", 2);
  *request.mutable_position() = MoiceNaming("", "router");
  request.mutable_position()->clear_expert_bases();
  for (double b : config.expert_bases()) request.mutable_position()->add_expert_bases(b);
  auto ok = Stream(*stub, request);
  EXPECT_TRUE(ok.status.ok()) << ok.status.error_message();
  request.mutable_position()->set_router("nope");
  auto unknown = Stream(*stub, request);
  EXPECT_EQ(unknown.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(unknown.status.error_message(), HasSubstr("available: router"));
}

TEST(HardeningDefaultModel, TokenizeAnswersValidUtf8ForBytePieces) {
  SKIP_UNLESS_SENTENCEPIECE();  // models/default/tokenizer.model
  Staved server({}, /*default_model=*/true);
  ASSERT_FALSE(server.address().empty());
  stave::v1::TokenizeRequest request;
  request.set_text("hello world");  // byte-fallback pieces in the default model's vocabulary
  stave::v1::TokenizeResponse response;
  grpc::ClientContext context;
  // Invalid UTF-8 in a string field fails the client's parse ("Exception deserializing").
  auto status = server.Stub()->Tokenize(&context, request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.pieces_size(), response.token_ids_size());
  EXPECT_GT(response.token_ids_size(), 0);
}

TEST_F(HardeningTest, BaseSearchIsBoundedAndRunsOffTheRequestThreads) {
  Staved server;
  ASSERT_FALSE(server.address().empty());
  auto config = server.ConfigStub();
  auto search = [&](double min, double max, double step, stave::v1::SearchBasesResponse* out) {
    stave::v1::SearchBasesRequest request;
    request.set_count(16);
    request.set_min_base(min);
    request.set_max_base(max);
    request.set_step(step);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    return config->SearchBases(&context, request, out);
  };
  stave::v1::SearchBasesResponse response;
  // 1e16 + 0.5 == 1e16: this never ended and held a request thread; two froze the server.
  const auto start = std::chrono::steady_clock::now();
  auto frozen = search(1e16, 1e16 + 2, 0.5, &response);
  EXPECT_EQ(frozen.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(frozen.error_message(), HasSubstr("precision"));
  auto huge = search(10000, 1e9, 1, &response);
  EXPECT_EQ(huge.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(huge.error_message(), HasSubstr("1000 candidates"));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));

  // The largest allowed search runs while other calls keep being answered.
  auto largest = std::async(std::launch::async, [&] {
    stave::v1::SearchBasesResponse out;
    return search(10000, 10000 + 999 * 20.0, 20, &out);
  });
  for (int i = 0; i < 5; ++i) {
    stave::v1::ModelInfo info;
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    EXPECT_TRUE(server.Stub()->GetModelInfo(&context, {}, &info).ok());
  }
  auto status = largest.get();
  EXPECT_TRUE(status.ok() || status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) << status.error_message();
}

TEST_F(HardeningTest, OversizedRequestsAreRefusedBeforeAnyWork) {
  Staved server;
  ASSERT_FALSE(server.address().empty());
  auto stub = server.Stub();
  const std::string huge((1 << 20) + 1, 'a');
  auto big_prompt = Stream(*stub, Request(huge, 1));
  EXPECT_EQ(big_prompt.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(big_prompt.status.error_message(), HasSubstr("prompt: 1048577 bytes"));

  stave::v1::TokenizeRequest tokenize;
  tokenize.set_text(huge);
  stave::v1::TokenizeResponse tokens;
  grpc::ClientContext tokenize_context;
  EXPECT_EQ(stub->Tokenize(&tokenize_context, tokenize, &tokens).error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  stave::v1::ScoreRequest score;
  score.set_prompt("Once");
  score.set_continuation(huge);
  stave::v1::ScoreResponse scored;
  grpc::ClientContext score_context;
  auto status = stub->Score(&score_context, score, &scored);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("continuation"));

  auto many_stops = Request("Once upon a time", 4);
  for (int i = 0; i < 17; ++i) many_stops.add_stop("x" + std::to_string(i));
  auto refused = Stream(*stub, many_stops);
  EXPECT_EQ(refused.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(refused.status.error_message(), HasSubstr("stop: 17 stop strings"));
  auto long_stop = Request("Once upon a time", 4);
  long_stop.add_stop(std::string(300, 'x'));
  EXPECT_EQ(Stream(*stub, long_stop).status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  // A 100 KB prompt is tokenised in linear time and refused for the context, quickly.
  const auto start = std::chrono::steady_clock::now();
  std::string long_text;
  while (long_text.size() < 100000) long_text += "Once upon a time, there was a little girl. ";
  auto too_long = Stream(*stub, Request(long_text, 1));
  EXPECT_EQ(too_long.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(too_long.status.error_message(), HasSubstr("context"));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
}

TEST_F(HardeningTest, TakenOrInvalidAddressesFailAtStartWithExitOne) {
  Staved first;
  ASSERT_FALSE(first.address().empty());
  auto args = StoriesArgs();
  auto with = [&](std::vector<std::string> extra) {
    auto all = args;
    all.insert(all.end(), extra.begin(), extra.end());
    return RunStavedToExit(all);
  };
  // The same gRPC port: gRPC's SO_REUSEPORT let a second server start and share the traffic.
  auto [code, output] = with({"--listen=" + first.address(), "--metrics-listen=127.0.0.1:0"});
  EXPECT_EQ(code, 1) << output;
  EXPECT_THAT(output, HasSubstr("--listen"));
  // The same metrics port: this aborted with std::system_error (exit 134), or shared the port.
  std::tie(code, output) =
      with({"--listen=127.0.0.1:0", "--metrics-listen=127.0.0.1:" + std::to_string(first.metrics_port())});
  EXPECT_EQ(code, 1) << output;
  EXPECT_THAT(output, HasSubstr("--metrics-listen"));
  // An impossible port: gRPC served on a random one.
  std::tie(code, output) = with({"--listen=127.0.0.1:99999", "--metrics-listen="});
  EXPECT_EQ(code, 1) << output;
  EXPECT_THAT(output, HasSubstr("0..65535"));
}

TEST_F(HardeningTest, StartupFlagsOutOfRangeAreOneLineErrors) {
  for (const auto& [flag, name] : std::vector<std::pair<std::string, std::string>>{
           {"--max-active=0", "--max-active"}, {"--queue-size=0", "--queue-size"},
           {"--threads=-1", "--threads"}, {"--kv-cache-mb=-5", "--kv-cache-mb"},
           {"--max-batch-tokens=0", "--max-batch-tokens"},
           {"--grace-seconds=-1", "--grace-seconds"}}) {
    auto args = StoriesArgs();
    args.insert(args.end(), {"--listen=127.0.0.1:0", "--metrics-listen=", flag});
    auto [code, output] = RunStavedToExit(args);
    EXPECT_EQ(code, 1) << flag << ": " << output;
    EXPECT_THAT(output, HasSubstr(name + ": must be in")) << output;
  }
}

TEST(HardeningFlags, HelpListsStavedsOwnFlags) {
  auto [code, output] = RunStavedToExit({"--help"});  // was "No flags matched"
  EXPECT_THAT(output, HasSubstr("--kv_cache_mb"));
  EXPECT_THAT(output, HasSubstr("--router_dir"));
  EXPECT_THAT(output, Not(HasSubstr("No flags matched")));
}

TEST_F(HardeningTest, AConfigFileThatIsNotARegularFileIsReportedNotApplied) {
  TempDir dir;
  const std::string file = dir / "position.yaml";
  std::ofstream(file) << "mode: buckets\nbases: [10000, 20000]\n";
  Staved server({"--config=" + file, "--config-poll-ms=50", "--grace-seconds=5"});
  ASSERT_FALSE(server.address().empty());
  auto get = [&] {
    stave::v1::PositionConfig config;
    grpc::ClientContext context;
    EXPECT_TRUE(server.ConfigStub()->GetConfig(&context, {}, &config).ok());
    return config;
  };
  const uint64_t version = get().version();
  ASSERT_EQ(get().mode(), stave::v1::POSITION_MODE_BUCKETS);
  auto replace = [&](const std::function<void()>& make, const std::string& what) {
    std::filesystem::remove_all(file);
    make();
    EXPECT_TRUE(Staved::Eventually([&] { return get().config_file_error().find(what) != std::string::npos; }))
        << what << ": " << get().config_file_error();
    const auto now = get();
    EXPECT_EQ(now.version(), version) << what;  // a directory read as empty reset it to vanilla
    EXPECT_EQ(now.mode(), stave::v1::POSITION_MODE_BUCKETS) << what;
    EXPECT_EQ(server.Metric("stave_config_file_ok"), 0) << what;
  };
  replace([&] { std::filesystem::create_directory(file); }, "a directory");
  replace([&] { std::filesystem::create_symlink("/dev/zero", file); }, "a device");
  replace([&] { ASSERT_EQ(mkfifo(file.c_str(), 0600), 0); }, "a FIFO");  // blocked the watcher
  // And SIGTERM still ends the process promptly (it never did with the watcher blocked).
  kill(server.pid(), SIGTERM);
  auto waited = std::async(std::launch::async, [&] { return server.Wait(); });
  ASSERT_EQ(waited.wait_for(std::chrono::seconds(20)), std::future_status::ready);
  const int status = waited.get();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

TEST_F(HardeningTest, RequestsThatExpireWhileQueuedLeaveTheQueueAtOnce) {
  Staved server({"--model=" + testing::SlowModelDir(), "--tokenizer=", "--max-active=1", "--queue-size=2"});
  ASSERT_FALSE(server.address().empty());
  auto stub = server.Stub();
  OpenStream running;
  ASSERT_TRUE(running.Start(*stub, SlowRequest()));
  auto expiring = [&] {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(300));
    auto reader = stub->Generate(&context, Request("Hello", 5));
    stave::v1::GenerateResponse msg;
    while (reader->Read(&msg)) {
    }
    return reader->Finish().error_code();
  };
  auto a = std::async(std::launch::async, expiring), b = std::async(std::launch::async, expiring);
  EXPECT_EQ(a.get(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_EQ(b.get(), grpc::StatusCode::DEADLINE_EXCEEDED);
  // The slots must be free now, not when the engine reaches the dead requests (before the fix:
  // when the slow stream ended, 3.6 s later).
  EXPECT_TRUE(Staved::Eventually([&] { return server.Metric("stave_queue_depth") == 0; },
                                 std::chrono::milliseconds(1000)));
  EXPECT_NE(expiring(), grpc::StatusCode::RESOURCE_EXHAUSTED);  // admitted (then expired)
  ASSERT_EQ(server.Metric("stave_active_sequences"), 1) << "the slow stream ended early; the test proves nothing";
  running.context.TryCancel();
  running.reader->Finish();
}

TEST_F(HardeningTest, OutOfRangeTopKValuesAreHandledNotMisread) {
  Staved server;
  ASSERT_FALSE(server.address().empty());
  auto request = Request("Once upon a time", 4);
  request.set_temperature(1);
  request.set_top_k(3000000000u);  // read as a negative int before
  auto out = Stream(*server.Stub(), request);
  EXPECT_TRUE(out.status.ok()) << out.status.error_message();

  stave::v1::UpdateConfigRequest update;
  update.set_top_k(1048576);  // MoICE's K without any experts: stored before
  stave::v1::PositionConfig applied;
  grpc::ClientContext context;
  auto status = server.ConfigStub()->UpdateConfig(&context, update, &applied);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("expert_bases"));
}

TEST_F(HardeningTest, UnseededRequestsAreSeededRandomlySeededOnesRepeat) {
  Staved server;
  ASSERT_FALSE(server.address().empty());
  auto sampled = [&](std::optional<uint64_t> seed) {
    auto request = Request("Once upon a time", 24);
    request.set_temperature(1);
    if (seed) request.set_seed(*seed);
    auto out = Stream(*server.Stub(), request);
    EXPECT_TRUE(out.status.ok()) << out.status.error_message();
    return out.tokens;
  };
  // Three unseeded requests at temperature 1 all gave the same text before (seed 0 for all).
  const auto a = sampled(std::nullopt), b = sampled(std::nullopt), c = sampled(std::nullopt);
  EXPECT_FALSE(a == b && b == c);
  EXPECT_EQ(sampled(7), sampled(7));
  EXPECT_EQ(sampled(0), sampled(0));  // 0 given explicitly is a seed like any other
}

TEST_F(HardeningTest, TheBearerSchemeIsCaseInsensitive) {
  TempDir dir;
  std::ofstream(dir / "token") << "let-me-in\n";
  Staved server({"--admin-token-file=" + (dir / "token")});
  ASSERT_FALSE(server.address().empty());
  for (const std::string scheme : {"Bearer", "bearer", "BEARER"}) {
    stave::v1::UpdateConfigRequest update;
    update.set_mode(stave::v1::POSITION_MODE_VANILLA);
    stave::v1::PositionConfig applied;
    grpc::ClientContext context;
    context.AddMetadata("authorization", scheme + " let-me-in");
    auto status = server.ConfigStub()->UpdateConfig(&context, update, &applied);
    EXPECT_TRUE(status.ok()) << scheme << ": " << status.error_message();
  }
}

}  // namespace
}  // namespace stave
