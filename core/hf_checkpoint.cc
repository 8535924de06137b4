#include "core/hf_checkpoint.h"

#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <array>
#include <optional>
#include <set>

#include "absl/strings/str_cat.h"
#include "core/hf_config.h"
#include "core/rope.h"
#include "core/safetensors.h"
#include "nlohmann/json.hpp"

namespace stave {
namespace fs = std::filesystem;

namespace {

absl::StatusOr<nlohmann::json> ReadJson(const fs::path& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path.string()));
  auto j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object())
    return absl::InvalidArgumentError(absl::StrCat(path.string(), ": not a JSON object"));
  return j;
}

}  // namespace

absl::StatusOr<ModelConfig> LoadHfConfig(const std::string& dir) {
  const std::string file = (fs::path(dir) / "config.json").string();
  std::ifstream in(file, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", file));
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto parsed = ParseHfConfig(text, file);
  if (!parsed.ok()) return parsed.status();
  ModelConfig c = parsed->config;
  if (parsed->llama3.has_value()) {
    const auto& [factor, low, high, original] = *parsed->llama3;
    c.rope_freq_divisors = Llama3FreqDivisors(c.rope_theta, c.head_dim(), factor, low, high, original);
  }
  return c;
}

absl::StatusOr<Checkpoint> LoadHfCheckpoint(const std::string& dir) {
  auto config = LoadHfConfig(dir);
  if (!config.ok()) return config.status();
  Checkpoint ckpt;
  ckpt.config = *config;
  ckpt.source = dir;

  // Which file holds which tensor: one file, or the shards named by the index.
  std::vector<std::string> shard_files;
  const fs::path single = fs::path(dir) / "model.safetensors";
  const fs::path index = fs::path(dir) / "model.safetensors.index.json";
  if (fs::exists(single)) {
    shard_files.push_back(single.string());
  } else if (fs::exists(index)) {
    auto j = ReadJson(index);
    if (!j.ok()) return j.status();
    if (!j->contains("weight_map") || !(*j)["weight_map"].is_object())
      return absl::InvalidArgumentError(absl::StrCat(index.string(), ": no weight_map object"));
    std::set<std::string> names;
    for (auto& [tensor, file] : (*j)["weight_map"].items()) {
      if (!file.is_string())
        return absl::InvalidArgumentError(
            absl::StrCat(index.string(), ": weight_map entry for '", tensor, "' is not a string"));
      names.insert(file.get<std::string>());
    }
    for (const auto& n : names) shard_files.push_back((fs::path(dir) / n).string());
    ckpt.source = index.string();
  } else {
    return absl::NotFoundError(
        absl::StrCat(dir, ": neither model.safetensors nor model.safetensors.index.json found"));
  }

  for (const auto& path : shard_files) {
    auto file = SafetensorsFile::Open(path);
    if (!file.ok()) return file.status();
    for (const auto& [name, entry] : (*file)->entries()) {
      auto t = (*file)->LoadFloat(name);
      if (!t.ok()) return t.status();
      ckpt.tensors[name] = *std::move(t);
      ckpt.origin[name] = path;
    }
  }
  auto status = ValidateCheckpoint(ckpt);
  if (!status.ok()) return status;
  return ckpt;
}

absl::Status SaveHfCheckpoint(const Checkpoint& ckpt, const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return absl::PermissionDeniedError(absl::StrCat("cannot create ", dir, ": ", ec.message()));
  const ModelConfig& c = ckpt.config;
  nlohmann::json j = {
      {"architectures", {"LlamaForCausalLM"}},
      {"model_type", "llama"},
      {"hidden_size", c.dim},
      {"intermediate_size", c.hidden_dim},
      {"num_hidden_layers", c.n_layers},
      {"num_attention_heads", c.n_heads},
      {"num_key_value_heads", c.n_kv_heads},
      {"vocab_size", c.vocab_size},
      {"max_position_embeddings", c.max_seq_len},
      {"rope_theta", c.rope_theta},
      {"rms_norm_eps", c.norm_eps},
      {"tie_word_embeddings", c.tied_embeddings},
      {"bos_token_id", c.bos_id},
      // llama2.c models end a story with BOS (the reference runner stops on it); writing it as the
      // EOS of the converted model keeps generation stopping where the original did.
      {"eos_token_id", c.stop_id()},
      {"hidden_act", "silu"},
      {"torch_dtype", "float32"},
  };
  if (c.rope_scaling != 1.0) j["rope_scaling"] = {{"type", "linear"}, {"factor", c.rope_scaling}};
  if (!c.rope_freq_divisors.empty())
    return absl::UnimplementedError("models with per-frequency RoPE scaling (llama3, GGUF rope_freqs) are not "
                                    "written as Hugging Face directories; write GGUF (--quantize f32)");
  std::ofstream out(fs::path(dir) / "config.json");
  out << j.dump(2) << "\n";
  if (!out) return absl::DataLossError(absl::StrCat("failed writing ", dir, "/config.json"));
  std::vector<std::pair<std::string, at::Tensor>> tensors(ckpt.tensors.begin(), ckpt.tensors.end());
  return WriteSafetensors((fs::path(dir) / "model.safetensors").string(), tensors,
                          {{"format", "pt"}});
}

}  // namespace stave
