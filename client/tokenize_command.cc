// stave tokenize: the token ids of a text for any tokenizer stave reads (tokenizer.model,
// tokenizer.bin, tokenizer.json, or a GGUF file, vocabulary-only ones included), without a model.
#include <cstdio>
#include <iostream>
#include <iterator>

#include "absl/strings/str_join.h"
#include "client/commands.h"
#include "core/tokenizer.h"
#include "nlohmann/json.hpp"

namespace stave::cli {
namespace {

// Texts beyond this are refused rather than tokenized for minutes (the server caps requests at
// 1 MiB; a command-line tool may take more, but not unbounded stdin).
constexpr size_t kMaxTextBytes = size_t{64} << 20;

struct TokenizeOptions {
  std::string tokenizer;
  std::optional<std::string> text;
  bool bos = false, json = false;
};

absl::Status RunTokenize(const TokenizeOptions& o) {
  auto tok = LoadTokenizer(o.tokenizer);
  if (!tok.ok()) return tok.status();
  std::string text;
  if (o.text.has_value()) {
    text = *o.text;
  } else {
    std::string chunk(1 << 16, '\0');
    while (std::cin.read(chunk.data(), chunk.size()) || std::cin.gcount() > 0) {
      text.append(chunk.data(), std::cin.gcount());
      if (text.size() > kMaxTextBytes)
        return absl::InvalidArgumentError("stdin holds more than 64 MiB of text; split it");
    }
  }
  const std::vector<int> ids = (*tok)->Encode(text, o.bos);
  if (o.json) {
    std::vector<std::string> pieces;
    int prev = o.bos ? -1 : (*tok)->bos_id();
    for (int id : ids) {
      pieces.push_back((*tok)->DecodeToken(prev, id));
      prev = id;
    }
    // Pieces are the bytes each token stands for; byte tokens may be partial UTF-8, which JSON
    // cannot carry, so those bytes are replaced by U+FFFD (the ids are exact).
    nlohmann::json j = {{"ids", ids}, {"count", ids.size()}, {"pieces", pieces}};
    std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  } else {
    std::printf("%s\n", absl::StrJoin(ids, " ").c_str());
  }
  return absl::OkStatus();
}

}  // namespace

void AddTokenizeCommand(CLI::App& app) {
  auto o = std::make_shared<TokenizeOptions>();
  auto* cmd = app.add_subcommand("tokenize", "print the token ids of a text (no model needed)");
  cmd->add_option("--tokenizer", o->tokenizer,
                  "tokenizer.model, tokenizer.bin, tokenizer.json or a .gguf file")
      ->required();
  cmd->add_option("--text", o->text, "the text (default: read stdin)");
  cmd->add_flag("--bos", o->bos, "prepend the BOS token");
  cmd->add_flag("--json", o->json, "print {\"ids\": [...], \"count\": N, \"pieces\": [...]}");
  cmd->callback([o] { CommandStatus() = RunTokenize(*o); });
}

}  // namespace stave::cli
