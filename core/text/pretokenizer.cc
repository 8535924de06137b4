#include "core/text/pretokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "absl/strings/str_cat.h"
#include "core/text/sv.h"

namespace stave::text {

const char kGpt2Regex[] =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

namespace {

// llama-vocab.cpp's lists (llm_tokenizer_bpe), verbatim apart from C++ escaping. llama.cpp runs
// the GPT-2 and Llama-3 ones through hand-written matchers and the others through std::regex on
// "collapsed" text; PCRE2 with Unicode properties matches what those emulate.
const char kLlama3Regex[] =
    R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const char kQwen2Regex[] =
    R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const char kGpt2RegexLlamaCpp[] =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))";
const char kDeepseekLlmLetters[] =
    "\\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-ώᾀ-ᾴᾶ-ᾼιῂ-ῄῆ-ῌῐ-ΐῖ-Ίῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤΩℨK-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+";

struct PreEntry {
  std::vector<std::string_view> names;
  std::vector<std::string> regexes;
  bool ignore_merges;
};

const std::vector<PreEntry>& PreTable() {
  static const std::vector<PreEntry> table = {
      // llama.cpp's LLAMA_VOCAB_PRE_TYPE_DEFAULT (also what it falls back to without a `pre`).
      {{"default"},
       {R"([\p{P}\$\+<=>\^~\|]+)", kGpt2RegexLlamaCpp, R"(\p{N}+)", "[0-9][0-9][0-9]"},
       false},
      {{"gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v1-en", "jina-v2-es",
        "jina-v2-de", "jina-v2-code", "roberta-bpe", "mpt", "olmo", "jais"},
       {kGpt2RegexLlamaCpp},
       false},
      {{"llama3", "llama-v3", "llama-bpe", "falcon3"}, {kLlama3Regex}, true},
      {{"dbrx", "smaug-bpe"}, {kLlama3Regex}, false},
      {{"qwen2", "stablelm2", "megrez"}, {kQwen2Regex}, false},
      {{"deepseek-llm"},
       {"[\r\n]", kDeepseekLlmLetters, "\\s?[!-/:-~！-／：-～‘-‟　-。]+", "\\s+$",
        "[一-龥ࠀ-一가-퟿]+", R"(\p{N}+)"},
       false},
      {{"deepseek-coder"},
       {"[\r\n]", R"(\s?\p{L}+)", R"(\s?\p{P}+)", "[一-龥ࠀ-一가-퟿]+", R"(\p{N})"},
       false},
      {{"falcon"},
       {R"([\p{P}\$\+<=>\^~\|`]+)", kGpt2RegexLlamaCpp, "[0-9][0-9][0-9]"},
       false},
      {{"starcoder", "refact", "command-r", "smollm", "codeshell", "exaone", "minerva-7b"},
       {R"(\p{N})", kGpt2RegexLlamaCpp},
       false},
      {{"poro-chat", "bloom", "gpt3-finnish"}, {" ?[^(\\s|.,!?…。，、।۔،)]+"}, false},
      {{"viking"}, {" ?[^(\\s|.,!?…。，、।۔،)]+", R"(\p{N})"}, false},
  };
  return table;
}

// `\s`/`\S` as Unicode White_Space (see the header). Other escapes are copied as they are.
std::string WithWhiteSpaceClass(std::string_view pattern) {
  std::string out;
  out.reserve(pattern.size() + 16);
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] == '\\' && i + 1 < pattern.size()) {
      const char next = pattern[++i];
      if (next == 's') {
        out += "\\p{White_Space}";
      } else if (next == 'S') {
        out += "\\P{White_Space}";
      } else {
        out += '\\';
        out += next;
      }
    } else {
      out += pattern[i];
    }
  }
  return out;
}

// Bytes of the code point starting at `text[i]` (1 for a stray or truncated byte).
size_t CharBytes(std::string_view text, size_t i) {
  const unsigned char c = static_cast<unsigned char>(text[i]);
  const size_t len = c < 0xC0 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
  size_t k = 1;
  while (k < len && i + k < text.size() && (static_cast<unsigned char>(text[i + k]) & 0xC0) == 0x80)
    ++k;
  return k;
}

}  // namespace

