// Tokenizers from GGUF metadata and tokenizer.json: llama.cpp's tokenizer test vectors for three
// vocabularies encode to exactly the listed ids and decode back; a tokenizer.json made from the
// GPT-2 vocabulary encodes the same; stories260K's GGUF vocabulary encodes prompts as llama2.c's
// runner did; the engine pieces on small hand-made vocabularies; malformed GGUF metadata and
// tokenizer.json files are errors naming the file and key/field, never crashes.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "core/formats/gguf.h"
#include "core/formats/gguf_writer.h"
#include "core/text/bpe.h"
#include "core/text/byte_level.h"
#include "core/text/gguf_tokenizer.h"
#include "core/text/pretokenizer.h"
#include "core/text/token_partition.h"
#include "tests/shared_data.h"

#include <gtest/gtest.h>

namespace stave {
namespace {

using json = nlohmann::json;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteAll(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
}

// A directory of this process's own (test binaries of several worktrees may run at once).
std::string UniqueTempDir(const std::string& name) {
  return ::testing::TempDir() + "stave_text_" + std::to_string(::getpid()) + "_" + name;
}

// Status message contains `part`.
::testing::AssertionResult ErrorSays(const absl::Status& status, const std::string& part) {
  if (status.ok()) return ::testing::AssertionFailure() << "expected an error saying " << part;
  const std::string message(status.message());
  if (message.find(part) == std::string::npos)
    return ::testing::AssertionFailure() << "error \"" << message << "\" does not say " << part;
  return ::testing::AssertionSuccess();
}

// llama.cpp's tests/test-tokenizer-0.cpp format: texts separated by "\n__ggml_vocab_test__\n",
// one line of space-separated ids per text.
struct Vector {
  std::string text;
  std::vector<int> ids;
};

std::vector<Vector> ReadVectors(const std::string& base) {
  const std::string raw = ReadAll(base + ".inp");
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> texts;
  for (size_t pos = 0; pos < raw.size();) {
    const size_t next = raw.find(sep, pos);
    if (next == std::string::npos) {
      texts.push_back(raw.substr(pos));
      break;
    }
    texts.push_back(raw.substr(pos, next - pos));
    pos = next + sep.size();
  }
  std::vector<Vector> vectors;
  std::ifstream out(base + ".out");
  std::string line;
  for (size_t i = 0; std::getline(out, line); ++i) {
    Vector v;
    v.text = i < texts.size() ? texts[i] : "";
    std::istringstream ids(line);
    for (int id; ids >> id;) v.ids.push_back(id);
    vectors.push_back(std::move(v));
  }
  EXPECT_EQ(texts.size(), vectors.size()) << base << ": inputs and outputs differ in number";
  return vectors;
}

std::string Show(const std::vector<int>& ids) {
  std::string s;
  for (int id : ids) s += std::to_string(id) + " ";
  return s;
}

std::unique_ptr<Tokenizer> FromGgufPath(const std::string& path) {
  auto file = gguf::File::Open(path);
  EXPECT_TRUE(file.ok()) << file.status();
  if (!file.ok()) return nullptr;
  auto tok = TokenizerFromGguf(**file);
  EXPECT_TRUE(tok.ok()) << tok.status();
  return tok.ok() ? std::move(*tok) : nullptr;
}

// Every vector encodes exactly; decoding the reference ids after BOS gives the text back.
void CheckVectors(const Tokenizer& tok, const std::string& base, const std::string& label) {
  const auto vectors = ReadVectors(base);
  ASSERT_FALSE(vectors.empty());
  int encoded = 0, decoded = 0;
  for (const Vector& v : vectors) {
    const std::vector<int> got = tok.Encode(v.text, false);
    if (got == v.ids) ++encoded;
    EXPECT_EQ(Show(got), Show(v.ids)) << label << ": \"" << v.text << "\"";
    const std::string back = tok.Decode(v.ids, tok.bos_id());
    if (back == v.text) ++decoded;
    EXPECT_EQ(back, v.text) << label << ": decoding " << Show(v.ids);
  }
  std::printf("[ vectors  ] %s: %d/%zu encode exactly, %d/%zu decode back\n", label.c_str(),
              encoded, vectors.size(), decoded, vectors.size());
}

constexpr char kVocabDir[] = "models/vocab";

TEST(GgufTokenizerVectors, LlamaSpm) {
  SKIP_UNLESS_SHARED("models/vocab/ggml-vocab-llama-spm.gguf");
  const std::string base = testing::SharedPath(std::string(kVocabDir) + "/ggml-vocab-llama-spm.gguf");
  auto tok = FromGgufPath(base);
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->vocab_size(), 32000);
  EXPECT_EQ(tok->bos_id(), 1);
  EXPECT_EQ(tok->eos_id(), 2);
  CheckVectors(*tok, base, "llama-spm");
}

TEST(GgufTokenizerVectors, Phi3) {
  SKIP_UNLESS_SHARED("models/vocab/ggml-vocab-phi-3.gguf");
  const std::string base = testing::SharedPath(std::string(kVocabDir) + "/ggml-vocab-phi-3.gguf");
  auto tok = FromGgufPath(base);
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->vocab_size(), 32064);
  EXPECT_EQ(tok->eos_id(), 32000);  // <|endoftext|>, from tokenizer.ggml.eos_token_id
  CheckVectors(*tok, base, "phi-3");
}

