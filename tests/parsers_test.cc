// The LibTorch-free checkpoint/config parsers split out of the loaders (stave_parsers): they read
// the committed default model and the llama2.c reference file as the loaders did, and the inputs
// the fuzzers and the review found are refused with a Status.
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>

#include "core/hf_config.h"
#include "core/llama2c_header.h"
#include "core/router_metadata.h"
#include "core/safetensors_header.h"
#include "tests/shared_data.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace stave {
namespace {

using ::testing::HasSubstr;

const std::string kDefaultDir = std::string(STAVE_SOURCE_DIR) + "/models/default";

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

const unsigned char* Bytes(const std::string& s) { return reinterpret_cast<const unsigned char*>(s.data()); }

std::string Safetensors(const std::string& json, size_t data_bytes = 0) {
  std::string out(8, '\0');
  const uint64_t len = json.size();
  std::memcpy(out.data(), &len, 8);
  return out + json + std::string(data_bytes, '\0');
}

TEST(SafetensorsHeader, TheDefaultModelParsesAndEveryRangeMatchesItsShape) {
  const std::string bytes = ReadAll(kDefaultDir + "/model.safetensors");
  if (bytes.empty()) GTEST_SKIP() << kDefaultDir << " not found";
  auto header = ParseSafetensorsHeader(Bytes(bytes), bytes.size(), "model.safetensors");
  ASSERT_TRUE(header.ok()) << header.status();
  EXPECT_EQ(header->entries.size(), 20u);
  for (const auto& [name, e] : header->entries) {
    size_t elements = 1;
    for (int64_t d : e.shape) elements *= d;
    EXPECT_EQ(elements * SafetensorsDtypeSize(e.dtype), e.bytes) << name;
    EXPECT_LE(e.offset + e.bytes, bytes.size()) << name;
  }
}

TEST(SafetensorsHeader, ShapesWhoseProductWrapsAreRefused) {
  // 2^32 * 2^32 elements wrapped to 0 and matched an empty range; LoadFloat's view() then threw.
  const std::string wraps =
      Safetensors(R"({"x":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}})");
  auto header = ParseSafetensorsHeader(Bytes(wraps), wraps.size(), "w.safetensors");
  ASSERT_FALSE(header.ok());
  EXPECT_THAT(header.status().message(), HasSubstr("tensor 'x'"));
  const std::string too_big =
      Safetensors(R"({"x":{"dtype":"F16","shape":[9223372036854775808,0],"data_offsets":[0,0]}})");
  EXPECT_FALSE(ParseSafetensorsHeader(Bytes(too_big), too_big.size(), "b.safetensors").ok());
  // An empty tensor with a large dimension is valid.
  const std::string empty =
      Safetensors(R"({"x":{"dtype":"F32","shape":[9223372036854735808,0],"data_offsets":[0,0]}})");
  EXPECT_TRUE(ParseSafetensorsHeader(Bytes(empty), empty.size(), "e.safetensors").ok());
}

TEST(RouterMetadata, TheDefaultRouterParses) {
  const std::string bytes = ReadAll(kDefaultDir + "/router.safetensors");
  if (bytes.empty()) GTEST_SKIP() << kDefaultDir << " not found";
  auto header = ParseSafetensorsHeader(Bytes(bytes), bytes.size(), "router.safetensors");
  ASSERT_TRUE(header.ok()) << header.status();
  auto meta = ParseRouterMetadata(header->metadata, "router.safetensors");
  ASSERT_TRUE(meta.ok()) << meta.status();
  EXPECT_THAT(meta->expert_bases, ::testing::ElementsAre(10000, 17500, 18000, 19000, 20000, 22500, 25000));
  EXPECT_EQ(meta->top_k, 7);
  EXPECT_EQ(meta->n_layers, 2);
  EXPECT_EQ(meta->head_dim, 32);
  auto missing = header->metadata;
  missing.erase("top_k");
  auto refused = ParseRouterMetadata(missing, "router.safetensors");
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.status().message(), HasSubstr("metadata 'top_k' missing"));
}

TEST(Llama2cLayout, TheReferenceFileTilesExactly) {
  SKIP_UNLESS_SHARED("models/stories260K/stories260K.bin");
  const std::string bytes = ReadAll(testing::SharedPath("models/stories260K/stories260K.bin"));
  auto layout = ParseLlama2cLayout(Bytes(bytes), bytes.size(), "stories260K.bin");
  ASSERT_TRUE(layout.ok()) << layout.status();
  EXPECT_EQ(layout->config.dim, 64);
  EXPECT_EQ(layout->blocks.front().name, "token_embedding_table");
  EXPECT_EQ(layout->blocks.front().offset, 28u);
  // One byte more or less is an error naming the file.
  auto longer = ParseLlama2cLayout(Bytes(bytes + "x"), bytes.size() + 1, "stories260K.bin");
  ASSERT_FALSE(longer.ok());
  EXPECT_THAT(longer.status().message(), HasSubstr("trailing bytes"));
  EXPECT_FALSE(ParseLlama2cLayout(Bytes(bytes), bytes.size() - 1, "stories260K.bin").ok());
}

TEST(Llama2cLayout, AnInt32MinVocabIsRefusedWithoutOverflow) {
  const int32_t h[7] = {8, 16, 1, 2, 2, INT32_MIN, 4};
  std::string bytes(reinterpret_cast<const char*>(h), sizeof(h));
  bytes += std::string(64, '\0');
  auto layout = ParseLlama2cLayout(Bytes(bytes), bytes.size(), "bad.bin");
  ASSERT_FALSE(layout.ok());
  EXPECT_THAT(layout.status().message(), HasSubstr("implausible llama2.c header value"));
}

TEST(HfConfig, TheDefaultConfigParses) {
  const std::string text = ReadAll(kDefaultDir + "/config.json");
  if (text.empty()) GTEST_SKIP() << kDefaultDir << " not found";
  auto config = ParseHfConfig(text, "config.json");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->config.dim, 128);
  EXPECT_EQ(config->config.vocab_size, 408);
  EXPECT_TRUE(config->config.tied_embeddings);
  EXPECT_FALSE(config->llama3.has_value());
}

TEST(HfConfig, MistypedFieldsAreErrorsNotExceptions) {
  const std::string base =
      R"({"hidden_size":64,"intermediate_size":128,"num_hidden_layers":2,"num_attention_heads":4,"vocab_size":100)";
  for (const char* extra : {R"(,"rope_theta":"10000"})", R"(,"rope_scaling":5})",
                            R"(,"rope_scaling":{"type":"linear","factor":"2"}})", R"(,"tie_word_embeddings":"yes"})"}) {
    auto config = ParseHfConfig(base + extra, "config.json");
    ASSERT_FALSE(config.ok()) << extra;
    EXPECT_THAT(config.status().message(), HasSubstr("config.json")) << extra;
  }
  // head_dim * heads overflowed int: now an honest "not supported".
  auto overflow = ParseHfConfig(base + R"(,"head_dim":1073741824})", "config.json");
  ASSERT_FALSE(overflow.ok());
  EXPECT_THAT(overflow.status().message(), HasSubstr("head_dim"));
}

}  // namespace
}  // namespace stave
