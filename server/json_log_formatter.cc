#include "server/json_log_formatter.h"

#include <ctime>

#include <nlohmann/json.hpp>

#include "absl/time/time.h"
#include "server/log_fields.h"

namespace stave::server {

void JsonLogFormatter::format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) {
  const LogPayload payload = SplitLogPayload(std::string_view(msg.payload.data(), msg.payload.size()));
  // Ordered: time, level and message lead every line, a reader's eye finds them first.
  nlohmann::ordered_json line = {
      {"time", absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::FromChrono(msg.time), absl::UTCTimeZone())},
      {"level", std::string(spdlog::level::to_string_view(msg.level).data(),
                            spdlog::level::to_string_view(msg.level).size())},
      {"message", std::string(payload.message)},
  };
  if (!payload.fields_json.empty()) {
    auto fields = nlohmann::ordered_json::parse(payload.fields_json, nullptr, /*allow_exceptions=*/false);
    if (fields.is_object()) {
      // A field never replaces time, level or message: collectors key on them.
      for (auto& [key, value] : fields.items())
        if (!line.contains(key)) line[key] = value;
    } else {
      line["message"] = std::string(msg.payload.data(), msg.payload.size());
    }
  }
  // Invalid UTF-8 in a message (a client's prompt piece) must not make the line unparseable.
  const std::string text = line.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
  dest.append(text.data(), text.data() + text.size());
}

std::unique_ptr<spdlog::formatter> JsonLogFormatter::clone() const {
  return std::make_unique<JsonLogFormatter>();
}

}  // namespace stave::server