TEST(GgufTokenizerVectors, Gpt2) {
  SKIP_UNLESS_SHARED("models/vocab/ggml-vocab-gpt-2.gguf");
  const std::string base = testing::SharedPath(std::string(kVocabDir) + "/ggml-vocab-gpt-2.gguf");
  auto tok = FromGgufPath(base);
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->vocab_size(), 50257);
  EXPECT_EQ(tok->bos_id(), 50256);
  EXPECT_EQ(tok->eos_id(), 50256);
  CheckVectors(*tok, base, "gpt-2");
}

// Special tokens: control tokens are never parsed from text (a prompt cannot inject <s>); Phi-3's
// user-defined </s> is matched verbatim, and llama.cpp strips the whitespace after it (RSTRIP).
TEST(GgufTokenizer, SpecialTokensInText) {
  SKIP_UNLESS_SHARED("models/vocab/ggml-vocab-phi-3.gguf");
  auto llama = FromGgufPath(testing::SharedPath("models/vocab/ggml-vocab-llama-spm.gguf"));
  auto phi3 = FromGgufPath(testing::SharedPath("models/vocab/ggml-vocab-phi-3.gguf"));
  ASSERT_NE(llama, nullptr);
  ASSERT_NE(phi3, nullptr);
  for (int id : llama->Encode("<s>hello</s>", false)) {
    EXPECT_NE(id, 1);
    EXPECT_NE(id, 2);
  }
  const std::vector<int> with_space = phi3->Encode("a</s>   b", false);
  EXPECT_NE(std::find(with_space.begin(), with_space.end(), 2), with_space.end());
  EXPECT_EQ(with_space, phi3->Encode("a</s>b", false));
  // <|endoftext|> is a control token in Phi-3: not parsed, decoded to nothing.
  for (int id : phi3->Encode("<|endoftext|>", false)) EXPECT_NE(id, 32000);
  EXPECT_EQ(phi3->DecodeToken(1, 32000), "");
  // add_bos puts BOS first; the space the encoder prepends is dropped when decoding after it.
  const std::vector<int> ids = llama->Encode("Hello world", true);
  ASSERT_FALSE(ids.empty());
  EXPECT_EQ(ids[0], 1);
  EXPECT_EQ(llama->Decode(std::span<const int>(ids).subspan(1), ids[0]), "Hello world");
  EXPECT_EQ(llama->Encode("", true), std::vector<int>{1});
  EXPECT_TRUE(llama->Encode("", false).empty());
}

// stories260K.gguf carries llama2.c's tok512 vocabulary: prompts encode to the ids llama2.c's
// runner used (golden/stories260K/greedy.jsonl holds BOS + prompt + generated tokens).
TEST(GgufTokenizer, Stories260KMatchesLlama2c) {
  SKIP_UNLESS_SHARED("models/gguf/stories260K.gguf");
  SKIP_UNLESS_SHARED("golden/stories260K/greedy.jsonl");
  auto tok = FromGgufPath(testing::SharedPath("models/gguf/stories260K.gguf"));
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->vocab_size(), 512);
  EXPECT_EQ(tok->Encode("Once upon a time", true), (std::vector<int>{1, 403, 407, 261, 378}));
  std::ifstream golden(testing::SharedPath("golden/stories260K/greedy.jsonl"));
  int prompts = 0;
  for (std::string line; std::getline(golden, line);) {
    const json record = json::parse(line);
    const std::string prompt = record["prompt"];
    if (prompt.empty()) continue;
    const std::vector<int> all = record["tokens"].get<std::vector<int>>();
    const std::vector<int> ids = tok->Encode(prompt, true);
    ASSERT_LE(ids.size(), all.size());
    EXPECT_EQ(Show(ids), Show(std::vector<int>(all.begin(), all.begin() + ids.size()))) << prompt;
    EXPECT_EQ(tok->Decode(std::span<const int>(ids).subspan(1), ids[0]), prompt);
    ++prompts;
  }
  EXPECT_GE(prompts, 2);
}

// A megabyte of one repeated character is one huge word (or one run of symbols): the heap-based
// merges keep it O(n log n). Not a timed assertion; a quadratic encoder would take hours here.
TEST(GgufTokenizer, LongRepeatedInputs) {
  SKIP_UNLESS_SHARED("models/vocab/ggml-vocab-gpt-2.gguf");
  auto gpt2 = FromGgufPath(testing::SharedPath("models/vocab/ggml-vocab-gpt-2.gguf"));
  auto llama = FromGgufPath(testing::SharedPath("models/vocab/ggml-vocab-llama-spm.gguf"));
  ASSERT_NE(gpt2, nullptr);
  ASSERT_NE(llama, nullptr);
  for (const std::string& text :
       {std::string(1 << 20, 'a'), std::string(1 << 20, ' '), std::string(1 << 20, '7')}) {
    for (const Tokenizer* tok : {gpt2.get(), llama.get()}) {
      const auto start = std::chrono::steady_clock::now();
      const std::vector<int> ids = tok->Encode(text, false);
      const double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::printf("[ long     ] 1 MiB of '%c', vocab %d: %zu tokens in %.2f s\n", text[0],
                  tok->vocab_size(), ids.size(), seconds);
      // GPT-2 has no merge of two spaces, Llama none of two digits: up to a token per byte.
      EXPECT_LE(ids.size(), text.size() + 1);
      const std::string back = tok->Decode(ids, tok->bos_id());
      EXPECT_TRUE(back == text) << "1 MiB of '" << text[0] << "' does not decode back";
    }
  }
}

