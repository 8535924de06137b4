#include "core/hf_checkpoint.h"

#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <array>
#include <optional>
#include <set>

#include "absl/strings/str_cat.h"
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

// Reads an integer field; `fallback` < 0 means required.
absl::StatusOr<int> IntField(const nlohmann::json& j, const char* key, int fallback,
                             const std::string& file) {
  if (!j.contains(key) || j[key].is_null()) {
    if (fallback >= 0) return fallback;
    return absl::InvalidArgumentError(absl::StrCat(file, ": missing field '", key, "'"));
  }
  const auto& v = j[key];
  if (v.is_array() && !v.empty() && v[0].is_number_integer()) return v[0].get<int>();  // eos lists
  if (!v.is_number_integer())
    return absl::InvalidArgumentError(absl::StrCat(file, ": field '", key, "' is not an integer"));
  return v.get<int>();
}

}  // namespace

absl::StatusOr<ModelConfig> LoadHfConfig(const std::string& dir) {
  const std::string file = (fs::path(dir) / "config.json").string();
  auto j_or = ReadJson(file);
  if (!j_or.ok()) return j_or.status();
  const nlohmann::json& j = *j_or;
  ModelConfig c;
  c.format = CheckpointFormat::kHuggingFace;
  struct {
    const char* key;
    int* out;
    int fallback;
  } ints[] = {{"hidden_size", &c.dim, -1},
              {"intermediate_size", &c.hidden_dim, -1},
              {"num_hidden_layers", &c.n_layers, -1},
              {"num_attention_heads", &c.n_heads, -1},
              {"num_key_value_heads", &c.n_kv_heads, 0},
              {"vocab_size", &c.vocab_size, -1},
              {"max_position_embeddings", &c.max_seq_len, 2048},
              {"bos_token_id", &c.bos_id, 1},
              {"eos_token_id", &c.eos_id, 2}};
  for (auto& f : ints) {
    auto v = IntField(j, f.key, f.fallback, file);
    if (!v.ok()) return v.status();
    *f.out = *v;
  }
  if (c.n_kv_heads == 0) c.n_kv_heads = c.n_heads;
  if (j.contains("head_dim") && j["head_dim"].is_number_integer() &&
      j["head_dim"].get<int>() * c.n_heads != c.dim)
    return absl::UnimplementedError(
        absl::StrCat(file, ": head_dim * num_attention_heads != hidden_size is not supported"));
  c.rope_theta = j.value("rope_theta", 10000.0);
  c.norm_eps = j.value("rms_norm_eps", 1e-6);
  c.tied_embeddings = j.value("tie_word_embeddings", false);
  std::optional<std::array<double, 4>> llama3;
  if (j.contains("rope_scaling") && !j["rope_scaling"].is_null()) {
    const auto& rs = j["rope_scaling"];
    std::string type = rs.value("type", rs.value("rope_type", std::string("")));
    if (type == "linear") {
      c.rope_scaling = rs.value("factor", 1.0);
    } else if (type == "llama3") {
      const double factor = rs.value("factor", 8.0), low = rs.value("low_freq_factor", 1.0),
                   high = rs.value("high_freq_factor", 4.0),
                   original = rs.value("original_max_position_embeddings", 8192.0);
      if (!(factor >= 1.0) || !(low > 0) || !(high > low) || !(original > 0))
        return absl::InvalidArgumentError(absl::StrCat(file, ": rope_scaling llama3 needs factor >= 1 and ",
                                                       "0 < low_freq_factor < high_freq_factor"));
      // Needs the head dimension: computed once the shape is validated (below).
      llama3 = {factor, low, high, original};
    } else if (type != "default") {
      return absl::UnimplementedError(absl::StrCat(
          file, ": rope_scaling type '", type, "' is not supported (supported: linear, llama3)"));
    }
  }
  auto status = ValidateConfig(c, file);
  if (!status.ok()) return status;
  if (llama3.has_value())
    c.rope_freq_divisors = Llama3FreqDivisors(c.rope_theta, c.head_dim(), (*llama3)[0], (*llama3)[1], (*llama3)[2],
                                              (*llama3)[3]);
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
