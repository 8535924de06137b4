// staved as a child process on loopback ephemeral ports, for the integration tests: it prints
// the metrics port and then the gRPC port it bound; this reads both.
#pragma once

#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>

#include "core/checkpoint.h"
#include "core/hf_checkpoint.h"
#include "core/sentencepiece_shim.h"
#include "stave/v1/stave.grpc.pb.h"
#include "tests/test_support.h"

namespace stave::testing {

class Staved {
 public:
  // stories260K unless `extra` names another --model; with `default_model`, no --model at all
  // (and no STAVE_MODEL): staved serves the embedded default model.
  // With `stderr_path`, its log (stderr) goes to that file.
  explicit Staved(std::vector<std::string> extra = {}, bool default_model = false,
                  const std::string& stderr_path = "") {
    const auto exe = std::filesystem::read_symlink("/proc/self/exe").parent_path() / "staved";
    int out[2];
    if (pipe(out) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      dup2(out[1], STDOUT_FILENO);
      close(out[0]);
      if (!stderr_path.empty()) {
        FILE* log = std::fopen(stderr_path.c_str(), "w");
        if (log != nullptr) dup2(fileno(log), STDERR_FILENO);
      }
      std::vector<std::string> args = {exe.string(), "--listen=127.0.0.1:0", "--metrics-listen=127.0.0.1:0"};
      if (default_model) {
        unsetenv("STAVE_MODEL");
      } else {
        args.push_back("--model=" + SharedPath(kStoriesModel));
        args.push_back("--tokenizer=" + SharedPath(kStoriesTokenizer));
      }
      args.insert(args.end(), extra.begin(), extra.end());
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    close(out[1]);
    out_ = fdopen(out[0], "r");
    char line[512];
    while (fgets(line, sizeof line, out_) != nullptr) {
      std::string s(line);
      const int port = std::atoi(s.c_str() + s.rfind(':') + 1);
      if (s.find("staved: metrics on") == 0) metrics_port_ = port;
      if (s.find("staved: serving") == 0) {
        address_ = "127.0.0.1:" + std::to_string(port);
        break;
      }
    }
  }
  ~Staved() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      Wait();
    }
    if (out_ != nullptr) fclose(out_);
  }
  Staved(const Staved&) = delete;
  Staved& operator=(const Staved&) = delete;

  const std::string& address() const { return address_; }  // empty: it did not start
  int metrics_port() const { return metrics_port_; }
  pid_t pid() const { return pid_; }

  std::shared_ptr<grpc::Channel> Channel() const {
    return grpc::CreateChannel(address_, grpc::InsecureChannelCredentials());
  }
  std::unique_ptr<stave::v1::Inference::Stub> Stub() const { return stave::v1::Inference::NewStub(Channel()); }
  std::unique_ptr<stave::v1::Config::Stub> ConfigStub() const { return stave::v1::Config::NewStub(Channel()); }

  // A metric's value from /metrics ("name" or "name{labels}" exactly as exposed); -1 if absent.
  double Metric(const std::string& series) const {
    httplib::Client client("127.0.0.1", metrics_port_);
    auto response = client.Get("/metrics");
    if (!response || response->status != 200) return -1;
    std::istringstream lines(response->body);
    for (std::string line; std::getline(lines, line);)
      if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
    return -1;
  }

  // Waits up to `timeout` for `done`; true if it happened.
  static bool Eventually(const std::function<bool()>& done,
                         std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < end) {
      if (done()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return done();
  }

  // Reaps the process; returns its wait status.
  int Wait() {
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return status;
  }

 private:
  pid_t pid_ = -1;
  FILE* out_ = nullptr;
  std::string address_;
  int metrics_port_ = 0;
};

// One Generate stream read to its end.
struct Streamed {
  grpc::Status status;
  std::vector<int> tokens;
  std::string text, finish_reason;
  uint64_t config_version = 0;
};

inline Streamed Stream(stave::v1::Inference::Stub& stub, const stave::v1::GenerateRequest& request,
                       const std::function<void(const stave::v1::GenerateResponse&)>& on_message = nullptr) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
  auto reader = stub.Generate(&context, request);
  Streamed out;
  stave::v1::GenerateResponse msg;
  while (reader->Read(&msg)) {
    if (msg.has_token_id()) out.tokens.push_back(static_cast<int>(msg.token_id()));
    out.text += msg.text();
    if (!msg.finish_reason().empty()) {
      out.finish_reason = msg.finish_reason();
      out.config_version = msg.config_version();
    }
    if (on_message) on_message(msg);
  }
  out.status = reader->Finish();
  return out;
}