// Random text from an alphabet of troublemakers (spaces, newlines, tabs, contractions, digits,
// multi-byte and 4-byte code points, U+0085, special-token texts, ill-formed bytes): every id is in
// the vocabulary, byte-level BPE always decodes back exactly, and the SentencePiece vocabulary does
// for well-formed UTF-8 (byte fallback covers every byte) without U+2581, which SentencePiece
// itself writes for a space and so decodes as one.
TEST(GgufTokenizer, RandomTextRoundTrips) {
  SKIP_UNLESS_SHARED("models/vocab/ggml-vocab-gpt-2.gguf");
  auto gpt2 = FromGgufPath(testing::SharedPath("models/vocab/ggml-vocab-gpt-2.gguf"));
  auto llama = FromGgufPath(testing::SharedPath("models/vocab/ggml-vocab-llama-spm.gguf"));
  auto phi3 = FromGgufPath(testing::SharedPath("models/vocab/ggml-vocab-phi-3.gguf"));
  ASSERT_NE(gpt2, nullptr);
  ASSERT_NE(llama, nullptr);
  ASSERT_NE(phi3, nullptr);
  const std::vector<std::string> valid = {
      " ", "  ", "\n", "\r\n", "\t", "a", "Z", "'s", "'LL", "7", "123", ".", "!?", "\xc3\xa9",
      "\xe4\xb8\x80", "\xf0\x9f\xa6\x99", "\xc2\x85", "\xe3\x80\x80", "\xe2\x96\x81",
      "<s>", "</s>", "<|endoftext|>", "<0x0A>", "hello", " world"};
  const std::vector<std::string> invalid = {"\xff", "\xc3", "\xe4\xb8", "\x80", "\xf0\x9f"};
  uint64_t state = 88172645463325252ull;
  auto next = [&] {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  };
  for (int round = 0; round < 2000; ++round) {
    std::string text;
    bool well_formed = true;
    for (int n = next() % 24; n > 0; --n) {
      if (next() % 8 == 0) {
        text += invalid[next() % invalid.size()];
        well_formed = false;
      } else {
        text += valid[next() % valid.size()];
      }
    }
    const bool spm_lossless = well_formed && text.find("\xe2\x96\x81") == std::string::npos;
    for (const Tokenizer* tok : {gpt2.get(), llama.get(), phi3.get()}) {
      const std::vector<int> ids = tok->Encode(text, true);
      for (int id : ids) ASSERT_TRUE(id >= 0 && id < tok->vocab_size()) << id;
      if (tok == gpt2.get() || (tok == llama.get() && spm_lossless))
        EXPECT_TRUE(tok->Decode(std::span<const int>(ids).subspan(1), ids[0]) == text)
            << "vocab " << tok->vocab_size() << " round " << round << ": " << text << " -> " << Show(ids);
    }
  }
}

// tokenizer.json from the GPT-2 GGUF vocabulary: the HF loader encodes the vectors identically,
// with merges in both forms and with the pre-tokenizer as Llama 3 / Qwen2 ship it (Split, then
// ByteLevel without its own regex).
class HfFromGpt2 : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(testing::SharedPath("models/vocab/ggml-vocab-gpt-2.gguf")))
      GTEST_SKIP() << "reference data " << testing::SharedPath("models/vocab/ggml-vocab-gpt-2.gguf")
                   << " not found; set STAVE_SHARED_DIR to the shared/ folder to run this test";
    auto file = gguf::File::Open(testing::SharedPath("models/vocab/ggml-vocab-gpt-2.gguf"));
    ASSERT_TRUE(file.ok()) << file.status();
    tokens_ = *(*file)->GetStringArray("tokenizer.ggml.tokens");
    merges_ = *(*file)->GetStringArray("tokenizer.ggml.merges");
    dir_ = std::filesystem::path(UniqueTempDir(
        ::testing::UnitTest::GetInstance()->current_test_info()->name()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  json Base(bool pair_merges) const {
    json vocab = json::object();
    for (size_t i = 0; i + 1 < tokens_.size(); ++i) vocab[tokens_[i]] = i;  // not <|endoftext|>
    json merges = json::array();
    for (const std::string& m : merges_) {
      if (!pair_merges) {
        merges.push_back(m);
      } else {
        const size_t space = m.find(' ', 1);
        merges.push_back(json::array({m.substr(0, space), m.substr(space + 1)}));
      }
    }
    json root;
    root["version"] = "1.0";
    root["added_tokens"] = json::parse(R"([{"id": 50256, "content": "<|endoftext|>",
        "single_word": false, "lstrip": false, "rstrip": false, "normalized": true,
        "special": true}])");
    root["normalizer"] = nullptr;
    root["pre_tokenizer"] = {{"type", "ByteLevel"}, {"add_prefix_space", false},
                             {"trim_offsets", true}, {"use_regex", true}};
    root["post_processor"] = {{"type", "ByteLevel"}, {"add_prefix_space", true},
                              {"trim_offsets", false}, {"use_regex", true}};
    root["decoder"] = {{"type", "ByteLevel"}};
    root["model"] = {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr},
                     {"continuing_subword_prefix", ""}, {"end_of_word_suffix", ""},
                     {"fuse_unk", false}, {"byte_fallback", false}, {"vocab", vocab},
                     {"merges", merges}};
    return root;
  }

  std::string Write(const json& root, const std::string& name = "tokenizer.json") {
    const std::string path = (dir_ / name).string();
    WriteAll(path, root.dump());
    return path;
  }

  std::vector<std::string> tokens_, merges_;
  std::filesystem::path dir_;
};

