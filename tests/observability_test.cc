// Request ids and structured log fields (server/request_id.h, server/log_fields.h) and the two
// formatters that render the fields (text: key=value after the message; --log-json: top-level
// keys), through spdlog as staved uses them.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <sstream>
#include <set>
#include <string>

#include <nlohmann/json.hpp>
#include <spdlog/logger.h>
#include <spdlog/sinks/ostream_sink.h>

#include "server/json_log_formatter.h"
#include "server/log_fields.h"
#include "server/request_id.h"
#include "server/text_log_formatter.h"

namespace stave::server {
namespace {

using ::testing::HasSubstr;
using ::testing::MatchesRegex;

TEST(RequestId, AClientIdIsKeptWhenShortAndPrintable) {
  EXPECT_EQ(RequestIdFor("my-req.42_A"), "my-req.42_A");
  const std::string longest(kMaxRequestIdLength, 'a');
  EXPECT_EQ(RequestIdFor(longest), longest);
}

TEST(RequestId, AnythingElseGetsAFreshId) {
  const std::string too_long(kMaxRequestIdLength + 1, 'a');
  for (const std::string bad : {std::string(), too_long, std::string("two words"), std::string("a\"b"),
                                std::string("line\nbreak"), std::string("caf\xc3\xa9"), std::string("a=b"),
                                std::string("x\x1f{}")}) {
    EXPECT_FALSE(IsValidRequestId(bad)) << bad;
    const std::string id = RequestIdFor(bad);
    EXPECT_NE(id, bad);
    EXPECT_THAT(id, MatchesRegex("[0-9a-f]{16}")) << "for " << bad;
  }
}

TEST(RequestId, FreshIdsDiffer) {
  std::set<std::string> ids;
  for (int i = 0; i < 1000; ++i) ids.insert(NewRequestId());
  EXPECT_EQ(ids.size(), 1000u);  // 64 random bits: a repeat in 1000 has odds of about 3e-14
}

TEST(LogFields, AttachAndSplitRoundTrip) {
  const std::string line = LogFields().Add("request_id", "r1").Add("prompt_tokens", 12).Attach("request finished");
  const LogPayload payload = SplitLogPayload(line);
  EXPECT_EQ(payload.message, "request finished");
  EXPECT_EQ(payload.fields_json, R"({"request_id":"r1","prompt_tokens":12})");
  // No fields: the message as it is, nothing to split.
  EXPECT_EQ(LogFields().Attach("plain"), "plain");
  EXPECT_EQ(SplitLogPayload("plain").message, "plain");
  EXPECT_TRUE(SplitLogPayload("plain").fields_json.empty());
}

TEST(LogFields, TextIsLogfmtInOrderQuotingWhereNeeded) {
  const std::string line = LogFields()
                               .Add("request_id", "r1")
                               .Add("peer", "ipv4:127.0.0.1:5000")
                               .Add("generated_tokens", uint32_t{7})
                               .Add("queue_seconds", 0.25)
                               .Add("ok", true)
                               .Add("error", "max_tokens: must be >= 1")
                               .Add("empty", "")
                               .Add("quote", "say \"hi\"")
                               .Attach("m");
  EXPECT_EQ(FieldsAsText(SplitLogPayload(line).fields_json),
            R"(request_id=r1 peer=ipv4:127.0.0.1:5000 generated_tokens=7 queue_seconds=0.25 ok=true )"
            R"(error="max_tokens: must be >= 1" empty="" quote="say \"hi\"")");
  EXPECT_EQ(FieldsAsText("not json"), "");
}

// A logger writing into a string with the given formatter, as staved's stderr logger does.
struct CapturedLogger {
  std::ostringstream out;
  std::shared_ptr<spdlog::logger> logger;
  explicit CapturedLogger(std::unique_ptr<spdlog::formatter> formatter) {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_st>(out);
    logger = std::make_shared<spdlog::logger>("test", sink);
    logger->set_formatter(std::move(formatter));
  }
};

TEST(LogFormatters, JsonPutsFieldsAtTheTopLevel) {
  CapturedLogger log(std::make_unique<JsonLogFormatter>());
  log.logger->info("{}", LogFields()
                             .Add("request_id", "abc")
                             .Add("prompt_tokens", 5)
                             .Add("ttft_seconds", 0.004)
                             .Add("message", "must not replace the message")
                             .Attach("request finished"));
  const std::string text = log.out.str();
  const auto line = nlohmann::json::parse(text);
  EXPECT_EQ(line["message"], "request finished");
  EXPECT_EQ(line["level"], "info");
  EXPECT_TRUE(line["time"].is_string());
  EXPECT_EQ(line["request_id"], "abc");
  EXPECT_EQ(line["prompt_tokens"], 5);
  EXPECT_DOUBLE_EQ(line["ttft_seconds"].get<double>(), 0.004);
  EXPECT_EQ(line.size(), 6u);
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1);  // one line, ending in its newline
  EXPECT_EQ(text.back(), '\n');
}

TEST(LogFormatters, JsonWithoutFieldsAndWithBadBytesStillParses) {
  CapturedLogger log(std::make_unique<JsonLogFormatter>());
  log.logger->warn("piece \xff{} end", "x");
  const auto line = nlohmann::json::parse(log.out.str());
  EXPECT_EQ(line.size(), 3u);
  EXPECT_THAT(line["message"].get<std::string>(), HasSubstr("end"));
}

TEST(LogFormatters, TextPutsFieldsAfterTheMessage) {
  CapturedLogger log(std::make_unique<TextLogFormatter>());
  log.logger->info("{}", LogFields().Add("request_id", "abc").Add("code", "OK").Attach("request finished"));
  EXPECT_THAT(log.out.str(), MatchesRegex(R"(\[[-0-9 :.]+\] \[test\] \[info\] request finished request_id=abc code=OK\s*)"));
  std::ostringstream().swap(log.out);
  log.logger->info("no fields here");
  EXPECT_THAT(log.out.str(), MatchesRegex(R"(\[[-0-9 :.]+\] \[test\] \[info\] no fields here\s*)"));
}

}  // namespace
}  // namespace stave::server
