// Lost-in-the-middle key-value retrieval data (Liu et al. 2023, "Lost in the Middle", the
// key-value task): an instruction, a JSON-like object of records with random keys and values,
// then a query key; the model must copy the queried record's value. The default model is trained
// on it and `stave eval kv-retrieval` measures it. Plain std, deterministic given a seed.
//
// Keys and values are lowercase consonant-vowel syllables ("mo", "re"; 70 of them, so at most 70
// records). The tokenizer gets each syllable and each key with its separator (`"mo": "`) as a
// fixed piece (KvTokenizerSymbols): a record is then key piece, value piece, separator, and the
// prompt ends with the query's key piece, so finding the value is a one-step lookup (the token
// after the earlier copy of the last token: an induction head) rather than matching a sequence.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace stave {

struct KvRecord {
  std::string key, value;
};

struct KvRetrievalExample {
  std::vector<KvRecord> records;   // distinct keys
  std::vector<int> queries;        // indices into records, asked in this order
  std::string prompt;              // ends right where the first query's value starts
  std::vector<std::string> answers;  // per query, the text the model must produce (value + '"')
  // Text between one answer and the next query's value (multi-query training examples).
  std::vector<std::string> between;
};

// Distinct keys available: records per example at most.
inline constexpr int kKvMaxRecords = 70;

inline constexpr char kKvInstruction[] =
    "Find the value of the query key.\n";

// The ".. records .. then query" example for `records` records whose first query asks the record
// at `gold` (0-based); `queries` - 1 further distinct records are asked after it (training only:
// more supervised tokens per sequence). Deterministic in `seed`. `records` is clamped to
// 1..kKvMaxRecords (callers validate user input against it first).
KvRetrievalExample MakeKvRetrievalExample(int records, int gold, int queries, uint64_t seed);

// An example with a record count uniform in min_records..max_records and a gold record uniform
// among them, all drawn from `seed`: the lines of KvRetrievalCorpus, and the prompt/completion
// pairs `stave train --write-corpus F.jsonl` writes.
KvRetrievalExample RandomKvRetrievalExample(int min_records, int max_records, int queries, uint64_t seed);

// The copying task that teaches the model to match and copy from its context (the mechanism
// retrieval needs: induction heads) with a dense signal: the records, then the instruction to
// repeat them; the answer is the records again. Deterministic in `seed`.
struct KvCopyExample {
  std::string prompt, answer;
};
inline constexpr char kKvCopyInstruction[] = "Repeat the records.\n";
KvCopyExample MakeKvCopyExample(int records, uint64_t seed);

// A reverse query (training only): given a record's value, the model names its key:
// `\nKey of mo: ` then the answer `"ka": "` (the key piece). Answering it means attending to the
// value's occurrence in the object (the same token) and reading what preceded it: meant to
// reward the "previous token" attention forward retrieval is built on with a more direct
// gradient (not seen to help within 3000 steps, run G7 in docs/default-model.md).
// Only meaningful for a record whose value is unique in its example.
struct KvQueryText {
  std::string between, answer;
};
inline constexpr char kKvReverseQuery[] = "Key of ";
KvQueryText KvReverseQuery(const KvRecord& record);

// The value a completion gives: its text up to the closing quote (or all of it).
std::string ExtractKvValue(const std::string& completion);

// The pieces the tokenizer must keep whole (SentencePiece user-defined symbols): every key
// followed by its separator, `"mo":\u2581"` (SentencePiece writes spaces as U+2581), every
// syllable on its own (a value), and the task's fixed text (instructions, `{`, `", `, `"}`,
// `Query: `). With them a record is three tokens, a 24-record prompt about 100, and retrieval
// needs no multi-token key matching (which kept run F at chance for 7000 steps). They did not by
// themselves get 0.9M-parameter models past chance on 2 records (docs/default-model.md).
std::vector<std::string> KvTokenizerSymbols();

// A tokenizer-training corpus: `examples` random examples, one text line per line of theirs.
std::string KvRetrievalCorpus(int examples, int min_records, int max_records, uint64_t seed);

// A 64-bit mix of the arguments (splitmix64): independent, reproducible seeds per example.
uint64_t MixSeed(uint64_t a, uint64_t b, uint64_t c = 0, uint64_t d = 0);

}  // namespace stave