TEST_F(HfFromGpt2, StringMerges) {
  auto tok = LoadHfTokenizerJson(Write(Base(false)));
  ASSERT_TRUE(tok.ok()) << tok.status();
  EXPECT_EQ((*tok)->vocab_size(), 50257);
  EXPECT_EQ((*tok)->bos_id(), 50256);  // <|endoftext|>, the special added token GPT-2 uses
  CheckVectors(**tok, testing::SharedPath("models/vocab/ggml-vocab-gpt-2.gguf"), "gpt-2 tokenizer.json");
  // Added tokens are matched verbatim before pre-tokenization and decode to nothing if special.
  const std::vector<int> ids = (*tok)->Encode("a<|endoftext|>b", false);
  EXPECT_EQ(ids.size(), 3u);
  EXPECT_EQ(ids[1], 50256);
  EXPECT_EQ((*tok)->Decode(ids, -1), "ab");
}

TEST_F(HfFromGpt2, PairMergesAndSplitSequence) {
  json root = Base(true);
  root["pre_tokenizer"] = json::parse(R"({"type": "Sequence", "pretokenizers": [
      {"type": "Split", "pattern": {"Regex": ""}, "behavior": "Isolated", "invert": false},
      {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}]})");
  root["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = std::string(text::kGpt2Regex);
  root["post_processor"] = json::parse(R"({"type": "Sequence", "processors": [
      {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true},
      {"type": "TemplateProcessing",
       "single": [{"SpecialToken": {"id": "<|endoftext|>", "type_id": 0}},
                  {"Sequence": {"id": "A", "type_id": 0}}],
       "pair": [],
       "special_tokens": {"<|endoftext|>": {"id": "<|endoftext|>", "ids": [50256],
                                            "tokens": ["<|endoftext|>"]}}}]})");
  auto tok = LoadHfTokenizerJson(Write(root));
  ASSERT_TRUE(tok.ok()) << tok.status();
  EXPECT_EQ((*tok)->bos_id(), 50256);
  CheckVectors(**tok, testing::SharedPath("models/vocab/ggml-vocab-gpt-2.gguf"),
               "gpt-2 tokenizer.json (pair merges, Split + ByteLevel)");
}

TEST_F(HfFromGpt2, TokenizerConfigNamesBosAndEos) {
  Write(json{{"bos_token", "<|endoftext|>"},
             {"eos_token", {{"content", "<|endoftext|>"}, {"lstrip", false}}}},
        "tokenizer_config.json");
  auto tok = LoadHfTokenizerJson(Write(Base(false)));
  ASSERT_TRUE(tok.ok()) << tok.status();
  EXPECT_EQ((*tok)->bos_id(), 50256);
  EXPECT_EQ((*tok)->eos_id(), 50256);
  Write(json{{"eos_token", "<nope>"}}, "tokenizer_config.json");
  EXPECT_TRUE(ErrorSays(LoadHfTokenizerJson(Write(Base(false))).status(), "eos_token"));
}

TEST_F(HfFromGpt2, MalformedFilesAreErrors) {
  struct Case {
    std::string what;
    std::function<void(json&)> edit;
    std::string says;
  };
  const std::vector<Case> cases = {
      {"no model", [](json& j) { j.erase("model"); }, "model"},
      {"WordPiece", [](json& j) { j["model"]["type"] = "WordPiece"; }, "model.type"},
      {"vocab array", [](json& j) { j["model"]["vocab"] = json::array(); }, "model.vocab"},
      {"vocab id string", [](json& j) { j["model"]["vocab"]["!"] = "zero"; }, "model.vocab"},
      {"duplicate id", [](json& j) { j["model"]["vocab"]["zzzz-new"] = 5; }, "same id"},
      {"no merges", [](json& j) { j["model"].erase("merges"); }, "model.merges"},
      {"merge number", [](json& j) { j["model"]["merges"][3] = 7; }, "model.merges[3]"},
      {"merge no space", [](json& j) { j["model"]["merges"][4] = "ab"; }, "model.merges[4]"},
      {"merge unknown token",
       [](json& j) { j["model"]["merges"][5] = "\xe2\x98\x83 x"; }, "merge 5"},
      {"byte fallback", [](json& j) { j["model"]["byte_fallback"] = true; }, "byte_fallback"},
      {"no pre-tokenizer", [](json& j) { j["pre_tokenizer"] = nullptr; }, "pre_tokenizer"},
      {"Metaspace", [](json& j) { j["pre_tokenizer"] = {{"type", "Metaspace"}}; }, "Metaspace"},
      {"bad split regex",
       [](json& j) {
         j["pre_tokenizer"] = json::parse(R"({"type": "Sequence", "pretokenizers": [
             {"type": "Split", "pattern": {"Regex": "(unclosed"}, "behavior": "Isolated"},
             {"type": "ByteLevel", "add_prefix_space": false, "use_regex": false}]})");
       },
       "(unclosed"},
      {"normalizer", [](json& j) { j["normalizer"] = {{"type", "Lowercase"}}; }, "normalizer"},
      {"added id", [](json& j) { j["added_tokens"][0]["id"] = "x"; }, "added_tokens[0]"},
      {"prefix space after split",
       [](json& j) {
         j["pre_tokenizer"] = json::parse(R"({"type": "Sequence", "pretokenizers": [
             {"type": "Digits", "individual_digits": true},
             {"type": "ByteLevel", "add_prefix_space": true}]})");
       },
       "add_prefix_space"},
      {"single_word", [](json& j) { j["added_tokens"][0]["single_word"] = true; }, "single_word"},
      {"behavior", [](json& j) {
         j["pre_tokenizer"] = json::parse(R"({"type": "Sequence", "pretokenizers": [
             {"type": "Split", "pattern": {"String": " "}, "behavior": "MergedWithNext"},
             {"type": "ByteLevel", "add_prefix_space": false}]})");
       },
       "behavior"},
  };
  for (const Case& c : cases) {
    json root = Base(false);
    c.edit(root);
    auto tok = LoadHfTokenizerJson(Write(root));
    EXPECT_TRUE(ErrorSays(tok.status(), c.says)) << c.what;
    EXPECT_TRUE(ErrorSays(tok.status(), "tokenizer.json")) << c.what;  // names the file
  }
  const std::string bad = (dir_ / "bad.json").string();
  WriteAll(bad, "{\"model\": {\"type\": \"BPE\", ");
  EXPECT_TRUE(ErrorSays(LoadHfTokenizerJson(bad).status(), "not valid JSON"));
  EXPECT_TRUE(ErrorSays(LoadHfTokenizerJson(bad).status(), "bad.json"));
  EXPECT_TRUE(ErrorSays(LoadHfTokenizerJson((dir_ / "missing.json").string()).status(), "missing.json"));
  EXPECT_FALSE(LoadHfTokenizerJson(dir_.string()).ok());  // a directory
}

