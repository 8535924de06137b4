#include "core/model.h"

#include <torch/torch.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "core/formats/gguf.h"
#include "core/gguf_checkpoint.h"
#include "core/hf_checkpoint.h"
#include "core/llama2c_checkpoint.h"
#include "core/rope.h"
#include "core/text/gguf_tokenizer.h"
#include "core/transformer.h"

namespace stave {
namespace fs = std::filesystem;

absl::StatusOr<Checkpoint> LoadCheckpoint(const std::string& model_path) {
  std::error_code ec;
  if (fs::is_directory(model_path, ec)) return LoadHfCheckpoint(model_path);
  if (!fs::exists(model_path, ec))
    return absl::NotFoundError(absl::StrCat("model not found: ", model_path));
  if (gguf::HasGgufMagic(model_path)) return LoadGgufCheckpoint(model_path);
  return LoadLlama2cCheckpoint(model_path);
}

std::string FindTokenizerNextTo(const std::string& model_path) {
  std::error_code ec;
  fs::path dir = fs::is_directory(model_path, ec) ? fs::path(model_path) : fs::path(model_path).parent_path();
  for (const char* name : {"tokenizer.model", "tokenizer.bin", "tokenizer.json"})
    if (fs::exists(dir / name, ec)) return (dir / name).string();
  return "";
}

namespace {

// A GGUF file carries its tokenizer; --tokenizer still overrides it.
absl::StatusOr<std::unique_ptr<Model>> LoadGguf(const std::string& model_path,
                                                const std::string& tokenizer_path) {
  auto file = gguf::File::Open(model_path);
  if (!file.ok()) return file.status();
  auto ckpt = CheckpointFromGguf(**file);
  if (!ckpt.ok()) return ckpt.status();
  // Without --tokenizer: the file's vocabulary, else a tokenizer next to the file.
  std::string tok_path = tokenizer_path;
  const bool has_vocabulary = (*file)->Find("tokenizer.ggml.model") != nullptr;
  if (tok_path.empty() && !has_vocabulary) {
    tok_path = FindTokenizerNextTo(model_path);
    if (tok_path.empty())
      return absl::NotFoundError(absl::StrCat(model_path, " has no vocabulary (tokenizer.ggml.model) and no ",
                                              "tokenizer.model, tokenizer.bin or tokenizer.json lies next to it; ",
                                              "pass --tokenizer"));
  }
  auto tok = tok_path.empty() ? TokenizerFromGguf(**file) : LoadTokenizer(tok_path, ckpt->config.vocab_size);
  if (!tok.ok()) return tok.status();
  auto model = Model::FromCheckpoint(*ckpt, *std::move(tok));
  // The transformer copied what it fuses or reorders (q/k/v, gate/up); the rest is used in place.
  (*file)->DropResidentPages();
  return model;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Model>> Model::Load(const std::string& model_path,
                                                   const std::string& tokenizer_path) {
  std::error_code ec;
  if (!fs::is_directory(model_path, ec) && gguf::HasGgufMagic(model_path)) {
    auto model = LoadGguf(model_path, tokenizer_path);
    if (model.ok()) (*model)->path_ = model_path;
    return model;
  }
  auto ckpt = LoadCheckpoint(model_path);
  if (!ckpt.ok()) return ckpt.status();
  std::string tok_path = tokenizer_path.empty() ? FindTokenizerNextTo(model_path) : tokenizer_path;
  if (tok_path.empty()) {
    fs::path dir = fs::is_directory(model_path) ? fs::path(model_path) : fs::path(model_path).parent_path();
    if (tok_path.empty())
      return absl::NotFoundError(absl::StrCat("no tokenizer next to ", model_path,
                                              " (looked for tokenizer.model, tokenizer.bin, tokenizer.json in ",
                                              dir.string(), "); pass --tokenizer"));
  }
  auto tok = LoadTokenizer(tok_path, ckpt->config.vocab_size);
  if (!tok.ok()) return tok.status();
  auto model = FromCheckpoint(*ckpt, *std::move(tok));
  model->path_ = model_path;
  return model;
}

std::unique_ptr<Model> Model::FromCheckpoint(const Checkpoint& ckpt,
                                             std::unique_ptr<Tokenizer> tokenizer) {
  auto model = std::unique_ptr<Model>(new Model());
  model->config_ = ckpt.config;
  model->path_ = ckpt.source;
  model->tokenizer_ = std::move(tokenizer);
  model->transformer_ = std::make_unique<Transformer>(ckpt);
  model->rope_ = std::make_unique<RopeTable>(MakeRopeTable(
      ckpt.config.rope_theta, ckpt.config.head_dim(), ckpt.config.max_seq_len, ckpt.config.rope_scaling,
      ckpt.config.rope_freq_divisors));
  return model;
}

Model::~Model() = default;

}  // namespace stave
