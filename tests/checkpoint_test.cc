// Loaders: llama2.c -> HF conversion parity, safetensors dtypes and shards, and corrupt files
// rejected with errors that name the file and the tensor.
#include <torch/torch.h>

#include <fstream>

#include "core/checkpoint.h"
#include "core/hf_checkpoint.h"
#include "core/kv_cache.h"
#include "core/llama2c_checkpoint.h"
#include "core/model.h"
#include "core/rope.h"
#include "core/safetensors.h"
#include "core/transformer.h"
#include "nlohmann/json.hpp"
#include "tests/test_support.h"

namespace stave {
namespace {

using ::testing::HasSubstr;

// Small GQA model with a separate classifier: exercises the shape rules the loaders check.
ModelConfig SmallConfig() {
  auto c = ParseShapeSpec("dim=32,layers=2,heads=4,kv_heads=2,hidden=48,vocab=64,ctx=16");
  EXPECT_TRUE(c.ok());
  return *c;
}

at::Tensor AllLogits(const Checkpoint& ckpt, const std::vector<int64_t>& tokens) {
  c10::InferenceMode inference_mode;
  Transformer model(ckpt);
  auto rope = MakeRopeTable(ckpt.config.rope_theta, ckpt.config.head_dim(), ckpt.config.max_seq_len,
                            ckpt.config.rope_scaling);
  auto cache = KvCache::Allocate(ckpt.config, 1, static_cast<int>(tokens.size()));
  return model.Forward(torch::tensor(tokens).view({1, -1}), cache, rope, true);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}
void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

TEST(Convert, Llama2cToHfLoadsBackWithIdenticalLogits) {
  SKIP_UNLESS_SHARED("models/stories260K/stories260K.bin");
  auto original = LoadLlama2cCheckpoint(testing::SharedPath("models/stories260K/stories260K.bin"));
  ASSERT_TRUE(original.ok()) << original.status();
  testing::TempDir dir;
  ASSERT_TRUE(SaveHfCheckpoint(*original, dir.path()).ok());
  auto converted = LoadHfCheckpoint(dir.path());
  ASSERT_TRUE(converted.ok()) << converted.status();
  EXPECT_EQ(converted->config.stop_id(), original->config.stop_id());
  std::vector<int64_t> tokens = {1, 403, 407, 261, 378, 432, 383, 286, 261, 376};
  EXPECT_TRUE(torch::equal(AllLogits(*original, tokens), AllLogits(*converted, tokens)));
}

TEST(Llama2c, InterleavedToHalvesMovesPairsToHalves) {
  // One head of dim 4, rows (pair0.a, pair0.b, pair1.a, pair1.b) -> (p0.a, p1.a, p0.b, p1.b).
  auto w = torch::arange(4, torch::kFloat).view({4, 1});
  auto p = InterleavedToHalves(w, 1, 4);
  EXPECT_TRUE(torch::equal(p.view(-1), torch::tensor({0.f, 2.f, 1.f, 3.f})));
}

TEST(Safetensors, HalfAndBfloat16AreUpcast) {
  testing::TempDir dir;
  auto x = torch::randn({3, 5});
  ASSERT_TRUE(WriteSafetensors(dir / "t.safetensors",
                               {{"h", x.to(torch::kHalf)}, {"b", x.to(torch::kBFloat16)}, {"f", x}},
                               {{"k", "v"}})
                  .ok());
  auto file = SafetensorsFile::Open(dir / "t.safetensors");
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ((*file)->metadata().at("k"), "v");
  EXPECT_TRUE(torch::equal(*(*file)->LoadFloat("f"), x));
  EXPECT_TRUE(torch::equal(*(*file)->LoadFloat("h"), x.to(torch::kHalf).to(torch::kFloat)));
  EXPECT_TRUE(torch::equal(*(*file)->LoadFloat("b"), x.to(torch::kBFloat16).to(torch::kFloat)));
  EXPECT_EQ((*file)->LoadFloat("nope").status().code(), absl::StatusCode::kNotFound);
}

TEST(HfCheckpoint, ShardedBf16GqaUntiedWithLinearScalingLoads) {
  auto ckpt = RandomCheckpoint(SmallConfig(), 7);
  ckpt.config.rope_scaling = 2.0;
  ckpt.config.rope_theta = 50000;
  testing::TempDir single, sharded;
  ASSERT_TRUE(SaveHfCheckpoint(ckpt, single.path()).ok());
  // Re-save as two BF16 shards plus an index, as large HF models come.
  std::vector<std::pair<std::string, at::Tensor>> a, b;
  nlohmann::json index = {{"metadata", nlohmann::json::object()}, {"weight_map", nlohmann::json::object()}};
  for (const auto& [name, t] : ckpt.tensors) {
    bool first = name.find("layers.1.") == std::string::npos;
    (first ? a : b).push_back({name, t.to(torch::kBFloat16)});
    index["weight_map"][name] = first ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
  }
  ASSERT_TRUE(WriteSafetensors(sharded / "model-00001-of-00002.safetensors", a).ok());
  ASSERT_TRUE(WriteSafetensors(sharded / "model-00002-of-00002.safetensors", b).ok());
  std::ofstream(sharded / "model.safetensors.index.json") << index.dump();
  std::filesystem::copy_file(single / "config.json", sharded / "config.json");

  auto loaded = LoadHfCheckpoint(sharded.path());
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->config.n_kv_heads, 2);
  EXPECT_FALSE(loaded->config.tied_embeddings);
  EXPECT_DOUBLE_EQ(loaded->config.rope_scaling, 2.0);
  EXPECT_DOUBLE_EQ(loaded->config.rope_theta, 50000);
  for (const auto& [name, t] : ckpt.tensors)
    EXPECT_TRUE(torch::equal(loaded->tensors.at(name), t.to(torch::kBFloat16).to(torch::kFloat))) << name;
  // The single-file fp32 copy loads to the same weights, and runs.
  auto fp32 = LoadHfCheckpoint(single.path());
  ASSERT_TRUE(fp32.ok()) << fp32.status();
  EXPECT_EQ(AllLogits(*fp32, {1, 5, 9}).sizes(), (std::vector<int64_t>{1, 3, 64}));
}

// Llama 3.1's rope_scaling (type "llama3"): divisors of the inverse frequencies as transformers'
// _compute_llama3_parameters gives them for Llama-3.1-8B (values computed with its formula).
TEST(HfCheckpoint, Llama3RopeScalingDividesLongWavelengths) {
  auto d = Llama3FreqDivisors(500000, 128, 8, 1, 4, 8192);
  ASSERT_EQ(d.size(), 64u);
  EXPECT_FLOAT_EQ(d[0], 1.0f);
  EXPECT_FLOAT_EQ(d[28], 1.0f);
  EXPECT_NEAR(d[29], 1.207484, 1e-5);
  EXPECT_NEAR(d[32], 2.69453, 1e-5);
  EXPECT_NEAR(d[34], 5.257327, 1e-5);
  EXPECT_FLOAT_EQ(d[63], 8.0f);
  // A config.json with it loads, and the model's table uses the divided frequencies.
  auto ckpt = RandomCheckpoint(SmallConfig(), 7);
  testing::TempDir dir;
  ASSERT_TRUE(SaveHfCheckpoint(ckpt, dir.path()).ok());
  std::ifstream in(dir / "config.json");
  auto config = nlohmann::json::parse(in);
  in.close();
  config["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0},
                            {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 16}};
  std::ofstream(dir / "config.json") << config.dump();
  auto loaded = LoadHfCheckpoint(dir.path());
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  const auto& divisors = loaded->config.rope_freq_divisors;
  ASSERT_EQ(static_cast<int>(divisors.size()), loaded->config.head_dim() / 2);
  EXPECT_FLOAT_EQ(divisors.front(), 1.0f);
  EXPECT_FLOAT_EQ(divisors.back(), 8.0f);
  auto scaled = MakeRopeTable(loaded->config.rope_theta, loaded->config.head_dim(), 4, 1.0, divisors);
  auto plain = MakeRopeTable(loaded->config.rope_theta, loaded->config.head_dim(), 4);
  const int last = loaded->config.head_dim() / 2 - 1;
  EXPECT_NEAR(std::acos(scaled.cos[1][last].item<float>()), std::acos(plain.cos[1][last].item<float>()) / 8, 1e-6);
  EXPECT_FLOAT_EQ(scaled.cos[3][0].item<float>(), plain.cos[3][0].item<float>());
  // An unknown type is refused by name.
  config["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}};
  std::ofstream(dir / "config.json") << config.dump();
  EXPECT_THAT(std::string(LoadHfCheckpoint(dir.path()).status().message()),
              ::testing::HasSubstr("rope_scaling type 'yarn' is not supported (supported: linear, llama3)"));
}

TEST(CorruptFiles, TruncatedLlama2cCheckpointNamesTensor) {
  // A valid tiny llama2.c file written by hand, then cut short.
  const int32_t header[7] = {8, 16, 1, 2, 2, 32, 8};
  const size_t floats = 32 * 8 + 8 + 3 * 64 + 64 + 8 + 3 * 128 + 8 + 2 * 8 * 2;
  std::string bytes(reinterpret_cast<const char*>(header), sizeof(header));
  bytes.append(floats * 4, '\0');
  testing::TempDir dir;
  WriteFile(dir / "ok.bin", bytes);
  auto ok = LoadLlama2cCheckpoint(dir / "ok.bin");
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_TRUE(ValidateCheckpoint(*ok).ok());

  WriteFile(dir / "cut.bin", bytes.substr(0, bytes.size() / 2));
  auto cut = LoadLlama2cCheckpoint(dir / "cut.bin");
  ASSERT_FALSE(cut.ok());
  EXPECT_THAT(std::string(cut.status().message()), HasSubstr(dir / "cut.bin"));
  EXPECT_THAT(std::string(cut.status().message()), HasSubstr("truncated in tensor 'w"));

  std::string mangled = bytes;
  const int32_t bad_heads = 3;  // dim 8 is not a multiple of 3 heads
  std::memcpy(mangled.data() + 12, &bad_heads, 4);
  WriteFile(dir / "mangled.bin", mangled);
  EXPECT_FALSE(LoadLlama2cCheckpoint(dir / "mangled.bin").ok());
  WriteFile(dir / "tiny.bin", "abc");
  EXPECT_FALSE(LoadLlama2cCheckpoint(dir / "tiny.bin").ok());
  EXPECT_EQ(LoadLlama2cCheckpoint(dir / "absent.bin").status().code(), absl::StatusCode::kNotFound);
}

class CorruptSafetensors : public ::testing::Test {
 protected:
  void SetUp() override {
    ckpt_ = RandomCheckpoint(SmallConfig(), 1);
    ASSERT_TRUE(SaveHfCheckpoint(ckpt_, dir_.path()).ok());
    file_ = dir_ / "model.safetensors";
    bytes_ = ReadFile(file_);
  }
  std::string LoadError() {
    auto r = LoadHfCheckpoint(dir_.path());
    EXPECT_FALSE(r.ok());
    return r.ok() ? "" : std::string(r.status().message());
  }
  Checkpoint ckpt_;
  testing::TempDir dir_;
  std::string file_, bytes_;
};

TEST_F(CorruptSafetensors, Truncated) {
  WriteFile(file_, bytes_.substr(0, bytes_.size() - 100));
  auto err = LoadError();
  EXPECT_THAT(err, HasSubstr(file_));
  EXPECT_THAT(err, HasSubstr("tensor '"));
  EXPECT_THAT(err, HasSubstr("truncated"));
}

TEST_F(CorruptSafetensors, TruncatedInsideHeader) {
  WriteFile(file_, bytes_.substr(0, 20));
  EXPECT_THAT(LoadError(), HasSubstr("header length exceeds the file"));
}

TEST_F(CorruptSafetensors, MangledHeader) {
  std::string b = bytes_;
  b[8] = 'X';  // the JSON's opening brace
  WriteFile(file_, b);
  EXPECT_THAT(LoadError(), HasSubstr("malformed"));
}

TEST_F(CorruptSafetensors, UnknownDtypeNamesTensor) {
  std::string b = bytes_;
  auto at = b.find("\"F32\"");
  ASSERT_NE(at, std::string::npos);
  b.replace(at, 5, "\"I32\"");
  WriteFile(file_, b);
  auto err = LoadError();
  EXPECT_THAT(err, HasSubstr("unsupported dtype I32"));
  EXPECT_THAT(err, HasSubstr("tensor '"));
}

TEST_F(CorruptSafetensors, WrongShapeNamesFileAndTensor) {
  auto tensors = std::vector<std::pair<std::string, at::Tensor>>(ckpt_.tensors.begin(), ckpt_.tensors.end());
  for (auto& [name, t] : tensors)
    if (name == "model.layers.1.mlp.up_proj.weight") t = torch::zeros({47, 32});
  ASSERT_TRUE(WriteSafetensors(file_, tensors).ok());
  auto err = LoadError();
  EXPECT_THAT(err, HasSubstr(file_));
  EXPECT_THAT(err, HasSubstr("model.layers.1.mlp.up_proj.weight"));
  EXPECT_THAT(err, HasSubstr("[47,32]"));
}

TEST_F(CorruptSafetensors, MissingTensorIsNamed) {
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (const auto& [name, t] : ckpt_.tensors)
    if (name != "lm_head.weight") tensors.push_back({name, t});
  ASSERT_TRUE(WriteSafetensors(file_, tensors).ok());
  EXPECT_THAT(LoadError(), HasSubstr("'lm_head.weight' is missing"));
}

TEST_F(CorruptSafetensors, BadConfig) {
  WriteFile(dir_ / "config.json", "{\"hidden_size\": 32");
  EXPECT_THAT(LoadError(), HasSubstr("config.json"));
  WriteFile(dir_ / "config.json", R"({"hidden_size": 32, "intermediate_size": 48, "num_hidden_layers": 2,
      "num_attention_heads": 4, "vocab_size": 64, "rope_scaling": {"type": "yarn", "factor": 4}})");
  EXPECT_THAT(LoadError(), HasSubstr("rope_scaling type 'yarn'"));
}

TEST(ShapeSpec, ParsesAndRejects) {
  auto c = ParseShapeSpec("dim=768,layers=12,heads=12,kv_heads=12,hidden=2048,vocab=32000,ctx=1024");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->head_dim(), 64);
  EXPECT_FALSE(ParseShapeSpec("dim=768,layers=12,heads=7,hidden=2048,vocab=32000,ctx=1024").ok());
  EXPECT_FALSE(ParseShapeSpec("dim=768,colour=blue").ok());
}

}  // namespace
}  // namespace stave