// A tiny tokenizer.json, no shared data: the 256-character alphabet plus "he", "hello" (reachable
// by no merge) and "Ġworld"; Llama 3's Split regex (case-insensitive contractions); an added
// special token and an added plain one that eats the whitespace around it.
TEST(HfTokenizerJson, TinyIgnoreMergesAndAddedTokens) {
  json vocab = json::object();
  for (int b = 0; b < 256; ++b) vocab[text::ByteLevelChar(static_cast<uint8_t>(b))] = b;
  vocab["he"] = 256;
  vocab["hello"] = 257;
  vocab["\xc4\xa0w"] = 258;
  json root = json::parse(R"({
    "added_tokens": [
      {"id": 259, "content": "<|begin_of_text|>", "special": true},
      {"id": 260, "content": "[SEP]", "special": false, "lstrip": true, "rstrip": true}],
    "normalizer": null,
    "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
      {"type": "Split", "pattern": {"Regex":
        "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
       "behavior": "Isolated", "invert": false},
      {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}]},
    "model": {"type": "BPE", "ignore_merges": true, "merges": [["h", "e"], ["\u0120", "w"]]}
  })");
  root["model"]["vocab"] = vocab;
  const std::string dir = UniqueTempDir("tiny");
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/tokenizer.json";
  WriteAll(path, root.dump());
  auto tok = LoadHfTokenizerJson(path);
  ASSERT_TRUE(tok.ok()) << tok.status();
  EXPECT_EQ((*tok)->vocab_size(), 261);
  EXPECT_EQ((*tok)->bos_id(), 259);  // <|begin_of_text|>, by name: no post-processor, no config
  // "hello" is a token: taken whole (ignore_merges) though no merge builds it; "hellO" is not.
  EXPECT_EQ((*tok)->Encode("hello", true), (std::vector<int>{259, 257}));
  EXPECT_EQ((*tok)->Encode("hellO", false), (std::vector<int>{256, 'l', 'l', 'O'}));
  // "'S" splits off case-insensitively; [SEP] strips the spaces on both sides.
  EXPECT_EQ((*tok)->Encode("it'S  [SEP]  world", false),
            (std::vector<int>{'i', 't', '\'', 'S', 260, 'w', 'o', 'r', 'l', 'd'}));
  EXPECT_EQ((*tok)->Encode("a world", false), (std::vector<int>{'a', 258, 'o', 'r', 'l', 'd'}));
  EXPECT_EQ((*tok)->DecodeToken(259, 260), "[SEP]");  // plain added token: its text
  EXPECT_EQ((*tok)->DecodeToken(259, 259), "");       // special: nothing
  std::filesystem::remove_all(dir);
}

// --- GGUF metadata errors, on small files built with the writer ---

struct Built {
  std::string bytes;
  absl::StatusOr<std::unique_ptr<Tokenizer>> tok = absl::UnknownError("unset");
};

Built FromWriter(const gguf::Writer& w) {
  Built b;
  b.bytes = w.Serialize();
  auto file = gguf::File::Parse(reinterpret_cast<const unsigned char*>(b.bytes.data()),
                                b.bytes.size(), "tiny.gguf");
  if (!file.ok()) {
    b.tok = file.status();
    return b;
  }
  b.tok = TokenizerFromGguf(**file);
  return b;
}

// Replaces or drops a key while a tiny vocabulary is written (the reader refuses a key written
// twice): returns true when it has handled `key` (written something else, or nothing).
using Edit = std::function<bool(const std::string& key, gguf::Writer& w)>;
bool Keep(const std::string&, gguf::Writer&) { return false; }

// A tiny SentencePiece-style vocabulary: 3 specials, 256 byte tokens, a few pieces.
gguf::Writer TinySpm(const Edit& edit = Keep) {
  gguf::Writer w;
  if (!edit("tokenizer.ggml.model", w)) w.SetString("tokenizer.ggml.model", "llama");
  std::vector<std::string> tokens = {"<unk>", "<s>", "</s>"};
  std::vector<float> scores = {0, 0, 0};
  std::vector<int32_t> types = {2, 3, 3};
  char name[8];
  for (int b = 0; b < 256; ++b) {
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    tokens.push_back(name);
    scores.push_back(0);
    types.push_back(6);
  }
  const std::vector<std::pair<std::string, float>> pieces = {
      {"\xe2\x96\x81", -1}, {"a", -2}, {"b", -3}, {"ab", -4}, {"\xe2\x96\x81" "ab", -5},
      {"\xe2\x96\x81" "a", -6}, {"bb", -0.5f}, {"<U>", -7}};
  for (const auto& [p, s] : pieces) {
    tokens.push_back(p);
    scores.push_back(s);
    types.push_back(p == "<U>" ? 4 : 1);
  }
  if (!edit("tokenizer.ggml.tokens", w)) w.SetStringArray("tokenizer.ggml.tokens", tokens);
  if (!edit("tokenizer.ggml.scores", w)) w.SetFloat32Array("tokenizer.ggml.scores", scores);
  if (!edit("tokenizer.ggml.token_type", w)) w.SetInt32Array("tokenizer.ggml.token_type", types);
  edit("", w);  // extra keys
  return w;
}

