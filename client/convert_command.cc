// stave convert: llama2.c checkpoint (or any loadable model) -> Hugging Face directory, or a
// random-weight Hugging Face model of a given shape.
#include <cstdio>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "client/commands.h"
#include "core/checkpoint.h"
#include "core/hf_checkpoint.h"
#include "core/model.h"
#include "core/tokenizer.h"

namespace stave::cli {
namespace {
namespace fs = std::filesystem;

struct ConvertOptions {
  std::string model, tokenizer, random_shape, out;
  uint64_t seed = 0;
};

absl::Status RunConvert(const ConvertOptions& o) {
  if (o.model.empty() == o.random_shape.empty())
    return absl::InvalidArgumentError("give exactly one of --model and --random-shape");
  Checkpoint ckpt;
  if (!o.model.empty()) {
    std::fprintf(stderr, "loading %s\n", o.model.c_str());
    auto loaded = LoadCheckpoint(o.model);
    if (!loaded.ok()) return loaded.status();
    ckpt = *std::move(loaded);
  } else {
    auto config = ParseShapeSpec(o.random_shape);
    if (!config.ok()) return config.status();
    std::fprintf(stderr, "making random weights: %s\n", config->ToString().c_str());
    ckpt = RandomCheckpoint(*config, o.seed);
  }
  if (!o.tokenizer.empty()) {
    auto tok = LoadTokenizer(o.tokenizer, ckpt.config.vocab_size);
    if (!tok.ok()) return tok.status();
  }
  auto status = SaveHfCheckpoint(ckpt, o.out);
  if (!status.ok()) return status;
  if (!o.tokenizer.empty()) {
    const char* name = fs::path(o.tokenizer).extension() == ".bin" ? "tokenizer.bin" : "tokenizer.model";
    std::error_code ec;
    fs::copy_file(o.tokenizer, fs::path(o.out) / name, fs::copy_options::overwrite_existing, ec);
    if (ec) return absl::PermissionDeniedError(absl::StrCat("copying the tokenizer: ", ec.message()));
    fs::permissions(fs::path(o.out) / name, fs::perms::owner_write, fs::perm_options::add, ec);
  }
  std::fprintf(stderr, "wrote %s (config.json, model.safetensors%s): %s\n", o.out.c_str(),
               o.tokenizer.empty() ? "" : ", tokenizer", ckpt.config.ToString().c_str());
  return absl::OkStatus();
}

}  // namespace

void AddConvertCommand(CLI::App& app) {
  auto o = std::make_shared<ConvertOptions>();
  auto* cmd = app.add_subcommand("convert", "write a Hugging Face model directory");
  cmd->add_option("--model", o->model, "model to convert (llama2.c .bin or HF directory)");
  cmd->add_option("--random-shape", o->random_shape,
                  "random weights of this shape, e.g. dim=768,layers=12,heads=12,kv_heads=12,"
                  "hidden=2048,vocab=32000,ctx=1024");
  cmd->add_option("--tokenizer", o->tokenizer, "tokenizer to copy into the output directory");
  cmd->add_option("--seed", o->seed, "seed for --random-shape")->capture_default_str();
  cmd->add_option("--out", o->out, "output directory")->required();
  cmd->callback([o] { CommandStatus() = RunConvert(*o); });
}

}  // namespace stave::cli
