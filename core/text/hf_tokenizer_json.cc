// LoadHfTokenizerJson: a Hugging Face tokenizer.json with a byte-level BPE model (GPT-2, Llama 3,
// Qwen2, ...) as a BpeTokenizer. Only what those tokenizers use is accepted; anything else is an
// error naming the file and the field, never a silently different tokenization.
#include <cctype>
#include <filesystem>
#include <functional>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/text/bpe_tokenizer.h"
#include "core/text/gguf_tokenizer.h"
#include "core/text_file.h"

namespace stave {
namespace {

using json = nlohmann::json;
using text::TokenType;

// Llama 3's tokenizer.json is 9 MB and Gemma's 17 MB; anything near this bound is not a tokenizer.
constexpr int64_t kMaxTokenizerJsonBytes = int64_t{64} << 20;

class Loader {
 public:
  explicit Loader(std::string path) : path_(std::move(path)) {}

  absl::StatusOr<std::unique_ptr<Tokenizer>> Load();

 private:
  absl::Status Error(absl::string_view field, absl::string_view what) const {
    return absl::InvalidArgumentError(absl::StrCat(path_, ": ", field, ": ", what));
  }
  absl::Status LoadVocab(const json& model, const json& added);
  absl::Status LoadMerges(const json& model);
  absl::Status LoadNormalizer(const json& root);
  absl::Status LoadPreTokenizer(const json& pre, absl::string_view field);
  absl::Status FindBosEos(const json& root);
  absl::StatusOr<int> ConfigToken(const json& config, absl::string_view key, absl::string_view file);

  std::string path_;
  std::vector<std::string> texts_;
  std::vector<TokenType> types_;
  std::vector<text::VerbatimToken> verbatim_;
  std::vector<std::pair<std::string, std::string>> merges_;
  std::vector<text::PreTokenizer::Step> steps_;
  bool byte_level_ = false;
  text::BpeOptions options_;
};

// Boolean field or `fallback` when absent or null.
absl::StatusOr<bool> Bool(const json& obj, const char* key, bool fallback) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) return absl::InvalidArgumentError("not a boolean");
  return it->get<bool>();
}

absl::Status Loader::LoadVocab(const json& model, const json& added) {
  auto vocab = model.find("vocab");
  if (vocab == model.end() || !vocab->is_object())
    return Error("model.vocab", "missing or not an object of token: id");
  std::vector<std::pair<std::string, int64_t>> entries;
  int64_t max_id = -1;
  for (auto it = vocab->begin(); it != vocab->end(); ++it) {
    if (!it.value().is_number_integer())
      return Error("model.vocab", absl::StrCat("the id of \"", it.key(), "\" is not an integer"));
    const int64_t id = it.value().get<int64_t>();
    if (id < 0 || id >= (int64_t{1} << 24))
      return Error("model.vocab", absl::StrCat("\"", it.key(), "\" has id ", id, " (out of range)"));
    entries.emplace_back(it.key(), id);
    max_id = std::max(max_id, id);
  }
  if (!added.is_null() && !added.is_array()) return Error("added_tokens", "not an array");
  struct Added {
    std::string content;
    int64_t id;
    bool special, lstrip, rstrip;
  };
  std::vector<Added> added_tokens;
  if (added.is_array()) {
    for (size_t i = 0; i < added.size(); ++i) {
      const json& a = added[i];
      const std::string field = absl::StrCat("added_tokens[", i, "]");
      if (!a.is_object() || !a.contains("id") || !a["id"].is_number_integer() ||
          !a.contains("content") || !a["content"].is_string())
        return Error(field, "needs an integer \"id\" and a string \"content\"");
      Added t{a["content"].get<std::string>(), a["id"].get<int64_t>(), false, false, false};
      if (t.id < 0 || t.id >= (int64_t{1} << 24))
        return Error(field, absl::StrCat("id ", t.id, " is out of range"));
      if (t.content.empty()) return Error(field, "content is empty");
      for (auto [key, out] : {std::pair<const char*, bool*>{"special", &t.special},
                              {"lstrip", &t.lstrip}, {"rstrip", &t.rstrip}}) {
        auto b = Bool(a, key, false);
        if (!b.ok()) return Error(absl::StrCat(field, ".", key), b.status().message());
        *out = *b;
      }
      auto single_word = Bool(a, "single_word", false);
      if (!single_word.ok()) return Error(field + ".single_word", single_word.status().message());
      if (*single_word)
        return Error(field + ".single_word", "single_word added tokens are not supported");
      max_id = std::max(max_id, t.id);
      added_tokens.push_back(std::move(t));
    }
  }
  if (max_id < 0) return Error("model.vocab", "empty");
  texts_.assign(max_id + 1, std::string());
  // Ids no token claims stay holes: unused tokens that decode to nothing.
  types_.assign(max_id + 1, TokenType::kUnused);
  for (auto& [token, id] : entries) {
    if (types_[id] != TokenType::kUnused)
      return Error("model.vocab", absl::StrCat("\"", texts_[id], "\" and \"", token,
                                               "\" have the same id ", id));
    texts_[id] = std::move(token);
    types_[id] = TokenType::kNormal;
  }
  // Added tokens are text as written, not byte-level: special ones are control tokens (decoded
  // to nothing), the others user-defined. HF matches both kinds verbatim before pre-tokenizing.
  for (Added& t : added_tokens) {
    texts_[t.id] = t.content;
    types_[t.id] = t.special ? TokenType::kControl : TokenType::kUserDefined;
    verbatim_.push_back({t.content, static_cast<int>(t.id), t.lstrip, t.rstrip});
  }
  return absl::OkStatus();
}

