// Structured fields of a log line (request_id=..., prompt_tokens=...), written once and rendered by
// the log formatter: as `key=value` pairs after the message in text logs, as top-level keys of
// the line's object with --log-json. spdlog hands formatters only the message text, so the fields
// travel in it: Attach() appends them as a JSON object after an ASCII unit separator (0x1F, which
// no message of ours contains), and SplitLogPayload() takes them off again in the formatter.
//
//   spdlog::info("{}", LogFields().Add("request_id", id).Add("prompt_tokens", 12).Attach("finished"));
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace stave::server {

class LogFields {
 public:
  using Value = std::variant<std::string, int64_t, uint64_t, double, bool>;

  LogFields& Add(std::string_view key, std::string_view value);
  LogFields& Add(std::string_view key, const char* value) { return Add(key, std::string_view(value)); }
  LogFields& Add(std::string_view key, int64_t value);
  LogFields& Add(std::string_view key, int value) { return Add(key, static_cast<int64_t>(value)); }
  LogFields& Add(std::string_view key, uint64_t value);
  LogFields& Add(std::string_view key, uint32_t value) { return Add(key, static_cast<uint64_t>(value)); }
  LogFields& Add(std::string_view key, double value);
  LogFields& Add(std::string_view key, bool value);

  bool empty() const { return fields_.empty(); }
  // The message with the fields attached (the message alone when there are none).
  std::string Attach(std::string_view message) const;

 private:
  std::vector<std::pair<std::string, Value>> fields_;
};

inline constexpr char kLogFieldsSeparator = '\x1f';

// A log message split into its text and its fields (a JSON object's text, empty when none).
struct LogPayload {
  std::string_view message;
  std::string_view fields_json;
};
LogPayload SplitLogPayload(std::string_view payload);

// Fields as logfmt, `key=value key="two words"`, in their order: strings are quoted (with JSON
// escapes) when empty or holding a space, quote, '=' or a control character. "" when
// `fields_json` is not a JSON object.
std::string FieldsAsText(std::string_view fields_json);

}  // namespace stave::server
