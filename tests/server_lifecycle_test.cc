// Integration: cancellation, admission limits and shutdown of a staved child process on loopback.
#include <fstream>
#include <iterator>
#include <thread>

#include "core/compute_threads.h"
#include "tests/staved_process.h"

namespace stave {
namespace {

// Streams that must still be running while a test acts run on testing::SlowModelDir().
using testing::OpenStream;
using testing::Request;
using testing::SlowRequest;
using testing::Staved;
using testing::Stream;

class LifecycleTest : public ::testing::Test {
 protected:
  void SetUp() override { SKIP_UNLESS_SHARED(testing::kStoriesModel); }
};

TEST_F(LifecycleTest, CancellationReturnsActiveSequencesToZero) {
  Staved server({"--model=" + testing::SlowModelDir(), "--tokenizer="});
  ASSERT_FALSE(server.address().empty());
  auto stub = server.Stub();
  OpenStream stream;
  ASSERT_TRUE(stream.Start(*stub, SlowRequest()));
  EXPECT_EQ(server.Metric("stave_active_sequences"), 1);
  stream.context.TryCancel();
  EXPECT_EQ(stream.reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_TRUE(Staved::Eventually([&] { return server.Metric("stave_active_sequences") == 0; }))
      << "the cancelled sequence is still running";
  EXPECT_TRUE(Staved::Eventually(
      [&] { return server.Metric("stave_requests_total{code=\"CANCELLED\",method=\"Generate\",transport=\"grpc\"}") == 1; }));
  // A deadline is a cancellation too.
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(300));
  auto reader = stub->Generate(&context, SlowRequest());
  stave::v1::GenerateResponse msg;
  while (reader->Read(&msg)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_TRUE(Staved::Eventually([&] { return server.Metric("stave_active_sequences") == 0; }));
}

TEST_F(LifecycleTest, AFullQueueIsResourceExhausted) {
  Staved server({"--model=" + testing::SlowModelDir(), "--tokenizer=", "--max-active=1", "--queue-size=1"});
  ASSERT_FALSE(server.address().empty());
  auto stub = server.Stub();
  OpenStream running, waiting;
  ASSERT_TRUE(running.Start(*stub, SlowRequest()));
  waiting.reader = stub->Generate(&waiting.context, SlowRequest());
  ASSERT_TRUE(Staved::Eventually([&] { return server.Metric("stave_queue_depth") == 1; }));
  auto refused = Stream(*stub, Request("Hello", 5));
  EXPECT_EQ(refused.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(refused.status.error_message(), ::testing::HasSubstr("--queue-size"));
  running.context.TryCancel();
  waiting.context.TryCancel();
  running.reader->Finish();
  waiting.reader->Finish();
  EXPECT_TRUE(Staved::Eventually([&] { return server.Metric("stave_active_sequences") == 0; }));
  // Room again.
  EXPECT_TRUE(Stream(*stub, Request("Hello", 5)).status.ok());
}

TEST_F(LifecycleTest, SigtermLetsRunningStreamsFinishAndExitsZero) {
  // A grace period far above the stream's time: 300 tokens took ~90 s under ASan on a loaded
  // machine (`make sanitize`); staved exits as soon as the stream is done.
  Staved server({"--model=" + testing::SlowModelDir(), "--tokenizer=", "--grace-seconds=300"});
  ASSERT_FALSE(server.address().empty());
  auto stub = server.Stub();
  OpenStream stream;
  ASSERT_TRUE(stream.Start(*stub, SlowRequest(300)));
  kill(server.pid(), SIGTERM);
  // New calls are refused once shutdown has begun.
  EXPECT_TRUE(Staved::Eventually([&] { return !Stream(*server.Stub(), Request("Hello", 5)).status.ok(); }));
  int tokens = stream.first.has_token_id() ? 1 : 0;
  std::string finish;
  stave::v1::FinishReason finish_enum = stave::v1::FINISH_REASON_UNSPECIFIED;
  stave::v1::GenerateResponse msg;
  while (stream.reader->Read(&msg)) {
    tokens += msg.has_token_id() ? 1 : 0;
    if (!msg.finish_reason().empty()) finish = msg.finish_reason();
    if (msg.finish() != stave::v1::FINISH_REASON_UNSPECIFIED) finish_enum = msg.finish();
  }
  EXPECT_TRUE(stream.reader->Finish().ok());
  EXPECT_EQ(finish, "length");
  EXPECT_EQ(finish_enum, stave::v1::FINISH_REASON_LENGTH);
  EXPECT_EQ(tokens, 300);
  const int status = server.Wait();
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST_F(LifecycleTest, SigtermWhenIdleExitsZero) {
  Staved server;
  ASSERT_FALSE(server.address().empty());
  kill(server.pid(), SIGTERM);
  const int status = server.Wait();
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

// libgomp's default spin-wait collapses decode when another process shares the cores, so staved
// runs itself again with a short spin (core/compute_threads.h) unless the user chose a policy.
TEST_F(LifecycleTest, RunsWithAShortOpenMpSpinUnlessTheUserChoseOne) {
  Staved server;
  ASSERT_FALSE(server.address().empty());
  std::ifstream in("/proc/" + std::to_string(server.pid()) + "/environ");
  std::string environ((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const char* user_spin = std::getenv("GOMP_SPINCOUNT");
  if (user_spin != nullptr) {
    EXPECT_THAT(environ, ::testing::HasSubstr(std::string("GOMP_SPINCOUNT=") + user_spin));
  } else if (std::getenv("OMP_WAIT_POLICY") != nullptr) {
    EXPECT_THAT(environ, ::testing::Not(::testing::HasSubstr("GOMP_SPINCOUNT=")));
  } else {
    EXPECT_THAT(environ, ::testing::HasSubstr("GOMP_SPINCOUNT=" + std::to_string(kOpenMpSpinCount)));
  }
}

// grpc.health.v1 answers SERVING, as `stave health` (the container HEALTHCHECK) reports it.
TEST_F(LifecycleTest, HealthIsServing) {
  Staved server;
  ASSERT_FALSE(server.address().empty());
  const auto stave = std::filesystem::read_symlink("/proc/self/exe").parent_path() / "stave";
  auto run = [&](const std::string& address) {
    std::string output;
    FILE* pipe = popen((stave.string() + " health --server " + address + " --timeout 5 2>&1").c_str(), "r");
    char buffer[256];
    while (fgets(buffer, sizeof buffer, pipe) != nullptr) output += buffer;
    const int status = pclose(pipe);
    return std::make_pair(WEXITSTATUS(status), output);
  };
  auto [code, output] = run(server.address());
  EXPECT_EQ(code, 0) << output;
  EXPECT_THAT(output, ::testing::HasSubstr("SERVING"));
  kill(server.pid(), SIGTERM);
  server.Wait();
  std::tie(code, output) = run(server.address());  // nobody there any more
  EXPECT_NE(code, 0) << output;
}

}  // namespace
}  // namespace stave
