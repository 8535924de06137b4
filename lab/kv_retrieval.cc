#include "lab/kv_retrieval.h"

#include <algorithm>
#include <random>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"

namespace stave {
namespace {

constexpr char kConsonants[] = "bdfgklmnprstvz";
constexpr char kVowels[] = "aeiou";
// One syllable per key and value (70 of them): each is one token (KvTokenizerSymbols), so a
// record is three tokens and the value follows its key piece directly (measured before fixed
// pieces: two-syllable words never left the first curriculum stage in 3387 steps).
constexpr int kSyllablesPerWord = 1;

// Uniform in [0, n): modulo of a 64-bit draw (bias < n / 2^64), unlike std distributions the
// same on every standard library.
uint64_t Below(std::mt19937_64& rng, uint64_t n) { return rng() % n; }

std::string Word(std::mt19937_64& rng, int syllables) {
  std::string w;
  for (int i = 0; i < syllables; ++i) {
    w += kConsonants[Below(rng, sizeof(kConsonants) - 1)];
    w += kVowels[Below(rng, sizeof(kVowels) - 1)];
  }
  return w;
}

}  // namespace

uint64_t MixSeed(uint64_t a, uint64_t b, uint64_t c, uint64_t d) {
  uint64_t x = 0x9E3779B97F4A7C15ull;
  for (uint64_t v : {a, b, c, d}) {
    x ^= v + 0x9E3779B97F4A7C15ull + (x << 6) + (x >> 2);
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    x ^= x >> 31;
  }
  return x;
}

KvRetrievalExample MakeKvRetrievalExample(int records, int gold, int queries, uint64_t seed) {
  records = std::clamp(records, 1, kKvMaxRecords);
  gold = std::clamp(gold, 0, records - 1);
  std::mt19937_64 rng(seed);
  KvRetrievalExample ex;
  std::set<std::string> keys;
  while (static_cast<int>(ex.records.size()) < records) {
    std::string key = Word(rng, kSyllablesPerWord);
    if (!keys.insert(key).second) continue;
    ex.records.push_back({key, Word(rng, kSyllablesPerWord)});
  }
  ex.queries.push_back(gold);
  std::set<int> asked{gold};
  queries = std::min(queries, records);
  while (static_cast<int>(ex.queries.size()) < queries) {
    int q = static_cast<int>(Below(rng, records));
    if (asked.insert(q).second) ex.queries.push_back(q);
  }

  ex.prompt = kKvInstruction;
  ex.prompt += "{";
  for (int i = 0; i < records; ++i) {
    if (i > 0) ex.prompt += ", ";
    ex.prompt += "\"" + ex.records[i].key + "\": \"" + ex.records[i].value + "\"";
  }
  ex.prompt += "}\nQuery: \"" + ex.records[gold].key + "\": \"";
  for (size_t i = 0; i < ex.queries.size(); ++i) {
    ex.answers.push_back(ex.records[ex.queries[i]].value + "\"");
    if (i + 1 < ex.queries.size())
      ex.between.push_back("\nQuery: \"" + ex.records[ex.queries[i + 1]].key + "\": \"");
  }
  return ex;
}

KvCopyExample MakeKvCopyExample(int records, uint64_t seed) {
  auto ex = MakeKvRetrievalExample(records, 0, 1, seed);
  std::string object;
  for (int i = 0; i < records; ++i) {
    if (i > 0) object += ", ";
    object += "\"" + ex.records[i].key + "\": \"" + ex.records[i].value + "\"";
  }
  return {std::string(kKvCopyInstruction) + "{" + object + "}\nRepeat: {", object + "}"};
}

std::vector<std::string> KvTokenizerSymbols() {
  static_assert(kSyllablesPerWord == 1, "the fixed pieces are single syllables");
  // SentencePiece sees spaces as U+2581 and trains on lines, so the pieces hold no newline.
  auto pieces = [](std::string text) {
    text = absl::StrReplaceAll(text, {{" ", "\u2581"}});
    std::vector<std::string> lines = absl::StrSplit(text, '\n', absl::SkipEmpty());
    return lines;
  };
  std::vector<std::string> symbols;
  for (const auto& fixed : {std::string(kKvInstruction), std::string(kKvCopyInstruction),
                            std::string("{"), std::string("\", "), std::string("\"}"),
                            std::string("Query: "), std::string("Repeat: "),
                            std::string(kKvReverseQuery)})
    for (auto& p : pieces(fixed)) symbols.push_back(std::move(p));
  std::vector<std::string> syllables;
  for (const char* c = kConsonants; *c; ++c)
    for (const char* v = kVowels; *v; ++v) {
      const std::string syllable{*c, *v};
      symbols.push_back(pieces("\"" + syllable + "\": \"")[0]);
      syllables.push_back(syllable);
    }
  symbols.insert(symbols.end(), syllables.begin(), syllables.end());
  return symbols;
}

KvQueryText KvReverseQuery(const KvRecord& record) {
  // StrCat, not "literal" + std::string: the latter trips a GCC 12 -Wrestrict false positive.
  return {absl::StrCat("\n", kKvReverseQuery, record.value, ": "), absl::StrCat("\"", record.key, "\": \"")};
}

std::string ExtractKvValue(const std::string& completion) {
  return completion.substr(0, completion.find('"'));
}

KvRetrievalExample RandomKvRetrievalExample(int min_records, int max_records, int queries, uint64_t seed) {
  std::mt19937_64 rng(seed);
  const int records = min_records + static_cast<int>(Below(rng, max_records - min_records + 1));
  // The example's seed is drawn before the gold record: the order in which GCC evaluated the
  // arguments of the single call this replaced, so the committed tokenizer's corpus and the
  // default router's data stay the same bytes (and now no longer depend on the compiler).
  const uint64_t example_seed = rng();
  const int gold = static_cast<int>(Below(rng, records));
  return MakeKvRetrievalExample(records, gold, queries, example_seed);
}

std::string KvRetrievalCorpus(int examples, int min_records, int max_records, uint64_t seed) {
  std::string corpus;
  for (int i = 0; i < examples; ++i) {
    auto ex = RandomKvRetrievalExample(min_records, max_records, 2, MixSeed(seed, i));
    corpus += ex.prompt;
    for (size_t q = 0; q < ex.answers.size(); ++q)
      corpus += ex.answers[q] + (q < ex.between.size() ? ex.between[q] : "\n");
  }
  return corpus;
}

}  // namespace stave