TEST(GgufTokenizer, TinySpmMergesByScoreWithByteFallback) {
  Built b = FromWriter(TinySpm());
  ASSERT_TRUE(b.tok.ok()) << b.tok.status();
  const Tokenizer& tok = **b.tok;
  const int kSp = 259, kA = 260, kB = 261, kAb = 262, kSpAb = 263, kSpA = 264, kBb = 265, kU = 266;
  // "▁abb": bb (-0.5) beats ▁a... no: the pairs are ▁a (-6), ab (-4), bb (-0.5): bb first, then
  // ▁a (ab is gone), giving ▁a + bb.
  EXPECT_EQ(tok.Encode("abb", false), (std::vector<int>{kSpA, kBb}));
  EXPECT_EQ(tok.Encode("ab", false), (std::vector<int>{kSpAb}));
  // "é" is no piece: its two UTF-8 bytes become byte tokens (<0xC3> is id 3 + 0xC3).
  EXPECT_EQ(tok.Encode("\xc3\xa9", false), (std::vector<int>{kSp, 3 + 0xC3, 3 + 0xA9}));
  // BOS decodes to nothing and the prefix space after it is dropped: the text comes back.
  EXPECT_EQ(tok.Decode(tok.Encode("\xc3\xa9 ab", true), 1), "\xc3\xa9 ab");
  // A user-defined token is matched verbatim and starts a new run with its own space prefix.
  EXPECT_EQ(tok.Encode("a<U>b", false), (std::vector<int>{kSpA, kU, kSp, kB}));
  EXPECT_EQ(tok.DecodeToken(kU, kSpAb), " ab");
  EXPECT_EQ(tok.DecodeToken(1, kSpAb), "ab");  // the prefix space is dropped after BOS
  EXPECT_EQ(tok.DecodeToken(1, 2), "");        // control
  EXPECT_EQ(tok.DecodeToken(1, 99999), "");    // out of range
  (void)kA;
}

// The vocabulary a SentencePiece-style GGUF tokenizer hands out (for `stave convert`) written
// back as GGUF metadata gives a tokenizer that encodes the same.
TEST(GgufTokenizer, SentencePieceVocabularyRoundTrips) {
  Built b = FromWriter(TinySpm());
  ASSERT_TRUE(b.tok.ok()) << b.tok.status();
  const auto entries = (*b.tok)->SentencePieceVocabulary();
  ASSERT_EQ(static_cast<int>(entries.size()), (*b.tok)->vocab_size());
  EXPECT_EQ(entries[3].piece, "<0x00>");
  EXPECT_EQ(entries[3].type, VocabularyEntry::kByte);
  EXPECT_EQ(entries[266].type, 4);  // user-defined <U>
  EXPECT_EQ(entries[265].score, -0.5f);
  gguf::Writer w;
  w.SetString("tokenizer.ggml.model", "llama");
  std::vector<std::string> pieces;
  std::vector<float> scores;
  std::vector<int32_t> types;
  for (const auto& e : entries) {
    pieces.push_back(e.piece);
    scores.push_back(e.score);
    types.push_back(e.type);
  }
  w.SetStringArray("tokenizer.ggml.tokens", pieces);
  w.SetFloat32Array("tokenizer.ggml.scores", scores);
  w.SetInt32Array("tokenizer.ggml.token_type", types);
  Built again = FromWriter(w);
  ASSERT_TRUE(again.tok.ok()) << again.tok.status();
  for (const char* text : {"abb", "a<U>b \xc3\xa9", "  ab\n"})
    EXPECT_EQ((*again.tok)->Encode(text, true), (*b.tok)->Encode(text, true)) << text;
}

TEST(GgufTokenizer, AddSpacePrefixFalse) {
  Built b = FromWriter(TinySpm([](const std::string& key, gguf::Writer& w) {
    if (key.empty()) w.SetBool("tokenizer.ggml.add_space_prefix", false);
    return false;
  }));
  ASSERT_TRUE(b.tok.ok()) << b.tok.status();
  EXPECT_EQ((*b.tok)->Encode("ab", false), (std::vector<int>{262}));
}

// A tiny byte-level BPE vocabulary: the 256 alphabet characters and merges "h e", "l l", "he ll",
// "Ġ w" (Ġ is the space's character).
gguf::Writer TinyBpe(const std::string& pre = "gpt-2", const Edit& edit = Keep) {
  gguf::Writer w;
  w.SetString("tokenizer.ggml.model", "gpt2");
  if (!pre.empty()) w.SetString("tokenizer.ggml.pre", pre);
  std::vector<std::string> tokens;
  for (int b = 0; b < 256; ++b) tokens.push_back(text::ByteLevelChar(static_cast<uint8_t>(b)));
  for (const char* t : {"he", "ll", "hell", "\xc4\xa0w", "<|end|>"}) tokens.push_back(t);
  std::vector<int32_t> types(tokens.size(), 1);
  types.back() = 3;
  w.SetStringArray("tokenizer.ggml.tokens", tokens);
  w.SetInt32Array("tokenizer.ggml.token_type", types);
  if (!edit("tokenizer.ggml.merges", w))
    w.SetStringArray("tokenizer.ggml.merges", {"h e", "l l", "he ll", "\xc4\xa0 w"});
  w.SetUint32("tokenizer.ggml.bos_token_id", 260);
  w.SetUint32("tokenizer.ggml.eos_token_id", 260);
  return w;
}

