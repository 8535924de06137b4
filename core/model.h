// A loaded model: config, weights (inside the transformer), tokenizer and the RoPE table of the
// model's own base; immutable once loaded (what runs with it, RoPE tables of other bases, routers,
// KV memory, belongs to the runtime: position_cache.h, kv_pool.h). The entry point for the client
// and the server; LibTorch stays out of this header.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "core/model_config.h"
#include "core/tokenizer.h"

namespace stave {

struct Checkpoint;
class Transformer;
struct RopeTable;

class Model {
 public:
  // A llama2.c .bin file or a Hugging Face directory. Without tokenizer_path the tokenizer is
  // looked up next to the model (tokenizer.model, then tokenizer.bin).
  static absl::StatusOr<std::unique_ptr<Model>> Load(const std::string& model_path,
                                                     const std::string& tokenizer_path = "");
  // Any loaded or generated checkpoint; the tokenizer may be null (benchmarks).
  static std::unique_ptr<Model> FromCheckpoint(const Checkpoint& ckpt,
                                               std::unique_ptr<Tokenizer> tokenizer);
  ~Model();

  const ModelConfig& config() const { return config_; }
  const Tokenizer* tokenizer() const { return tokenizer_.get(); }
  const Transformer& transformer() const { return *transformer_; }
  const RopeTable& rope() const { return *rope_; }  // the model's own base
  const std::string& path() const { return path_; }

 private:
  Model() = default;
  ModelConfig config_;
  std::string path_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::unique_ptr<Transformer> transformer_;
  std::unique_ptr<RopeTable> rope_;
};

// tokenizer.model or tokenizer.bin in the model's directory (or next to its file); "" if none.
std::string FindTokenizerNextTo(const std::string& model_path);

// Loads a checkpoint in any format (directory = Hugging Face, file = llama2.c).
absl::StatusOr<Checkpoint> LoadCheckpoint(const std::string& model_path);

}  // namespace stave
