// Helpers shared by the tests: where the reference data lives, temporary directories.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <unistd.h>

#include "nlohmann/json.hpp"
#include "tests/shared_data.h"
#include "core/model.h"
#include "core/tokenizer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace stave::testing {

// The rows of a JSON-lines file (the golden reference data).
inline std::vector<nlohmann::json> ReadJsonl(const std::string& path) {
  std::vector<nlohmann::json> rows;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) rows.push_back(nlohmann::json::parse(line));
  return rows;
}

inline constexpr char kStoriesModel[] = "models/stories260K/stories260K.bin";
inline constexpr char kStoriesTokenizer[] = "models/stories260K/tok512.bin";

// stories260K with its tokenizer, or null (the caller skips first with SKIP_UNLESS_SHARED).
inline std::unique_ptr<Model> LoadStories260K() {
  auto model = Model::Load(SharedPath(kStoriesModel), SharedPath(kStoriesTokenizer));
  return model.ok() ? *std::move(model) : nullptr;
}

// A fresh directory under the system temp dir, removed at destruction.
class TempDir {
 public:
  TempDir() {
    path_ = std::filesystem::temp_directory_path() /
            ("stave_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter()++));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }
  std::string path() const { return path_.string(); }

 private:
  static int& counter() {
    static int c = 0;
    return c;
  }
  std::filesystem::path path_;
};

// Bytes as tokens (3 + byte), so these tests need no SentencePiece model.
class ByteTokenizer : public Tokenizer {
 public:
  std::vector<int> Encode(std::string_view text, bool add_bos) const override {
    std::vector<int> ids;
    if (add_bos) ids.push_back(1);
    for (unsigned char c : text) ids.push_back(3 + c);
    return ids;
  }
  std::string DecodeToken(int, int token) const override {
    return token >= 3 ? std::string(1, static_cast<char>(token - 3)) : "";
  }
  int vocab_size() const override { return 259; }
};

}  // namespace stave::testing
