// Integration: two staved replicas on loopback sharing one config file, reached by `stave` with
// client-side round robin over both addresses (what the headless Service does in Kubernetes).
#include <fstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "tests/staved_process.h"

namespace stave {
namespace {

using testing::Staved;

// Runs build/bin/stave with `args`; returns (exit code, stdout).
std::pair<int, std::string> RunStave(const std::string& args) {
  const auto stave = std::filesystem::read_symlink("/proc/self/exe").parent_path() / "stave";
  FILE* pipe = popen((stave.string() + " " + args + " 2>/dev/null").c_str(), "r");
  std::string out;
  char buffer[4096];
  while (fgets(buffer, sizeof buffer, pipe) != nullptr) out += buffer;
  const int status = pclose(pipe);
  return {WEXITSTATUS(status), out};
}

uint64_t Version(const Staved& server) {
  stave::v1::PositionConfig config;
  grpc::ClientContext context;
  server.ConfigStub()->GetConfig(&context, {}, &config);
  return config.version();
}

double Ok(const Staved& server) {
  return server.Metric("stave_requests_total{code=\"OK\",method=\"Generate\",transport=\"grpc\"}");
}

class MultiReplicaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SKIP_UNLESS_SHARED(testing::kStoriesModel);
    config_ = dir_ / "position.yaml";
    Write("mode: vanilla\n");
    for (auto& r : replicas_) {
      r = std::make_unique<Staved>(std::vector<std::string>{"--config=" + config_, "--config-poll-ms=50"});
      ASSERT_FALSE(r->address().empty());
    }
    both_ = replicas_[0]->address() + "," + replicas_[1]->address();
  }
  void Write(const std::string& text) {
    { std::ofstream(config_ + ".tmp") << text; }
    std::filesystem::rename(config_ + ".tmp", config_);
  }
  testing::TempDir dir_;
  std::string config_, both_;
  std::unique_ptr<Staved> replicas_[2];
};

TEST_F(MultiReplicaTest, RoundRobinReachesBothAndOneFileConfiguresBoth) {
  auto [code, out] = RunStave("loadtest --server " + both_ + " --concurrency 2 --requests 20 --max-tokens 16 --json");
  ASSERT_EQ(code, 0) << out;
  EXPECT_EQ(nlohmann::json::parse(out)["requests_ok"], 20);
  EXPECT_GT(Ok(*replicas_[0]), 0);
  EXPECT_GT(Ok(*replicas_[1]), 0);
  EXPECT_EQ(Ok(*replicas_[0]) + Ok(*replicas_[1]), 20);

  const uint64_t before = Version(*replicas_[0]);
  Write("mode: buckets\nbases: [10000, 20000]\n");
  for (auto& r : replicas_)
    EXPECT_TRUE(Staved::Eventually([&] { return Version(*r) == before + 1; })) << r->address();
}

TEST_F(MultiReplicaTest, KillingOneReplicaLosesOnlyItsStreams) {
  const int concurrency = 4;
  std::pair<int, std::string> result;
  std::thread load([&] {
    // Long enough (about 3 s) that the kill lands mid-load.
    result = RunStave("loadtest --server " + both_ + " --concurrency " + std::to_string(concurrency) +
                      " --duration 3 --max-tokens 64 --json");
  });
  ASSERT_TRUE(Staved::Eventually([&] { return Ok(*replicas_[0]) >= 2 && Ok(*replicas_[1]) >= 2; }));
  kill(replicas_[0]->pid(), SIGKILL);
  replicas_[0]->Wait();
  const double survivor_before = Ok(*replicas_[1]);
  load.join();
  auto report = nlohmann::json::parse(result.second);
  // Only the streams the dead replica was serving failed, all as UNAVAILABLE, and the rest of the
  // load went to the survivor. At most two per worker: the one in flight, and with batching
  // (requests of ~10 ms) possibly the worker's next one, picked in the moment before the
  // round-robin balancer has seen the connection reset (seen once: 5 failures with 4 workers).
  const int failed = report["requests_failed"];
  EXPECT_LE(failed, 2 * concurrency) << result.second;
  for (auto& [code, count] : report["errors"].items()) EXPECT_EQ(code, "UNAVAILABLE") << result.second;
  EXPECT_GT(Ok(*replicas_[1]), survivor_before + 5) << "new requests did not move to the survivor";
  // A new client after the kill still succeeds through the list.
  auto [code, out] = RunStave("generate --server " + both_ + " --prompt Hello --max-tokens 5 --json");
  EXPECT_EQ(code, 0) << out;
}

}  // namespace
}  // namespace stave
