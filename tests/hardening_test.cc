// Unit tests for the limits that keep a client from reading server files, freezing the server or
// holding its resources (issue #16): bounded file reads, bounded base search, routers by name,
// queue slots freed at cancellation.
#include <sys/stat.h>

#include <chrono>
#include <fstream>
#include <latch>
#include <thread>

#include "core/base_search.h"
#include "core/checkpoint.h"
#include "core/kv_pool.h"
#include "core/text_file.h"
#include "server/engine.h"
#include "server/router_directory.h"
#include "server/side_worker.h"
#include "tests/test_support.h"

namespace stave {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using testing::TempDir;

TEST(ReadTextFile, RefusesADirectoryAFifoAndADeviceInsteadOfReadingThem) {
  TempDir dir;
  auto directory = ReadTextFile(dir.path());
  EXPECT_EQ(directory.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(directory.status().message(), HasSubstr("a directory"));

  // A FIFO without a writer: opening it blocking would never return.
  ASSERT_EQ(mkfifo((dir / "fifo").c_str(), 0600), 0);
  const auto start = std::chrono::steady_clock::now();
  auto fifo = ReadTextFile(dir / "fifo");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1));
  EXPECT_THAT(fifo.status().message(), HasSubstr("a FIFO"));

  // A link to /dev/zero would grow memory without limit.
  std::filesystem::create_symlink("/dev/zero", dir / "zero");
  EXPECT_THAT(ReadTextFile(dir / "zero").status().message(), HasSubstr("a device"));
}

TEST(ReadTextFile, RefusesFilesOverItsLimitAndReadsTheRest) {
  TempDir dir;
  std::ofstream(dir / "small") << "mode: vanilla\n";
  ASSERT_TRUE(ReadTextFile(dir / "small", 100).ok());
  EXPECT_EQ(*ReadTextFile(dir / "small", 100), "mode: vanilla\n");
  auto big = ReadTextFile(dir / "small", 5);
  EXPECT_EQ(big.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(big.status().message(), HasSubstr("limit of 5"));
  EXPECT_EQ(ReadTextFile(dir / "missing").status().code(), absl::StatusCode::kNotFound);
}

BaseSearchOptions SearchOptions(double min, double max, double step) {
  BaseSearchOptions o;
  o.head_dim = 8;
  o.context = 512;
  o.count = 2;
  o.min_base = min;
  o.max_base = max;
  o.step = step;
  return o;
}

TEST(BaseSearch, AStepBelowThePrecisionOfTheBasesIsRefusedAtOnce) {
  // 1e16 + 0.5 == 1e16: the old loop never advanced and froze a server thread.
  const auto start = std::chrono::steady_clock::now();
  auto result = SearchBases(SearchOptions(1e16, 1e16 + 2, 0.5));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1));
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(result.status().message(), HasSubstr("precision"));
}

