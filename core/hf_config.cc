#include "core/hf_config.h"

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace stave {
namespace {

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

absl::StatusOr<HfConfig> ParseHfConfigJson(const nlohmann::json& j, const std::string& file) {
  HfConfig out;
  ModelConfig& c = out.config;
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
  // In 64 bits: head_dim * heads of two ints overflowed int (undefined behaviour) for a large
  // head_dim.
  if (j.contains("head_dim") && j["head_dim"].is_number_integer() &&
      int64_t{j["head_dim"].get<int>()} * c.n_heads != c.dim)
    return absl::UnimplementedError(
        absl::StrCat(file, ": head_dim * num_attention_heads != hidden_size is not supported"));
  c.rope_theta = j.value("rope_theta", 10000.0);
  c.norm_eps = j.value("rms_norm_eps", 1e-6);
  c.tied_embeddings = j.value("tie_word_embeddings", false);
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
      // Needs the head dimension: computed by the caller once the shape is validated.
      out.llama3 = {factor, low, high, original};
    } else if (type != "default") {
      return absl::UnimplementedError(absl::StrCat(
          file, ": rope_scaling type '", type, "' is not supported (supported: linear, llama3)"));
    }
  }
  auto status = ValidateConfig(c, file);
  if (!status.ok()) return status;
  return out;
}

}  // namespace

absl::StatusOr<HfConfig> ParseHfConfig(absl::string_view json_text, const std::string& file) {
  auto j = nlohmann::json::parse(json_text.begin(), json_text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object())
    return absl::InvalidArgumentError(absl::StrCat(file, ": not a JSON object"));
  try {
    return ParseHfConfigJson(j, file);
  } catch (const nlohmann::json::exception& e) {
    // json::value() throws when a field has the wrong type ("rope_theta": "x", or a rope_scaling
    // that is not an object); that escaped LoadHfConfig as an exception instead of a Status.
    return absl::InvalidArgumentError(absl::StrCat(file, ": ", e.what()));
  }
}

}  // namespace stave
