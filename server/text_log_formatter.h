// staved's text logs: spdlog's usual pattern, with a line's structured fields (log_fields.h)
// written after the message as `key=value` pairs (logfmt), so that text and --log-json lines
// carry the same fields.
#pragma once

#include <memory>

#include <spdlog/formatter.h>

namespace stave::server {

class TextLogFormatter final : public spdlog::formatter {
 public:
  TextLogFormatter();
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override;
  std::unique_ptr<spdlog::formatter> clone() const override;

 private:
  std::unique_ptr<spdlog::formatter> pattern_;  // spdlog's default pattern
};

}  // namespace stave::server