struct PreTokenizer::Compiled {
  pcre2_code* code = nullptr;
  bool drop_matches = false;
  ~Compiled() { pcre2_code_free(code); }
};

PreTokenizer::PreTokenizer() = default;
PreTokenizer::PreTokenizer(PreTokenizer&&) noexcept = default;
PreTokenizer& PreTokenizer::operator=(PreTokenizer&&) noexcept = default;
PreTokenizer::~PreTokenizer() = default;

absl::StatusOr<PreTokenizer> PreTokenizer::Create(std::vector<Step> steps, std::string_view source) {
  PreTokenizer pre;
  for (const Step& step : steps) {
    const std::string pattern = WithWhiteSpaceClass(step.pattern);
    int error = 0;
    PCRE2_SIZE error_offset = 0;
    // MATCH_INVALID_UTF: text is not validated up front (prompts may hold any bytes); ill-formed
    // sequences simply never match. DOLLAR_ENDONLY: `$` is the end of the piece, as in Rust and
    // std::regex, not also before a final newline.
    auto compiled = std::make_unique<Compiled>();
    compiled->drop_matches = step.drop_matches;
    compiled->code = pcre2_compile(
        reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
        PCRE2_UTF | PCRE2_UCP | PCRE2_DOLLAR_ENDONLY | PCRE2_MATCH_INVALID_UTF, &error,
        &error_offset, nullptr);
    if (compiled->code == nullptr) {
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(error, message, sizeof message);
      return absl::InvalidArgumentError(
          absl::StrCat(Sv(source), ": pre-tokenizer regex ", step.pattern, " does not compile: ",
                       reinterpret_cast<const char*>(message), " at offset ", error_offset));
    }
    // JIT is an optimization; the interpreter is used where it is unavailable.
    pcre2_jit_compile(compiled->code, PCRE2_JIT_COMPLETE);
    pre.steps_.push_back(std::move(compiled));
  }
  return pre;
}

std::vector<std::string_view> PreTokenizer::Split(std::string_view text) const {
  std::vector<std::string_view> pieces;
  if (!text.empty()) pieces.push_back(text);
  std::vector<std::string_view> next;
  for (const auto& step : steps_) {
    next.clear();
    pcre2_match_data* md = pcre2_match_data_create_from_pattern(step->code, nullptr);
    for (std::string_view piece : pieces) {
      size_t pos = 0, gap = 0;
      while (pos < piece.size()) {
        const auto* subject = reinterpret_cast<PCRE2_SPTR>(piece.data());
        int rc = pcre2_match(step->code, subject, piece.size(), pos, 0, md, nullptr);
        if (rc == PCRE2_ERROR_JIT_STACKLIMIT)
          rc = pcre2_match(step->code, subject, piece.size(), pos, PCRE2_NO_JIT, md, nullptr);
        // No further match, or a resource limit hit: the rest stays one piece, so every byte
        // is still tokenized.
        if (rc < 0) break;
        const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
        const size_t start = ov[0], end = ov[1];
        if (end <= start) {  // an empty match makes no piece
          if (start >= piece.size()) break;
          pos = start + CharBytes(piece, start);
          continue;
        }
        if (start > gap) next.push_back(piece.substr(gap, start - gap));
        if (!step->drop_matches) next.push_back(piece.substr(start, end - start));
        pos = gap = end;
      }
      if (gap < piece.size()) next.push_back(piece.substr(gap));
    }
    pcre2_match_data_free(md);
    pieces.swap(next);
  }
  return pieces;
}

absl::StatusOr<GgufPreTokenizerSpec> GgufPreTokenizer(std::string_view pre) {
  for (const PreEntry& entry : PreTable())
    for (std::string_view name : entry.names)
      if (name == pre) return GgufPreTokenizerSpec{entry.regexes, entry.ignore_merges};
  return absl::NotFoundError(absl::StrCat("unknown pre-tokenizer \"", Sv(pre), "\""));
}

}  // namespace stave::text
