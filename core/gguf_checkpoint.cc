#include "core/gguf_checkpoint.h"

#include <torch/torch.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "core/formats/gguf.h"
#include "core/formats/gguf_writer.h"
#include "core/llama2c_checkpoint.h"

namespace stave {
namespace {

absl::StatusOr<quant::WeightType> StorageType(const gguf::File& file, const gguf::TensorInfo& t) {
  switch (t.type) {
    case gguf::TensorType::kF32: return quant::WeightType::kF32;
    case gguf::TensorType::kF16: return quant::WeightType::kF16;
    case gguf::TensorType::kBF16: return quant::WeightType::kBF16;
    case gguf::TensorType::kQ8_0: return quant::WeightType::kQ8_0;
    case gguf::TensorType::kQ4_0: return quant::WeightType::kQ4_0;
  }
  return absl::UnimplementedError(absl::StrCat(file.name(), ": tensor ", t.name, " has type ",
                                               gguf::TensorTypeName(t.type),
                                               ", which stave does not compute with (supported: F32, "
                                               "F16, BF16, Q8_0, Q4_0; re-quantize with llama-quantize or "
                                               "stave convert --quantize)"));
}

// Reads an integer hyperparameter, with a default when absent; errors name the key.
absl::StatusOr<int> IntParam(const gguf::File& f, const std::string& key, int fallback, bool required) {
  auto v = f.GetInt(key);
  if (absl::IsNotFound(v.status()) && !required) return fallback;
  if (!v.ok()) return v.status();
  if (*v <= 0 || *v > (int64_t{1} << 30))
    return absl::InvalidArgumentError(absl::StrCat(f.name(), ": ", key, " = ", *v, " is implausible"));
  return static_cast<int>(*v);
}

// GGUF and Hugging Face names of one checkpoint's tensors, with the head count of q/k rows (whose
// RoPE layout differs between the two) or 0.
struct TensorName {
  std::string gguf, hf;
  int rope_heads;
};

std::vector<TensorName> TensorNames(const ModelConfig& c) {
  std::vector<TensorName> names = {{"token_embd.weight", "model.embed_tokens.weight", 0},
                                   {"output_norm.weight", "model.norm.weight", 0}};
  if (!c.tied_embeddings) names.push_back({"output.weight", "lm_head.weight", 0});
  for (int l = 0; l < c.n_layers; ++l) {
    auto g = [l](const char* s) { return absl::StrCat("blk.", l, ".", s); };
    auto h = [l](const char* s) { return LayerTensorName(l, s); };
    names.push_back({g("attn_norm.weight"), h("input_layernorm.weight"), 0});
    names.push_back({g("attn_q.weight"), h("self_attn.q_proj.weight"), c.n_heads});
    names.push_back({g("attn_k.weight"), h("self_attn.k_proj.weight"), c.n_kv_heads});
    names.push_back({g("attn_v.weight"), h("self_attn.v_proj.weight"), 0});
    names.push_back({g("attn_output.weight"), h("self_attn.o_proj.weight"), 0});
    names.push_back({g("ffn_norm.weight"), h("post_attention_layernorm.weight"), 0});
    names.push_back({g("ffn_gate.weight"), h("mlp.gate_proj.weight"), 0});
    names.push_back({g("ffn_up.weight"), h("mlp.up_proj.weight"), 0});
    names.push_back({g("ffn_down.weight"), h("mlp.down_proj.weight"), 0});
  }
  return names;
}

// The inverse of InterleavedToHalves: rotate-half rows back to GGUF's interleaved pairs.
at::Tensor HalvesToInterleaved(const at::Tensor& w, int n_heads, int head_dim) {
  return w.view({n_heads, 2, head_dim / 2, w.size(1)}).transpose(1, 2).reshape(w.sizes());
}

gguf::TensorType GgufType(quant::WeightType type) {
  switch (type) {
    case quant::WeightType::kF32: return gguf::TensorType::kF32;
    case quant::WeightType::kF16: return gguf::TensorType::kF16;
    case quant::WeightType::kBF16: return gguf::TensorType::kBF16;
    case quant::WeightType::kQ8_0: return gguf::TensorType::kQ8_0;
    case quant::WeightType::kQ4_0: return gguf::TensorType::kQ4_0;
  }
  return gguf::TensorType::kF32;
}

// llama.cpp's general.file_type (llama_ftype) for a file whose matrices are all `type`.
uint32_t FileType(quant::WeightType type) {
  switch (type) {
    case quant::WeightType::kF32: return 0;   // LLAMA_FTYPE_ALL_F32
    case quant::WeightType::kF16: return 1;   // MOSTLY_F16
    case quant::WeightType::kQ4_0: return 2;  // MOSTLY_Q4_0
    case quant::WeightType::kQ8_0: return 7;  // MOSTLY_Q8_0
    case quant::WeightType::kBF16: return 32; // MOSTLY_BF16
  }
  return 0;
}

}  // namespace


absl::StatusOr<Checkpoint> LoadGgufCheckpoint(const std::string& path) {
  auto file = gguf::File::Open(path);
  if (!file.ok()) return file.status();
  return CheckpointFromGguf(**file);
}

absl::StatusOr<Checkpoint> CheckpointFromGguf(const gguf::File& file) {
  auto arch = file.GetString("general.architecture");
  if (!arch.ok()) return arch.status();
  if (*arch != "llama")
    return absl::UnimplementedError(absl::StrCat(file.name(), ": architecture '", *arch,
                                                 "' is not supported (stave runs 'llama')"));
  Checkpoint ckpt;
  ckpt.source = file.name();
  ModelConfig& c = ckpt.config;
  c.format = CheckpointFormat::kHuggingFace;
  struct IntKey {
    const char* key;
    int* field;
    int fallback;
    bool required;
  };
  for (const IntKey& k : {IntKey{"llama.embedding_length", &c.dim, 0, true},
                          IntKey{"llama.feed_forward_length", &c.hidden_dim, 0, true},
                          IntKey{"llama.block_count", &c.n_layers, 0, true},
                          IntKey{"llama.attention.head_count", &c.n_heads, 0, true},
                          IntKey{"llama.context_length", &c.max_seq_len, 2048, false}}) {
    auto v = IntParam(file, k.key, k.fallback, k.required);
    if (!v.ok()) return v.status();
    *k.field = *v;
  }
  auto kv_heads = IntParam(file, "llama.attention.head_count_kv", c.n_heads, false);
  if (!kv_heads.ok()) return kv_heads.status();
  c.n_kv_heads = *kv_heads;
  if (auto theta = file.GetFloat("llama.rope.freq_base"); theta.ok()) c.rope_theta = *theta;
  if (auto eps = file.GetFloat("llama.attention.layer_norm_rms_epsilon"); eps.ok()) c.norm_eps = *eps;
  if (auto type = file.GetString("llama.rope.scaling.type"); type.ok() && *type != "none") {
    if (*type != "linear")
      return absl::UnimplementedError(absl::StrCat(file.name(), ": llama.rope.scaling.type '", *type,
                                                   "' is not supported (supported: none, linear)"));
    auto factor = file.GetFloat("llama.rope.scaling.factor");
    if (factor.ok()) c.rope_scaling = *factor;
  }
  if (auto bos = file.GetInt("tokenizer.ggml.bos_token_id"); bos.ok()) c.bos_id = static_cast<int>(*bos);
  if (auto eos = file.GetInt("tokenizer.ggml.eos_token_id"); eos.ok()) c.eos_id = static_cast<int>(*eos);

  const gguf::TensorInfo* embd = file.FindTensor("token_embd.weight");
  if (embd == nullptr)
    return absl::NotFoundError(absl::StrCat(file.name(), ": tensor token_embd.weight is missing"));
  if (embd->dims.size() != 2)
    return absl::InvalidArgumentError(absl::StrCat(file.name(), ": token_embd.weight is not a matrix"));
  c.vocab_size = static_cast<int>(embd->dims[1]);
  c.tied_embeddings = file.FindTensor("output.weight") == nullptr;
  if (auto status = ValidateConfig(c, file.name()); !status.ok()) return status;
  // Llama 3.1 GGUFs carry their frequency-dependent RoPE scaling as divisors (llama.cpp's form).
  if (const gguf::TensorInfo* freqs = file.FindTensor("rope_freqs.weight")) {
    if (freqs->type != gguf::TensorType::kF32 || freqs->dims.size() != 1 || freqs->dims[0] != c.head_dim() / 2)
      return absl::InvalidArgumentError(absl::StrCat(file.name(), ": tensor rope_freqs.weight must be F32 [",
                                                     c.head_dim() / 2, "]"));
    c.rope_freq_divisors.resize(c.head_dim() / 2);
    std::memcpy(c.rope_freq_divisors.data(), freqs->data, freqs->bytes);
  }

  // The File's mapping outlives it through the tensors: each holds the keep-alive handle.
  std::shared_ptr<const void> keep_alive = file.keep_alive();
  auto put = [&](const std::string& gguf_name, const std::string& hf_name,
                 int rope_heads) -> absl::Status {
    const gguf::TensorInfo* t = file.FindTensor(gguf_name);
    if (t == nullptr) return absl::NotFoundError(absl::StrCat(file.name(), ": tensor ", gguf_name, " is missing"));
    auto type = StorageType(file, *t);
    if (!type.ok()) return type.status();
    if (t->dims.size() > 2)
      return absl::InvalidArgumentError(absl::StrCat(file.name(), ": tensor ", gguf_name, " has ", t->dims.size(),
                                                     " dimensions (a llama tensor has 1 or 2)"));
    const int64_t cols = t->dims[0], rows = t->dims.size() == 2 ? t->dims[1] : 1;
    const int64_t row_bytes = static_cast<int64_t>(quant::RowBytes(*type, cols));
    // The data is aligned as the file says (>= 32 bytes) and read-only; nothing writes weights.
    auto bytes = torch::from_blob(const_cast<unsigned char*>(t->data), {rows, row_bytes},
                                  [keep_alive](void*) {}, torch::kUInt8);
    Weight w{bytes, *type, cols};
    if (*type == quant::WeightType::kF32) w = Weight::Dense(bytes.view(torch::kFloat));
    if (t->dims.size() == 1) {
      // Norms: fp32 vectors (converted once; they are small).
      ckpt.tensors[hf_name] = Dequantize(w).view({cols}).clone();
    } else {
      // GGUF stores q/k rows in the interleaved RoPE layout; the forward pass rotates halves.
      if (rope_heads > 0) w.data = InterleavedToHalves(w.data, rope_heads, c.head_dim()).contiguous();
      if (!w.packed()) {
        ckpt.tensors[hf_name] = w.data;
      } else {
        ckpt.tensors[hf_name] = w.data;
        ckpt.packed[hf_name] = Checkpoint::Packed{*type, cols};
      }
    }
    ckpt.origin[hf_name] = file.name();
    return absl::OkStatus();
  };
  for (const TensorName& n : TensorNames(c))
    if (auto status = put(n.gguf, n.hf, n.rope_heads); !status.ok()) return status;
  if (auto status = ValidateCheckpoint(ckpt); !status.ok()) return status;
  return ckpt;
}

absl::Status SaveGgufCheckpoint(const Checkpoint& ckpt, quant::WeightType type, const Tokenizer* tokenizer,
                                const std::string& path, const std::function<void(int, int)>& progress) {
  if (auto status = ValidateCheckpoint(ckpt); !status.ok()) return status;
  const ModelConfig& c = ckpt.config;
  gguf::Writer w;
  w.SetString("general.architecture", "llama");
  w.SetString("general.name", "stave");
  w.SetUint32("general.file_type", FileType(type));
  w.SetUint32("general.quantization_version", 2);
  w.SetUint32("llama.context_length", c.max_seq_len);
  w.SetUint32("llama.embedding_length", c.dim);
  w.SetUint32("llama.feed_forward_length", c.hidden_dim);
  w.SetUint32("llama.block_count", c.n_layers);
  w.SetUint32("llama.attention.head_count", c.n_heads);
  w.SetUint32("llama.attention.head_count_kv", c.n_kv_heads);
  w.SetUint32("llama.rope.dimension_count", c.head_dim());
  w.SetFloat32("llama.rope.freq_base", static_cast<float>(c.rope_theta));
  w.SetFloat32("llama.attention.layer_norm_rms_epsilon", static_cast<float>(c.norm_eps));
  if (c.rope_scaling != 1.0) {
    w.SetString("llama.rope.scaling.type", "linear");
    w.SetFloat32("llama.rope.scaling.factor", static_cast<float>(c.rope_scaling));
  }
  if (tokenizer != nullptr) {
    auto vocab = tokenizer->SentencePieceVocabulary();
    if (!vocab.empty()) {
      std::vector<std::string> pieces;
      std::vector<float> scores;
      std::vector<int32_t> types;
      for (const auto& e : vocab) {
        pieces.push_back(e.piece);
        scores.push_back(e.score);
        types.push_back(e.type);
      }
      w.SetString("tokenizer.ggml.model", "llama");
      w.SetStringArray("tokenizer.ggml.tokens", pieces);
      w.SetFloat32Array("tokenizer.ggml.scores", scores);
      w.SetInt32Array("tokenizer.ggml.token_type", types);
      w.SetUint32("tokenizer.ggml.unknown_token_id", 0);
      w.SetUint32("tokenizer.ggml.bos_token_id", c.bos_id);
      w.SetUint32("tokenizer.ggml.eos_token_id", c.eos_id);
    }
  }
  auto packed = PackWeights(ckpt, type);
  if (!packed.ok()) return packed.status();
  const auto names = TensorNames(c);
  int done = 0;
  for (const TensorName& n : names) {
    // Packed rows are independent, so the RoPE row order is restored on the stored bytes.
    at::Tensor t = packed->tensors.at(n.hf).contiguous();
    if (n.rope_heads > 0) t = HalvesToInterleaved(t, n.rope_heads, c.head_dim()).contiguous();
    const bool matrix = t.dim() == 2;
    const int64_t cols = matrix ? (type == quant::WeightType::kF32 ? t.size(1) : packed->packed.at(n.hf).cols) : t.size(0);
    std::vector<int64_t> dims = matrix ? std::vector<int64_t>{cols, t.size(0)} : std::vector<int64_t>{cols};
    w.AddTensor(n.gguf, dims, matrix ? GgufType(type) : gguf::TensorType::kF32,
                std::string(static_cast<const char*>(t.data_ptr()), t.nbytes()));
    if (progress) progress(++done, static_cast<int>(names.size()));
  }
  if (!c.rope_freq_divisors.empty())
    w.AddTensor("rope_freqs.weight", {static_cast<int64_t>(c.rope_freq_divisors.size())}, gguf::TensorType::kF32,
                std::string(reinterpret_cast<const char*>(c.rope_freq_divisors.data()), c.rope_freq_divisors.size() * 4));
  return w.WriteFile(path);
}

}  // namespace stave