inline stave::v1::GenerateRequest Request(const std::string& prompt, int max_tokens) {
  stave::v1::GenerateRequest request;
  request.set_prompt(prompt);
  request.set_max_tokens(static_cast<uint32_t>(max_tokens));
  request.set_temperature(0);
  return request;
}

// A llama2.c tokenizer.bin of `vocab` pieces (<unk>, BOS, EOS, the 256 byte pieces, " " and the
// printable ASCII characters, then fillers): what the slow model uses in sanitizer builds, where
// the default model's SentencePiece tokenizer.model cannot be loaded (see sentencepiece_skip.h).
inline void WriteCharTokenizer(const std::filesystem::path& path, int vocab) {
  std::vector<std::string> pieces = {"<unk>", "\n<s>\n", "\n</s>\n"};
  char hex[8];
  for (int b = 0; b < 256; ++b) {
    std::snprintf(hex, sizeof hex, "<0x%02X>", b);
    pieces.push_back(hex);
  }
  for (char c = ' '; c <= '~'; ++c) pieces.push_back(std::string(1, c));
  while (static_cast<int>(pieces.size()) < vocab) pieces.push_back("<extra_" + std::to_string(pieces.size()) + ">");
  std::ofstream out(path, std::ios::binary);
  const int32_t max_len = 16;
  out.write(reinterpret_cast<const char*>(&max_len), 4);
  for (int i = 0; i < vocab; ++i) {
    const float score = 0;
    const auto len = static_cast<int32_t>(pieces[i].size());
    out.write(reinterpret_cast<const char*>(&score), 4);
    out.write(reinterpret_cast<const char*>(&len), 4);
    out.write(pieces[i].data(), len);
  }
}

// A random-weight model slow enough that a 16-bucket stream of a few hundred tokens runs for
// seconds on any machine (stories260K finished 341 tokens in 0.3 s here), with the default
// model's tokenizer (a character tokenizer.bin in sanitizer builds, which cannot load it).
// Written once per test process; its directory is returned.
inline std::string SlowModelDir() {
  static const std::string dir = [] {
    const auto path = std::filesystem::temp_directory_path() / ("stave_slow_model_" + std::to_string(::getpid()));
    // vocab 408: models/default/tokenizer.model
    const ModelConfig config = *ParseShapeSpec("dim=512,layers=4,heads=8,kv_heads=8,hidden=1536,vocab=408,ctx=1024");
    std::filesystem::create_directories(path);
    if (!SaveHfCheckpoint(RandomCheckpoint(config, 7), path.string()).ok()) return std::string();
    if (kSentencePieceAvailable)
      std::filesystem::copy_file(std::string(STAVE_SOURCE_DIR) + "/models/default/tokenizer.model",
                                 path / "tokenizer.model", std::filesystem::copy_options::overwrite_existing);
    else
      WriteCharTokenizer(path / "tokenizer.bin", config.vocab_size);
    std::atexit([] { std::filesystem::remove_all(std::filesystem::temp_directory_path() /
                                                 ("stave_slow_model_" + std::to_string(::getpid()))); });
    return path.string();
  }();
  return dir;
}

// A request slow enough to still be running while a test acts: 16 buckets of one base.
inline stave::v1::GenerateRequest SlowRequest(int max_tokens = 450) {
  auto request = Request("Once upon a time", max_tokens);
  request.mutable_position()->set_mode(stave::v1::POSITION_MODE_BUCKETS);
  for (int i = 0; i < 16; ++i) request.mutable_position()->add_bases(10000);
  return request;
}

// A stream kept open by the test: started, first message read.
struct OpenStream {
  grpc::ClientContext context;
  std::unique_ptr<grpc::ClientReader<stave::v1::GenerateResponse>> reader;
  stave::v1::GenerateResponse first;
  bool Start(stave::v1::Inference::Stub& stub, const stave::v1::GenerateRequest& request) {
    reader = stub.Generate(&context, request);
    return reader->Read(&first);
  }
};

// Runs staved with `args` to its exit (expected to fail at start); exit code and all it printed.
inline std::pair<int, std::string> RunStavedToExit(const std::vector<std::string>& args) {
  const auto exe = std::filesystem::read_symlink("/proc/self/exe").parent_path() / "staved";
  std::string command = exe.string();
  for (const auto& a : args) command += " '" + a + "'";
  std::string output;
  // `timeout`: a staved that starts after all must not hang the test.
  FILE* pipe = popen(("timeout 60 " + command + " 2>&1 </dev/null").c_str(), "r");
  char buffer[512];
  while (fgets(buffer, sizeof buffer, pipe) != nullptr) output += buffer;
  const int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), output};
}

}  // namespace stave::testing
