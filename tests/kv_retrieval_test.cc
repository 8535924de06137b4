// Key-value retrieval data and its evaluation: generator determinism and structure, Wilson
// intervals, and the evaluation's bookkeeping on fake answerers whose accuracy is known.
#include <map>
#include <set>

#include "absl/strings/str_split.h"
#include "lab/kv_retrieval.h"
#include "lab/kv_retrieval_eval.h"
#include "tests/test_support.h"

namespace stave {
namespace {

TEST(KvRetrievalData, SameSeedSameExampleOtherSeedOther) {
  auto a = MakeKvRetrievalExample(20, 7, 3, 42);
  auto b = MakeKvRetrievalExample(20, 7, 3, 42);
  auto c = MakeKvRetrievalExample(20, 7, 3, 43);
  EXPECT_EQ(a.prompt, b.prompt);
  EXPECT_EQ(a.answers, b.answers);
  EXPECT_EQ(a.between, b.between);
  EXPECT_NE(a.prompt, c.prompt);
  EXPECT_EQ(KvRetrievalCorpus(50, 2, 9, 7), KvRetrievalCorpus(50, 2, 9, 7));
  EXPECT_NE(KvRetrievalCorpus(50, 2, 9, 7), KvRetrievalCorpus(50, 2, 9, 8));
}

TEST(KvRetrievalData, PromptAsksTheGoldRecordWhoseKeyIsUnique) {
  for (int gold : {0, 9, 19}) {
    auto ex = MakeKvRetrievalExample(20, gold, 4, 1000 + gold);
    ASSERT_EQ(ex.records.size(), 20u);
    std::set<std::string> keys;
    for (const auto& r : ex.records) keys.insert(r.key);
    EXPECT_EQ(keys.size(), 20u) << "keys must be distinct";
    const auto& g = ex.records[gold];
    EXPECT_EQ(ex.queries[0], gold);
    EXPECT_EQ(ex.answers[0], g.value + "\"");
    EXPECT_TRUE(ex.prompt.rfind(kKvInstruction, 0) == 0);
    const std::string record = "\"" + g.key + "\": \"" + g.value + "\"";
    const std::string query = "\nQuery: \"" + g.key + "\": \"";
    EXPECT_NE(ex.prompt.find(record), std::string::npos);
    EXPECT_EQ(ex.prompt.substr(ex.prompt.size() - query.size()), query);
    // The gold record is the gold-th record of the object.
    const auto object = ex.prompt.substr(0, ex.prompt.find('}'));
    std::vector<std::string> parts = absl::StrSplit(object, ", ");
    EXPECT_NE(parts[gold].find(record), std::string::npos);
    EXPECT_EQ(ex.queries.size(), 4u);
    EXPECT_EQ(ex.between.size(), 3u);
    EXPECT_EQ(std::set<int>(ex.queries.begin(), ex.queries.end()).size(), 4u);
  }
}

TEST(KvRetrievalData, AsManyRecordsAsThereAreKeys) {
  auto ex = MakeKvRetrievalExample(kKvMaxRecords, kKvMaxRecords - 1, 1, 5);
  EXPECT_EQ(ex.records.size(), static_cast<size_t>(kKvMaxRecords));
  EXPECT_EQ(MakeKvRetrievalExample(kKvMaxRecords + 5, 0, 1, 5).records.size(), static_cast<size_t>(kKvMaxRecords));
}

// The tokenizer's fixed pieces cover every key (with its separator, spaces as U+2581) and every
// value of generated examples, so each is one token.
TEST(KvRetrievalData, TokenizerSymbolsCoverEveryKeyAndValue) {
  const auto symbols = KvTokenizerSymbols();
  const std::set<std::string> pieces(symbols.begin(), symbols.end());
  EXPECT_EQ(pieces.size(), symbols.size());
  EXPECT_EQ(symbols.size(), 2u * kKvMaxRecords + 8);
  EXPECT_TRUE(pieces.count("Find\u2581the\u2581value\u2581of\u2581the\u2581query\u2581key."));
  EXPECT_TRUE(pieces.count("\",\u2581"));
  EXPECT_TRUE(pieces.count("Query:\u2581"));
  for (uint64_t seed = 0; seed < 20; ++seed) {
    auto ex = MakeKvRetrievalExample(kKvMaxRecords, 0, 1, seed);
    for (const auto& r : ex.records) {
      EXPECT_TRUE(pieces.count("\"" + r.key + "\":\u2581\"")) << r.key;
      EXPECT_TRUE(pieces.count(r.value)) << r.value;
    }
  }
}

TEST(KvRetrievalData, ReverseQueryNamesTheKeyOfAValue) {
  const auto q = KvReverseQuery({"ka", "mo"});
  EXPECT_EQ(q.between, "\nKey of mo: ");
  EXPECT_EQ(q.answer, "\"ka\": \"");
}

TEST(KvRetrievalData, ExtractValueStopsAtTheQuote) {
  EXPECT_EQ(ExtractKvValue("doka\"\nQuery"), "doka");
  EXPECT_EQ(ExtractKvValue("doka"), "doka");
  EXPECT_EQ(ExtractKvValue(""), "");
}

TEST(KvRetrievalEval, WilsonIntervalMatchesHandComputedValues) {
  auto half = WilsonInterval(5, 10);
  EXPECT_NEAR(half.low, 0.2366, 1e-4);
  EXPECT_NEAR(half.high, 0.7634, 1e-4);
  auto none = WilsonInterval(0, 10);
  EXPECT_DOUBLE_EQ(none.low, 0);
  EXPECT_NEAR(none.high, 0.2775, 1e-4);
  auto all = WilsonInterval(10, 10);
  EXPECT_NEAR(all.low, 0.7225, 1e-4);
  EXPECT_DOUBLE_EQ(all.high, 1);
  auto wide = WilsonInterval(0, 0);
  EXPECT_EQ(wide.low, 0);
  EXPECT_EQ(wide.high, 1);
}

TEST(KvRetrievalEval, ParsePositions) {
  EXPECT_TRUE(ParsePositions("all")->empty());
  EXPECT_EQ(*ParsePositions("1,5,10"), (std::vector<int>{1, 5, 10}));
  EXPECT_FALSE(ParsePositions("0").ok());
  EXPECT_FALSE(ParsePositions("x").ok());
  EXPECT_FALSE(ParsePositions("").ok());
}

// Reads a prompt as the model would have to: the queried key's value and its 1-based position.
std::pair<std::string, int> Lookup(const std::string& prompt) {
  const auto q = prompt.rfind("Query: \"") + 8;
  const std::string key = prompt.substr(q, prompt.find('"', q) - q);
  const auto object = prompt.substr(prompt.find('{') + 1, prompt.find('}') - prompt.find('{') - 1);
  int position = 0;
  for (absl::string_view record : absl::StrSplit(object, ", ")) {
    ++position;
    std::vector<std::string> kv = absl::StrSplit(record, "\": \"");
    if (kv[0].substr(1) == key) return {kv[1].substr(0, kv[1].size() - 1), position};
  }
  return {"", 0};
}

TEST(KvRetrievalEval, FakeAnswerersGiveTheirKnownAccuracies) {
  KvEvalOptions o;
  o.records = {4, 6};
  o.samples = 10;
  o.modes = {"oracle", "odd-only", "never"};
  std::map<std::string, std::vector<std::string>> prompts_seen;
  int calls = 0, last_done = 0, last_total = 0;
  auto cells = RunKvRetrievalEval(
      o,
      [&](const std::string& mode, const std::string& prompt) -> absl::StatusOr<KvAnswer> {
        ++calls;
        prompts_seen[mode].push_back(prompt);
        auto [value, position] = Lookup(prompt);
        if (mode == "never" || (mode == "odd-only" && position % 2 == 0)) return KvAnswer{"nope\"", 3};
        return KvAnswer{value + "\"", 3};
      },
      [&](int done, int total) {
        last_done = done;
        last_total = total;
      });
  ASSERT_TRUE(cells.ok()) << cells.status();
  EXPECT_EQ(calls, (4 + 6) * 3 * 10);
  EXPECT_EQ(last_done, calls);
  EXPECT_EQ(last_total, calls);
  // Every mode answered the same prompts.
  EXPECT_EQ(prompts_seen["oracle"], prompts_seen["odd-only"]);
  EXPECT_EQ(prompts_seen["oracle"], prompts_seen["never"]);

  int per_position = 0, summaries = 0;
  for (const auto& c : *cells) {
    if (c.position == 0) {
      ++summaries;
      EXPECT_EQ(c.total, c.records * 10);
      const double expected = c.mode == "oracle" ? 1.0 : c.mode == "never" ? 0.0 : 0.5;
      EXPECT_DOUBLE_EQ(c.accuracy, expected) << c.mode << " " << c.records;
      EXPECT_EQ(c.ci.low, WilsonInterval(c.correct, c.total).low);
      continue;
    }
    ++per_position;
    EXPECT_EQ(c.total, 10);
    EXPECT_DOUBLE_EQ(c.prompt_tokens, 3);
    const bool right = c.mode == "oracle" || (c.mode == "odd-only" && c.position % 2 == 1);
    EXPECT_EQ(c.correct, right ? 10 : 0) << c.mode << " records " << c.records << " position " << c.position;
    EXPECT_NEAR(c.ci.low, right ? 0.7225 : 0.0, 1e-4);
    EXPECT_NEAR(c.ci.high, right ? 1.0 : 0.2775, 1e-4);
  }
  EXPECT_EQ(per_position, (4 + 6) * 3);
  EXPECT_EQ(summaries, 2 * 3);
  const std::string csv = KvEvalCsv(*cells);
  EXPECT_EQ(csv.substr(0, csv.find('\n')), "mode,records,position,correct,total,accuracy,ci_low,ci_high,prompt_tokens");
  EXPECT_NE(csv.find("\"odd-only\",4,2,0,10,0.0000,0.0000,0.2775,3.0"), std::string::npos);
}

TEST(KvRetrievalEval, PositionListsAndErrors) {
  KvEvalOptions o;
  o.records = {3, 8};
  o.positions = {1, 5};  // 5 is beyond 3 records: only asked at 8
  o.samples = 2;
  o.modes = {"m"};
  int calls = 0;
  auto answer = [&](const std::string&, const std::string& prompt) -> absl::StatusOr<KvAnswer> {
    ++calls;
    return KvAnswer{Lookup(prompt).first, 0};
  };
  auto cells = RunKvRetrievalEval(o, answer);
  ASSERT_TRUE(cells.ok());
  EXPECT_EQ(calls, (1 + 2) * 2);

  o.positions = {9};
  EXPECT_EQ(RunKvRetrievalEval(o, answer).status().code(), absl::StatusCode::kInvalidArgument);
  o.positions = {};
  o.records = {0};
  EXPECT_EQ(RunKvRetrievalEval(o, answer).status().code(), absl::StatusCode::kInvalidArgument);
  o.records = {kKvMaxRecords + 1};  // more records than distinct keys
  EXPECT_EQ(RunKvRetrievalEval(o, answer).status().code(), absl::StatusCode::kInvalidArgument);
  o.records = {3};
  auto failing = [](const std::string&, const std::string&) -> absl::StatusOr<KvAnswer> {
    return absl::UnavailableError("server down");
  };
  EXPECT_EQ(RunKvRetrievalEval(o, failing).status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace stave
