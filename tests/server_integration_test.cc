// Integration: start the staved binary on a loopback ephemeral port and talk to it over gRPC.
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include "core/generate.h"
#include "core/model.h"
#include "stave/v1/stave.grpc.pb.h"
#include "tests/test_support.h"

namespace stave {
namespace {

constexpr char kModel[] = "models/stories260K/stories260K.bin";
constexpr char kTokenizer[] = "models/stories260K/tok512.bin";

// staved as a child process; its first stdout line names the port it bound.
class Staved {
 public:
  explicit Staved(std::vector<std::string> extra = {}) {
    const auto exe = std::filesystem::read_symlink("/proc/self/exe").parent_path() / "staved";
    int out[2];
    if (pipe(out) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      dup2(out[1], STDOUT_FILENO);
      close(out[0]);
      std::vector<std::string> args = {exe.string(), "--model=" + testing::SharedPath(kModel),
                                       "--tokenizer=" + testing::SharedPath(kTokenizer),
                                       "--listen=127.0.0.1:0"};
      args.insert(args.end(), extra.begin(), extra.end());
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    close(out[1]);
    FILE* f = fdopen(out[0], "r");
    char line[512] = {0};
    if (fgets(line, sizeof line, f) != nullptr) {
      std::string s(line);
      auto colon = s.rfind(':');
      if (colon != std::string::npos) address_ = "127.0.0.1:" + std::to_string(std::atoi(s.c_str() + colon + 1));
    }
    out_ = f;
  }
  ~Staved() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      int status = 0;
      waitpid(pid_, &status, 0);
    }
    if (out_ != nullptr) fclose(out_);
  }
  const std::string& address() const { return address_; }
  std::unique_ptr<stave::v1::Inference::Stub> Stub() const {
    return stave::v1::Inference::NewStub(grpc::CreateChannel(address_, grpc::InsecureChannelCredentials()));
  }
  pid_t pid() const { return pid_; }
  void Forget() { pid_ = -1; }  // the test reaped the process itself

 private:
  pid_t pid_ = -1;
  FILE* out_ = nullptr;
  std::string address_;
};

struct Streamed {
  grpc::Status status;
  std::vector<int> tokens;
  std::string text, finish_reason;
};

Streamed Stream(stave::v1::Inference::Stub& stub, const stave::v1::GenerateRequest& request) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  auto reader = stub.Generate(&context, request);
  Streamed out;
  stave::v1::GenerateResponse msg;
  while (reader->Read(&msg)) {
    if (msg.finish_reason().empty() || msg.usage().completion_tokens() > out.tokens.size())
      out.tokens.push_back(static_cast<int>(msg.token_id()));
    out.text += msg.text();
    if (!msg.finish_reason().empty()) out.finish_reason = msg.finish_reason();
  }
  out.status = reader->Finish();
  return out;
}

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SKIP_UNLESS_SHARED(kModel);
    server_ = std::make_unique<Staved>();
    ASSERT_FALSE(server_->address().empty()) << "staved did not report its port";
  }
  std::unique_ptr<Staved> server_;
};

TEST_F(ServerTest, StreamedTextEqualsInProcessGenerationForTheSameSeed) {
  auto model = Model::Load(testing::SharedPath(kModel), testing::SharedPath(kTokenizer));
  ASSERT_TRUE(model.ok());
  auto stub = server_->Stub();
  for (float temperature : {0.0f, 0.9f}) {
    stave::v1::GenerateRequest request;
    request.set_prompt("Once upon a time");
    request.set_max_tokens(80);
    request.set_temperature(temperature);
    request.set_top_p(0.9f);
    request.set_seed(42);
    auto remote = Stream(*stub, request);
    ASSERT_TRUE(remote.status.ok()) << remote.status.error_message();
    GenerationParams params;
    params.max_tokens = 80;
    params.sampling = {.temperature = temperature, .top_k = 0, .top_p = 0.9f, .seed = 42};
    auto local = Generate(**model, "Once upon a time", params);
    ASSERT_TRUE(local.ok());
    EXPECT_EQ(remote.tokens, local->token_ids);
    EXPECT_EQ(remote.text, local->text);
    EXPECT_EQ(remote.finish_reason, local->finish_reason);
  }
}

TEST_F(ServerTest, SixteenConcurrentStreamsComplete) {
  std::vector<std::thread> clients;
  std::vector<Streamed> results(16);
  for (int i = 0; i < 16; ++i)
    clients.emplace_back([&, i] {
      auto stub = server_->Stub();
      stave::v1::GenerateRequest request;
      request.set_prompt("The dog");
      request.set_max_tokens(40);
      request.set_temperature(0);
      results[i] = Stream(*stub, request);
    });
  for (auto& c : clients) c.join();
  for (const auto& r : results) {
    ASSERT_TRUE(r.status.ok()) << r.status.error_message();
    EXPECT_EQ(r.tokens, results[0].tokens);  // greedy: every stream the same
    EXPECT_FALSE(r.finish_reason.empty());
  }
}

TEST_F(ServerTest, InvalidRequestsNameTheField) {
  auto stub = server_->Stub();
  auto expect_invalid = [&](stave::v1::GenerateRequest request, const std::string& field) {
    auto r = Stream(*stub, request);
    EXPECT_EQ(r.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << field;
    EXPECT_THAT(r.status.error_message(), ::testing::HasSubstr(field));
  };
  stave::v1::GenerateRequest ok;
  ok.set_prompt("Hi");
  ok.set_max_tokens(5);
  auto r = ok;
  r.set_prompt("");
  expect_invalid(r, "prompt");
  r = ok;
  r.set_max_tokens(0);
  expect_invalid(r, "max_tokens");
  r = ok;
  r.set_max_tokens(100000);
  expect_invalid(r, "max_tokens");
  r = ok;
  r.set_temperature(-1);
  expect_invalid(r, "temperature");
  r = ok;
  r.set_top_p(1.5);
  expect_invalid(r, "top_p");
}

TEST_F(ServerTest, ModelInfo) {
  stave::v1::ModelInfo info;
  grpc::ClientContext context;
  ASSERT_TRUE(server_->Stub()->GetModelInfo(&context, {}, &info).ok());
  EXPECT_EQ(info.vocab_size(), 512u);
  EXPECT_EQ(info.context_length(), 512u);
  EXPECT_EQ(info.format(), "llama2c");
}

TEST_F(ServerTest, SigtermExitsCleanly) {
  kill(server_->pid(), SIGTERM);
  int status = 0;
  waitpid(server_->pid(), &status, 0);
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  server_->Forget();
}

}  // namespace
}  // namespace stave