absl::Status Loader::LoadMerges(const json& model) {
  auto merges = model.find("merges");
  if (merges == model.end() || !merges->is_array())
    return Error("model.merges", "missing or not an array");
  merges_.resize(merges->size());
  for (size_t i = 0; i < merges->size(); ++i) {
    const json& m = (*merges)[i];
    if (m.is_string()) {  // "a b" (tokenizers before 0.20)
      if (!text::SplitMergeString(m.get_ref<const std::string&>(), &merges_[i]))
        return Error(absl::StrCat("model.merges[", i, "]"),
                     "not two tokens separated by a space");
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      merges_[i] = {m[0].get<std::string>(), m[1].get<std::string>()};  // ["a", "b"]
    } else {
      return Error(absl::StrCat("model.merges[", i, "]"),
                   "neither \"a b\" nor a pair of strings");
    }
  }
  return absl::OkStatus();
}

absl::Status Loader::LoadNormalizer(const json& root) {
  auto n = root.find("normalizer");
  if (n == root.end() || n->is_null()) return absl::OkStatus();
  const std::string type = n->is_object() && n->contains("type") && (*n)["type"].is_string()
                               ? (*n)["type"].get<std::string>()
                               : "";
  // Qwen2 declares NFC. Text that is not NFC already would need ICU; llama.cpp skips it for
  // these models too, so stave tokenizes such text as llama.cpp does.
  if (type == "NFC") return absl::OkStatus();
  return Error("normalizer", absl::StrCat("type \"", type,
                                          "\" is not supported (byte-level BPE takes none or NFC)"));
}

absl::Status Loader::LoadPreTokenizer(const json& pre, absl::string_view field) {
  if (!pre.is_object() || !pre.contains("type") || !pre["type"].is_string())
    return Error(field, "not an object with a \"type\"");
  const std::string type = pre["type"].get<std::string>();
  if (byte_level_)
    return Error(field, "comes after ByteLevel; stave needs ByteLevel last");
  if (type == "Sequence") {
    if (!pre.contains("pretokenizers") || !pre["pretokenizers"].is_array())
      return Error(absl::StrCat(field, ".pretokenizers"), "missing or not an array");
    const json& list = pre["pretokenizers"];
    for (size_t i = 0; i < list.size(); ++i) {
      absl::Status s = LoadPreTokenizer(list[i], absl::StrCat(field, ".pretokenizers[", i, "]"));
      if (!s.ok()) return s;
    }
    return absl::OkStatus();
  }
  if (type == "ByteLevel") {
    auto add_prefix_space = Bool(pre, "add_prefix_space", true);
    if (!add_prefix_space.ok()) return Error(absl::StrCat(field, ".add_prefix_space"), "not a boolean");
    auto use_regex = Bool(pre, "use_regex", true);
    if (!use_regex.ok()) return Error(absl::StrCat(field, ".use_regex"), "not a boolean");
    // HF prepends the space to every piece earlier steps made; stave does it once per text run,
    // which is the same only when ByteLevel comes first (GPT-2 style). Llama 3 and Qwen2 set false.
    if (*add_prefix_space && !steps_.empty())
      return Error(absl::StrCat(field, ".add_prefix_space"),
                   "true after a Split/Digits step is not supported");
    options_.add_prefix_space = *add_prefix_space;
    if (*use_regex) steps_.push_back({text::kGpt2Regex, false});
    byte_level_ = true;
    return absl::OkStatus();
  }
  if (type == "Split") {
    auto invert = Bool(pre, "invert", false);
    if (!invert.ok() || *invert) return Error(absl::StrCat(field, ".invert"), "must be false");
    const std::string behavior = pre.contains("behavior") && pre["behavior"].is_string()
                                     ? pre["behavior"].get<std::string>()
                                     : "";
    if (behavior != "Isolated" && behavior != "Removed")
      return Error(absl::StrCat(field, ".behavior"),
                   absl::StrCat("\"", behavior, "\" is not supported (Isolated or Removed)"));
    const json* pattern = pre.contains("pattern") ? &pre["pattern"] : nullptr;
    std::string regex;
    if (pattern != nullptr && pattern->is_object() && pattern->contains("Regex") &&
        (*pattern)["Regex"].is_string()) {
      regex = (*pattern)["Regex"].get<std::string>();
    } else if (pattern != nullptr && pattern->is_object() && pattern->contains("String") &&
               (*pattern)["String"].is_string()) {
      for (char c : (*pattern)["String"].get<std::string>()) {  // a literal
        if (static_cast<unsigned char>(c) < 0x80 && !std::isalnum(static_cast<unsigned char>(c)))
          regex += '\\';
        regex += c;
      }
    } else {
      return Error(absl::StrCat(field, ".pattern"), "needs {\"Regex\": ...} or {\"String\": ...}");
    }
    steps_.push_back({regex, behavior == "Removed"});
    return absl::OkStatus();
  }
  if (type == "Digits") {
    auto individual = Bool(pre, "individual_digits", false);
    if (!individual.ok()) return Error(absl::StrCat(field, ".individual_digits"), "not a boolean");
    steps_.push_back({*individual ? R"(\p{N})" : R"(\p{N}+)", false});
    return absl::OkStatus();
  }
  return Error(field, absl::StrCat("type \"", type,
                                   "\" is not supported (ByteLevel, Split, Digits, Sequence)"));
}