TEST(GgufTokenizer, TinyBpe) {
  Built b = FromWriter(TinyBpe());
  ASSERT_TRUE(b.tok.ok()) << b.tok.status();
  const Tokenizer& tok = **b.tok;
  // "hello world": words "hello", " world"; hell + o, Ġw + o r l d.
  EXPECT_EQ(tok.Encode("hello world", false),
            (std::vector<int>{258, 'o', 259, 'o', 'r', 'l', 'd'}));
  EXPECT_EQ(tok.Decode(tok.Encode("hello world\n\xff", false), -1), "hello world\n\xff");
  EXPECT_EQ(tok.eos_id(), 260);
  EXPECT_EQ(tok.DecodeToken(0, 260), "");  // control
  EXPECT_TRUE(tok.SentencePieceVocabulary().empty());  // not SentencePiece-style
}

TEST(GgufTokenizer, MalformedMetadataIsAnError) {
  struct Case {
    std::string what;
    std::function<gguf::Writer()> make;
    std::string says;
  };
  // Writes `value` instead of `key` (or adds it when key is "").
  auto Replace = [](std::string target, std::function<void(gguf::Writer&)> value) {
    return Edit([target, value](const std::string& key, gguf::Writer& w) {
      if (key != target) return false;
      value(w);
      return true;
    });
  };
  const std::vector<Case> cases = {
      {"no model", [&] { return TinySpm(Replace("tokenizer.ggml.model", [](gguf::Writer&) {})); },
       "tokenizer.ggml.model"},
      {"model type",
       [&] { return TinySpm(Replace("tokenizer.ggml.model", [](gguf::Writer& w) { w.SetUint32("tokenizer.ggml.model", 3); })); },
       "tokenizer.ggml.model"},
      {"unknown model",
       [&] { return TinySpm(Replace("tokenizer.ggml.model", [](gguf::Writer& w) { w.SetString("tokenizer.ggml.model", "bert"); })); },
       "bert"},
      {"no tokens", [&] { return TinySpm(Replace("tokenizer.ggml.tokens", [](gguf::Writer&) {})); },
       "tokenizer.ggml.tokens"},
      {"tokens not strings",
       [&] { return TinySpm(Replace("tokenizer.ggml.tokens", [](gguf::Writer& w) { w.SetFloat32Array("tokenizer.ggml.tokens", {1, 2}); })); },
       "tokenizer.ggml.tokens"},
      {"score count",
       [&] { return TinySpm(Replace("tokenizer.ggml.scores", [](gguf::Writer& w) { w.SetFloat32Array("tokenizer.ggml.scores", {1, 2}); })); },
       "tokenizer.ggml.scores"},
      {"scores not floats",
       [&] { return TinySpm(Replace("tokenizer.ggml.scores", [](gguf::Writer& w) { w.SetString("tokenizer.ggml.scores", "x"); })); },
       "tokenizer.ggml.scores"},
      {"type count",
       [&] { return TinySpm(Replace("tokenizer.ggml.token_type", [](gguf::Writer& w) { w.SetInt32Array("tokenizer.ggml.token_type", {1}); })); },
       "tokenizer.ggml.token_type"},
      {"bos out of range",
       [&] { return TinySpm(Replace("", [](gguf::Writer& w) { w.SetUint32("tokenizer.ggml.bos_token_id", 100000); })); },
       "tokenizer.ggml.bos_token_id"},
      {"eos not an integer",
       [&] { return TinySpm(Replace("", [](gguf::Writer& w) { w.SetString("tokenizer.ggml.eos_token_id", "2"); })); },
       "tokenizer.ggml.eos_token_id"},
      {"no merges", [&] { return TinyBpe("gpt-2", Replace("tokenizer.ggml.merges", [](gguf::Writer&) {})); },
       "tokenizer.ggml.merges"},
      {"merges not an array",
       [&] { return TinyBpe("gpt-2", Replace("tokenizer.ggml.merges", [](gguf::Writer& w) { w.SetString("tokenizer.ggml.merges", "h e"); })); },
       "tokenizer.ggml.merges"},
      {"merge of unknown token",
       [&] { return TinyBpe("gpt-2", Replace("tokenizer.ggml.merges", [](gguf::Writer& w) { w.SetStringArray("tokenizer.ggml.merges", {"h e", "q\xc4\xa0 zz"}); })); },
       "merge 1"},
      {"merge without space",
       [&] { return TinyBpe("gpt-2", Replace("tokenizer.ggml.merges", [](gguf::Writer& w) { w.SetStringArray("tokenizer.ggml.merges", {"he"}); })); },
       "tokenizer.ggml.merges[0]"},
      {"unknown pre", [] { return TinyBpe("klingon-bpe"); }, "klingon-bpe"},
  };
  for (const Case& c : cases) {
    Built b = FromWriter(c.make());
    EXPECT_TRUE(ErrorSays(b.tok.status(), c.says)) << c.what;
    EXPECT_TRUE(ErrorSays(b.tok.status(), "tiny.gguf")) << c.what;  // names the file
  }
}

TEST(GgufTokenizer, EveryKnownPreCompiles) {
  for (const char* pre : {"default", "gpt-2", "llama3", "llama-bpe", "deepseek-llm",
                          "deepseek-coder", "qwen2", "falcon", "starcoder", "dbrx", "bloom",
                          "viking"}) {
    Built b = FromWriter(TinyBpe(pre));
    ASSERT_TRUE(b.tok.ok()) << pre << ": " << b.tok.status();
    EXPECT_EQ((*b.tok)->Decode((*b.tok)->Encode("hello  world 123\n\n x", false), -1),
              "hello  world 123\n\n x")
        << pre;
  }
  Built none = FromWriter(TinyBpe(""));  // no pre: llama.cpp's default
  EXPECT_TRUE(none.tok.ok()) << none.tok.status();
}