TEST(BaseSearch, MoreCandidatesThanTheLimitAreRefusedAndTheLimitItselfRuns) {
  auto over = SearchBases(SearchOptions(10000, 10000 + kMaxBaseCandidates * 10.0, 10));
  EXPECT_EQ(over.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(over.status().message(), HasSubstr("more than 1000 candidates"));
  auto at_limit = SearchBases(SearchOptions(10000, 10000 + (kMaxBaseCandidates - 1) * 10.0, 10));
  ASSERT_TRUE(at_limit.ok()) << at_limit.status();
  EXPECT_EQ(at_limit->bases.size(), 2u);
}

TEST(RouterDirectory, NamesResolveInsideTheDirectoryOnly) {
  TempDir dir;
  std::ofstream(dir / "router.safetensors") << "x";
  std::ofstream(dir / "other.safetensors") << "x";
  std::ofstream(dir / "notes.txt") << "x";
  server::RouterDirectory routers(dir.path());
  EXPECT_EQ(routers.List(), (std::vector<std::string>{"other", "router"}));
  EXPECT_EQ(*routers.PathOf("router"), dir / "router.safetensors");
  EXPECT_EQ(*routers.PathOf(""), "");  // untrained routers
  for (const std::string& bad : std::vector<std::string>{"../router", "/etc/passwd", "a/b", ".hidden", "notes.txt\n", std::string(65, 'a')}) {
    auto path = routers.PathOf(bad);
    EXPECT_EQ(path.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(path.status().message(), Not(HasSubstr(dir.path()))) << bad;
  }
  auto missing = routers.PathOf("notes");  // notes.txt is not a router file
  EXPECT_THAT(missing.status().message(), HasSubstr("available: other, router"));
  EXPECT_EQ(server::RouterDirectory::NameOf(dir / "router.safetensors"), "router");
  EXPECT_EQ(routers.Redact("cannot read " + (dir / "router.safetensors")), "cannot read router.safetensors");
}

server::EngineOptions OneAtATime() { return {.queue_limit = 1, .max_active = 1}; }

// The engine needs a model and a pool; these tests only run tasks.
struct TinyEngine {
  std::unique_ptr<Model> model;
  std::unique_ptr<server::Engine> engine;
  explicit TinyEngine(server::EngineOptions options) {
    const ModelConfig c = *ParseShapeSpec("dim=8,layers=1,heads=2,kv_heads=2,hidden=16,vocab=16,ctx=32");
    model = Model::FromCheckpoint(RandomCheckpoint(c, 1), nullptr);
    engine = std::make_unique<server::Engine>(*model, *KvPool::Create(c, 1 << 20), std::move(options));
  }
};

// A task that holds the engine until released.
std::shared_ptr<server::EngineJob> Blocker(std::latch& started, std::latch& release) {
  auto job = std::make_shared<server::EngineJob>();
  job->task = [&](bool) {
    started.count_down();
    release.wait();
  };
  return job;
}

TEST(Engine, ACancelledQueuedRequestGivesUpItsSlotAtOnce) {
  TinyEngine tiny(OneAtATime());
  server::Engine& engine = *tiny.engine;
  std::latch started(1), release(1);
  ASSERT_TRUE(engine.Submit(Blocker(started, release)).ok());
  started.wait();  // the engine is busy; the queue holds one more

  std::atomic<int> cancelled_reports{0};
  auto queued = std::make_shared<server::EngineJob>();
  queued->task = [&](bool cancelled) { cancelled_reports += cancelled ? 1 : 100; };
  ASSERT_TRUE(engine.Submit(queued).ok());
  auto refused = std::make_shared<server::EngineJob>();
  refused->task = [](bool) {};
  EXPECT_EQ(engine.Submit(refused).code(), absl::StatusCode::kResourceExhausted);

  queued->cancelled = true;
  engine.Cancelled();
  EXPECT_EQ(engine.queued(), 0);
  EXPECT_EQ(cancelled_reports, 1);  // told once, as cancelled, before the engine got to it
  auto next = std::make_shared<server::EngineJob>();
  next->task = [](bool) {};
  EXPECT_TRUE(engine.Submit(next).ok());
  release.count_down();
}

TEST(Engine, AnAbandonedQueuedRequestDoesNotKeepALiveOneOut) {
  TinyEngine tiny(OneAtATime());
  server::Engine& engine = *tiny.engine;
  std::latch started(1), release(1);
  ASSERT_TRUE(engine.Submit(Blocker(started, release)).ok());
  started.wait();
  std::atomic<bool> deadline_passed{false};
  auto expiring = std::make_shared<server::EngineJob>();
  expiring->abandoned = [&] { return deadline_passed.load(); };
  expiring->task = [](bool) {};
  ASSERT_TRUE(engine.Submit(expiring).ok());
  deadline_passed = true;  // a unary call's deadline: no callback, seen at the next admission
  auto live = std::make_shared<server::EngineJob>();
  live->task = [](bool) {};
  EXPECT_TRUE(engine.Submit(live).ok());
  release.count_down();
}

TEST(SideWorker, RunsOneJobAtATimeAndRefusesTheNext) {
  server::SideWorker worker("base search");
  std::latch started(1), release(1);
  ASSERT_TRUE(worker.TrySubmit([&] {
    started.count_down();
    release.wait();
  }).ok());
  started.wait();
  auto busy = worker.TrySubmit([] {});
  EXPECT_EQ(busy.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(busy.message(), HasSubstr("another base search is running"));
  release.count_down();
  bool accepted = false;
  for (int i = 0; i < 500 && !accepted; ++i) {
    accepted = worker.TrySubmit([] {}).ok();
    if (!accepted) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(accepted);
}

}  // namespace
}  // namespace stave
