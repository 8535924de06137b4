// staved --log-json: one JSON object per log line for log collectors: {"time", "level",
// "message"} and then the line's structured fields (log_fields.h) as top-level keys. A spdlog
// formatter, so every spdlog call site gets it without change.
#pragma once

#include <memory>

#include <spdlog/formatter.h>

namespace stave::server {

class JsonLogFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override;
  std::unique_ptr<spdlog::formatter> clone() const override;
};

}  // namespace stave::server