absl::StatusOr<int> Loader::ConfigToken(const json& config, absl::string_view key,
                                        absl::string_view file) {
  auto it = config.find(std::string(key));
  if (it == config.end() || it->is_null()) return -1;
  std::string content;
  if (it->is_string()) {
    content = it->get<std::string>();
  } else if (it->is_object() && it->contains("content") && (*it)["content"].is_string()) {
    content = (*it)["content"].get<std::string>();
  } else {
    return absl::InvalidArgumentError(absl::StrCat(file, ": ", key, ": neither a string nor {\"content\": ...}"));
  }
  for (size_t id = 0; id < texts_.size(); ++id)
    if (texts_[id] == content && types_[id] != TokenType::kUnused) return static_cast<int>(id);
  return absl::InvalidArgumentError(
      absl::StrCat(file, ": ", key, ": \"", content, "\" is not a token of ", path_));
}

absl::Status Loader::FindBosEos(const json& root) {
  // 1. The post-processor's template: the special token before $A in "single" is BOS.
  std::function<absl::Status(const json&, std::string)> visit = [&](const json& p,
                                                                    std::string field) {
    if (!p.is_object()) return absl::OkStatus();
    const std::string type = p.contains("type") && p["type"].is_string() ? p["type"].get<std::string>() : "";
    if (type == "Sequence" && p.contains("processors") && p["processors"].is_array()) {
      for (size_t i = 0; i < p["processors"].size(); ++i) {
        absl::Status s = visit(p["processors"][i], absl::StrCat(field, ".processors[", i, "]"));
        if (!s.ok()) return s;
      }
    } else if (type == "TemplateProcessing" && p.contains("single") && p["single"].is_array() &&
               !p["single"].empty() && p["single"][0].is_object() &&
               p["single"][0].contains("SpecialToken")) {
      const json& st = p["single"][0]["SpecialToken"];
      const std::string name = st.is_object() && st.contains("id") && st["id"].is_string()
                                   ? st["id"].get<std::string>() : "";
      const json* ids = nullptr;
      if (p.contains("special_tokens") && p["special_tokens"].is_object() &&
          p["special_tokens"].contains(name) && p["special_tokens"][name].is_object() &&
          p["special_tokens"][name].contains("ids"))
        ids = &p["special_tokens"][name]["ids"];
      if (ids == nullptr || !ids->is_array() || ids->size() != 1 || !(*ids)[0].is_number_integer())
        return Error(absl::StrCat(field, ".special_tokens"),
                     absl::StrCat("no single id for \"", name, "\""));
      options_.bos_id = (*ids)[0].get<int>();
    } else if ((type == "RobertaProcessing" || type == "BertProcessing") && p.contains("cls") &&
               p["cls"].is_array() && p["cls"].size() == 2 && p["cls"][1].is_number_integer()) {
      options_.bos_id = p["cls"][1].get<int>();
    }
    return absl::OkStatus();
  };
  if (root.contains("post_processor")) {
    absl::Status s = visit(root["post_processor"], "post_processor");
    if (!s.ok()) return s;
  }
  // 2. tokenizer_config.json next to the file, where transformers keeps bos_token/eos_token.
  const std::string config_path =
      (std::filesystem::path(path_).parent_path() / "tokenizer_config.json").string();
  if (std::filesystem::exists(config_path)) {
    auto text = ReadTextFile(config_path);
    if (!text.ok()) return text.status();
    json config = json::parse(*text, nullptr, /*allow_exceptions=*/false);
    if (config.is_discarded() || !config.is_object())
      return absl::InvalidArgumentError(absl::StrCat(config_path, ": not a JSON object"));
    auto bos = ConfigToken(config, "bos_token", config_path);
    if (!bos.ok()) return bos.status();
    auto eos = ConfigToken(config, "eos_token", config_path);
    if (!eos.ok()) return eos.status();
    if (options_.bos_id < 0) options_.bos_id = *bos;
    options_.eos_id = *eos;
  }
  // 3. Failing both, the usual names among the special added tokens.
  auto special = [&](std::initializer_list<absl::string_view> names) {
    for (absl::string_view name : names)
      for (size_t id = 0; id < texts_.size(); ++id)
        if (types_[id] == TokenType::kControl && texts_[id] == name) return static_cast<int>(id);
    return -1;
  };
  if (options_.bos_id < 0)
    options_.bos_id = special({"<|begin_of_text|>", "<s>", "<bos>", "<|startoftext|>", "<|endoftext|>"});
  if (options_.eos_id < 0)
    options_.eos_id = special({"<|end_of_text|>", "</s>", "<eos>", "<|endoftext|>", "<|im_end|>"});
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Loader::Load() {
  auto text = ReadTextFile(path_, kMaxTokenizerJsonBytes);
  if (!text.ok()) return text.status();
  json root;
  try {
    root = json::parse(*text);
  } catch (const json::exception& e) {
    // Not only parse_error: a number beyond double's range ("1e400") is out_of_range (406), which
    // escaped as an exception (found by fuzz/tokenizer_json_fuzz.cc: regress-number-overflow.json).
    return absl::InvalidArgumentError(absl::StrCat(path_, ": not valid JSON: ", e.what()));
  }
  if (!root.is_object()) return Error("(top level)", "not a JSON object");
  if (!root.contains("model") || !root["model"].is_object()) return Error("model", "missing or not an object");
  const json& model = root["model"];
  const std::string type = model.contains("type") && model["type"].is_string() ? model["type"].get<std::string>() : "";
  if (type != "BPE")
    return Error("model.type", absl::StrCat("\"", type, "\" is not supported (only BPE)"));
  auto byte_fallback = Bool(model, "byte_fallback", false);
  if (!byte_fallback.ok() || *byte_fallback)
    return Error("model.byte_fallback", "byte fallback (SentencePiece-style BPE) is not supported");
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"})
    if (model.contains(key) && !model[key].is_null() &&
        !(model[key].is_string() && model[key].get<std::string>().empty()))
      return Error(absl::StrCat("model.", key), "is not supported");
  auto ignore_merges = Bool(model, "ignore_merges", false);
  if (!ignore_merges.ok()) return Error("model.ignore_merges", "not a boolean");
  options_.ignore_merges = *ignore_merges;

  absl::Status s = LoadVocab(model, root.contains("added_tokens") ? root["added_tokens"] : json());
  if (!s.ok()) return s;
  s = LoadMerges(model);
  if (!s.ok()) return s;
  s = LoadNormalizer(root);
  if (!s.ok()) return s;
  if (!root.contains("pre_tokenizer") || root["pre_tokenizer"].is_null())
    return Error("pre_tokenizer", "missing; stave needs ByteLevel");
  s = LoadPreTokenizer(root["pre_tokenizer"], "pre_tokenizer");
  if (!s.ok()) return s;
  if (!byte_level_) return Error("pre_tokenizer", "has no ByteLevel step");
  s = FindBosEos(root);
  if (!s.ok()) return s;

  auto vocab = text::Vocab::Create(std::move(texts_), {}, std::move(types_), path_);
  if (!vocab.ok()) return vocab.status();
  auto merges = text::BpeMerges::Create(*vocab, merges_, absl::StrCat(path_, ": model.merges"));
  if (!merges.ok()) return merges.status();
  auto pre = text::PreTokenizer::Create(std::move(steps_), absl::StrCat(path_, ": pre_tokenizer"));
  if (!pre.ok()) return pre.status();
  auto tok = text::BpeTokenizer::Create(std::move(*vocab), std::move(*merges), std::move(*pre),
                                        std::move(verbatim_), options_, path_);
  if (!tok.ok()) return tok.status();
  return std::unique_ptr<Tokenizer>(std::move(*tok));
}

}  // namespace

absl::StatusOr<std::unique_ptr<Tokenizer>> LoadHfTokenizerJson(const std::string& path) {
  return Loader(path).Load();
}

}  // namespace stave