// Long runs through every known regex list: no backtracking blow-up (a regex such as \s+$ or
// \s*[\r\n]+ retried at every position of a long run would be quadratic), and nothing is lost.
TEST(GgufTokenizer, EveryKnownPreOnLongRuns) {
  const std::string spaces_then_digit = std::string(1 << 18, ' ') + "1";
  const std::string mixed = [] {
    std::string s;
    while (s.size() < (1 << 18)) s += "hello  world 123\n\n x\t\t, \xe4\xb8\x80\xe4\xba\x8c ";
    return s;
  }();
  for (const char* pre : {"default", "gpt-2", "llama3", "deepseek-llm", "deepseek-coder", "qwen2",
                          "falcon", "starcoder", "bloom", "viking"}) {
    Built b = FromWriter(TinyBpe(pre));
    ASSERT_TRUE(b.tok.ok()) << pre << ": " << b.tok.status();
    for (const std::string* text : {&spaces_then_digit, &mixed}) {
      const auto start = std::chrono::steady_clock::now();
      const std::vector<int> ids = (*b.tok)->Encode(*text, false);
      const double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::printf("[ long     ] pre %s: %zu bytes, %zu tokens in %.2f s\n", pre, text->size(),
                  ids.size(), seconds);
      EXPECT_TRUE((*b.tok)->Decode(ids, -1) == *text) << pre;
    }
  }
}

// --- engine pieces ---

std::vector<std::string> Pieces(const text::PreTokenizer& pre, std::string_view s) {
  std::vector<std::string> out;
  for (std::string_view p : pre.Split(s)) out.emplace_back(p);
  return out;
}

TEST(PreTokenizer, Gpt2Llama3AndAnchors) {
  auto gpt2 = text::PreTokenizer::Create({{text::kGpt2Regex, false}}, "test");
  ASSERT_TRUE(gpt2.ok()) << gpt2.status();
  EXPECT_EQ(Pieces(*gpt2, "Hello, y'all!  How are you 123?"),
            (std::vector<std::string>{"Hello", ",", " y", "'", "all", "!", " ", " How", " are",
                                      " you", " 123", "?"}));
  // \s is Unicode White_Space: U+0085 and U+3000 are spaces, U+00A0 too.
  EXPECT_EQ(Pieces(*gpt2, "a\xc2\x85\xc2\x85" "b"),
            (std::vector<std::string>{"a", "\xc2\x85", "\xc2\x85", "b"}));
  // Ill-formed UTF-8 never matches: it stays between pieces, nothing is lost.
  EXPECT_EQ(Pieces(*gpt2, "ab\xff\xfe" "cd"), (std::vector<std::string>{"ab", "\xff\xfe", "cd"}));

  auto llama3 = text::GgufPreTokenizer("llama3");
  ASSERT_TRUE(llama3.ok());
  EXPECT_TRUE(llama3->ignore_merges);
  auto l3 = text::PreTokenizer::Create({{llama3->regexes[0], false}}, "test");
  ASSERT_TRUE(l3.ok()) << l3.status();
  EXPECT_EQ(Pieces(*l3, "I'M 12345 ok\n\n  x"),
            (std::vector<std::string>{"I", "'M", " ", "123", "45", " ok", "\n\n", " ", " x"}));
  // $ is the end of the piece only (not before a final newline), as in Rust and std::regex.
  auto dollar = text::PreTokenizer::Create({{R"(\s+$)", false}}, "test");
  ASSERT_TRUE(dollar.ok());
  EXPECT_EQ(Pieces(*dollar, "a  \n"), (std::vector<std::string>{"a", "  \n"}));
  EXPECT_EQ(Pieces(*dollar, "a \nb"), (std::vector<std::string>{"a \nb"}));
  auto removed = text::PreTokenizer::Create({{R"(\s+)", true}}, "test");
  ASSERT_TRUE(removed.ok());
  EXPECT_EQ(Pieces(*removed, " a  b "), (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(ErrorSays(text::GgufPreTokenizer("nope").status(), "nope"));
}

TEST(TokenPartition, LongestFirstAndStrip) {
  std::vector<text::VerbatimToken> tokens = {{"<a>", 1}, {"<a><b>", 2}, {"<b>", 3, true, true}};
  text::SortVerbatimTokens(&tokens);
  auto parts = text::PartitionVerbatim("x<a><b>y  <b>  z<a>", tokens);
  std::vector<std::string> shown;
  for (const auto& f : parts) shown.push_back(f.token >= 0 ? "#" + std::to_string(f.token) : std::string(f.text));
  EXPECT_EQ(shown, (std::vector<std::string>{"x", "#2", "y", "#3", "z", "#1"}));
  EXPECT_TRUE(text::PartitionVerbatim("", tokens).empty());
}

TEST(ByteLevel, RoundTripsEveryByte) {
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  EXPECT_EQ(text::ByteLevelDecode(text::ByteLevelEncode(all)), all);
  EXPECT_EQ(text::ByteLevelChar(' '), "\xc4\xa0");   // Ġ
  EXPECT_EQ(text::ByteLevelChar('\n'), "\xc4\x8a");  // Ċ
  EXPECT_EQ(text::ByteLevelChar('A'), "A");
}

}  // namespace
}  // namespace stave
