#include "server/text_log_formatter.h"

#include <string>

#include <spdlog/pattern_formatter.h>

#include "server/log_fields.h"

namespace stave::server {

TextLogFormatter::TextLogFormatter() : pattern_(std::make_unique<spdlog::pattern_formatter>()) {}

void TextLogFormatter::format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) {
  const LogPayload payload = SplitLogPayload(std::string_view(msg.payload.data(), msg.payload.size()));
  if (payload.fields_json.empty()) return pattern_->format(msg, dest);
  const std::string fields = FieldsAsText(payload.fields_json);
  if (fields.empty()) return pattern_->format(msg, dest);  // not our fields after all: as it came
  const std::string text = std::string(payload.message) + " " + fields;
  spdlog::details::log_msg with_fields = msg;
  with_fields.payload = spdlog::string_view_t(text.data(), text.size());
  pattern_->format(with_fields, dest);
}

std::unique_ptr<spdlog::formatter> TextLogFormatter::clone() const {
  return std::make_unique<TextLogFormatter>();
}

}  // namespace stave::server
