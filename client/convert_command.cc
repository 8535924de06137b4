// stave convert: llama2.c checkpoint (or any loadable model) -> Hugging Face directory, or with
// --quantize a GGUF file (F32, F16, BF16, Q8_0, Q4_0) that stave and llama.cpp run; or a
// random-weight model of a given shape in either form.
#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "client/commands.h"
#include "core/checkpoint.h"
#include "core/gguf_checkpoint.h"
#include "core/hf_checkpoint.h"
#include "core/model.h"
#include "core/tokenizer.h"

namespace stave::cli {
namespace {
namespace fs = std::filesystem;

struct ConvertOptions {
  std::string model, tokenizer, random_shape, out, quantize;
  uint64_t seed = 0;
};

absl::StatusOr<quant::WeightType> ParseWeightType(const std::string& name) {
  quant::WeightType type;
  if (quant::WeightTypeFromName(name, &type)) return type;
  return absl::InvalidArgumentError(
      absl::StrCat("--quantize ", name, ": unknown type (one of f32, f16, bf16, q8_0, q4_0)"));
}

// The tokenizer goes into the file: --tokenizer, else the one next to the model, if any.
absl::Status WriteGguf(const ConvertOptions& o, const Checkpoint& ckpt) {
  auto type = ParseWeightType(o.quantize);
  if (!type.ok()) return type.status();
  std::string tok_path = o.tokenizer;
  if (tok_path.empty() && !o.model.empty()) tok_path = FindTokenizerNextTo(o.model);
  std::unique_ptr<Tokenizer> tokenizer;
  if (!tok_path.empty()) {
    auto tok = LoadTokenizer(tok_path, ckpt.config.vocab_size);
    if (!tok.ok()) return tok.status();
    tokenizer = *std::move(tok);
    if (tokenizer->SentencePieceVocabulary().empty())
      std::fprintf(stderr, "note: %s is not SentencePiece-style; the GGUF file gets no vocabulary\n",
                   tok_path.c_str());
  } else {
    std::fprintf(stderr, "note: no tokenizer given or found; the GGUF file gets no vocabulary\n");
  }
  // \r updates only on a terminal; a log gets the final line.
  const bool tty = isatty(fileno(stderr));
  auto status = SaveGgufCheckpoint(ckpt, *type, tokenizer.get(), o.out, [tty](int done, int total) {
    if (tty || done == total) std::fprintf(stderr, "%sconverting: tensor %d/%d%s", tty ? "\r" : "", done, total,
                                           done == total ? "\n" : "");
  });
  if (!status.ok()) return status;
  std::error_code ec;
  std::fprintf(stderr, "wrote %s (%s, %.1f MB): %s\n", o.out.c_str(), quant::WeightTypeName(*type),
               fs::file_size(o.out, ec) / 1e6, ckpt.config.ToString().c_str());
  return absl::OkStatus();
}

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
  if (!o.quantize.empty()) return WriteGguf(o, ckpt);
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
  auto* cmd = app.add_subcommand("convert", "write a Hugging Face model directory, or a GGUF file (--quantize)");
  cmd->add_option("--model", o->model, "model to convert (llama2.c .bin or HF directory)");
  cmd->add_option("--random-shape", o->random_shape,
                  "random weights of this shape, e.g. dim=768,layers=12,heads=12,kv_heads=12,"
                  "hidden=2048,vocab=32000,ctx=1024");
  cmd->add_option("--tokenizer", o->tokenizer, "tokenizer to copy into the output directory");
  cmd->add_option("--seed", o->seed, "seed for --random-shape")->capture_default_str();
  cmd->add_option("--quantize", o->quantize,
                  "write a GGUF file with matrices in this type: f32, f16, bf16, q8_0, q4_0 "
                  "(norms stay f32; q8_0/q4_0 need rows that are multiples of 32)");
  cmd->add_option("--out", o->out, "output directory (a .gguf file with --quantize)")->required();
  cmd->callback([o] { CommandStatus() = RunConvert(*o); });
}

}  // namespace stave::cli
