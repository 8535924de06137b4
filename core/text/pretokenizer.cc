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
// Code points as escapes: the class lists canonical singletons (U+1F7D, U+1FBE, U+2126, U+212A,
// ...) that a Unicode-normalizing editor or copy would silently turn into other code points.
const char kDeepseekLlmLetters[] =
    "\\s?[A-Za-z\\x{B5}\\x{C0}-\\x{D6}\\x{D8}-\\x{F6}\\x{F8}-\\x{1BA}\\x{1BC}-\\x{1BF}"
    "\\x{1C4}-\\x{293}\\x{295}-\\x{2AF}\\x{370}-\\x{373}\\x{376}\\x{377}\\x{37B}-\\x{37D}"
    "\\x{37F}\\x{386}\\x{388}-\\x{38A}\\x{38C}\\x{38E}-\\x{3A1}\\x{3A3}-\\x{3F5}\\x{3F7}-"
    "\\x{481}\\x{48A}-\\x{52F}\\x{531}-\\x{556}\\x{10A0}-\\x{10C5}\\x{13A0}-\\x{13F5}"
    "\\x{13F8}-\\x{13FD}\\x{1C90}-\\x{1CBA}\\x{1CBD}-\\x{1CBF}\\x{1D00}-\\x{1D2B}\\x{1D6B}-"
    "\\x{1D77}\\x{1D79}-\\x{1D9A}\\x{1E00}-\\x{1F15}\\x{1F18}-\\x{1F1D}\\x{1F20}-\\x{1F45}"
    "\\x{1F48}-\\x{1F4D}\\x{1F50}-\\x{1F57}\\x{1F59}\\x{1F5B}\\x{1F5D}\\x{1F5F}-\\x{1F7D}"
    "\\x{1F80}-\\x{1FB4}\\x{1FB6}-\\x{1FBC}\\x{1FBE}\\x{1FC2}-\\x{1FC4}\\x{1FC6}-\\x{1FCC}"
    "\\x{1FD0}-\\x{1FD3}\\x{1FD6}-\\x{1FDB}\\x{1FE0}-\\x{1FEC}\\x{1FF2}-\\x{1FF4}\\x{1FF6}-"
    "\\x{1FFC}\\x{2102}\\x{2107}\\x{210A}-\\x{2113}\\x{2115}\\x{2119}-\\x{211D}\\x{2124}"
    "\\x{2126}\\x{2128}\\x{212A}-\\x{212D}\\x{212F}-\\x{2134}\\x{2139}\\x{213C}-\\x{213F}"
    "\\x{2145}-\\x{2149}\\x{214E}\\x{2183}\\x{2184}\\x{2C00}-\\x{2C7B}\\x{2C7E}-\\x{2CE4}"
    "\\x{2CEB}-\\x{2CEE}\\x{2CF2}\\x{2CF3}\\x{A640}-\\x{A66D}\\x{A680}-\\x{A69B}\\x{A722}-"
    "\\x{A76F}\\x{A771}-\\x{A787}\\x{A78B}-\\x{A78E}\\x{AB70}-\\x{ABBF}\\x{FB00}-\\x{FB06}"
    "\\x{FB13}-\\x{FB17}\\x{FF21}-\\x{FF3A}\\x{FF41}-\\x{FF5A}\\x{10400}-\\x{1044F}\\x{104B0}"
    "-\\x{104D3}\\x{104D8}-\\x{104FB}\\x{10C80}-\\x{10CB2}\\x{10CC0}-\\x{10CF2}\\x{118A0}-"
    "\\x{118DF}\\x{1E900}-\\x{1E943}]+";

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
       {"[\r\n]", kDeepseekLlmLetters, "\\s?[!-/:-~\\x{FF01}-\\x{FF0F}\\x{FF1A}-\\x{FF5E}\\x{2018}-\\x{201F}\\x{3000}-\\x{3002}]+", "\\s+$",
        "[\\x{4E00}-\\x{9FA5}\\x{800}-\\x{4E00}\\x{AC00}-\\x{D7FF}]+", R"(\p{N}+)"},
       false},
      {{"deepseek-coder"},
       {"[\r\n]", R"(\s?\p{L}+)", R"(\s?\p{P}+)", "[\\x{4E00}-\\x{9FA5}\\x{800}-\\x{4E00}\\x{AC00}-\\x{D7FF}]+", R"(\p{N})"},
       false},
      {{"falcon"},
       {R"([\p{P}\$\+<=>\^~\|`]+)", kGpt2RegexLlamaCpp, "[0-9][0-9][0-9]"},
       false},
      {{"starcoder", "refact", "command-r", "smollm", "codeshell", "exaone", "minerva-7b"},
       {R"(\p{N})", kGpt2RegexLlamaCpp},
       false},
      {{"poro-chat", "bloom", "gpt3-finnish"}, {" ?[^(\\s|.,!?\\x{2026}\\x{3002}\\x{FF0C}\\x{3001}\\x{964}\\x{6D4}\\x{60C})]+"}, false},
      {{"viking"}, {" ?[^(\\s|.,!?\\x{2026}\\x{3002}\\x{FF0C}\\x{3001}\\x{964}\\x{6D4}\\x{60C})]+", R"(\p{N})"}, false},
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
    // JIT matters beyond speed: PCRE2's interpreter retries a failing `\s+$` or `\s*[\r\n]+`
    // at every position of a long whitespace run (quadratic: 16K spaces take seconds), where the
    // JIT code does not. Where JIT is unavailable the interpreter still gives the same pieces.
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
