#include "server/log_fields.h"

#include <nlohmann/json.hpp>

namespace stave::server {

using nlohmann::ordered_json;

LogFields& LogFields::Add(std::string_view key, std::string_view value) {
  fields_.emplace_back(std::string(key), std::string(value));
  return *this;
}
LogFields& LogFields::Add(std::string_view key, int64_t value) {
  fields_.emplace_back(std::string(key), value);
  return *this;
}
LogFields& LogFields::Add(std::string_view key, uint64_t value) {
  fields_.emplace_back(std::string(key), value);
  return *this;
}
LogFields& LogFields::Add(std::string_view key, double value) {
  fields_.emplace_back(std::string(key), value);
  return *this;
}
LogFields& LogFields::Add(std::string_view key, bool value) {
  fields_.emplace_back(std::string(key), value);
  return *this;
}

std::string LogFields::Attach(std::string_view message) const {
  if (fields_.empty()) return std::string(message);
  ordered_json object = ordered_json::object();
  for (const auto& [key, value] : fields_) std::visit([&, &k = key](const auto& v) { object[k] = v; }, value);
  std::string out(message);
  out += kLogFieldsSeparator;
  // A peer address or a client's text may hold invalid UTF-8: replaced, never an exception.
  out += object.dump(-1, ' ', false, ordered_json::error_handler_t::replace);
  return out;
}

LogPayload SplitLogPayload(std::string_view payload) {
  const size_t at = payload.rfind(kLogFieldsSeparator);
  if (at == std::string_view::npos || at + 1 >= payload.size() || payload[at + 1] != '{') return {payload, {}};
  return {payload.substr(0, at), payload.substr(at + 1)};
}

namespace {

bool NeedsQuotes(const std::string& s) {
  if (s.empty()) return true;
  for (unsigned char c : s)
    if (c <= ' ' || c == '"' || c == '=' || c == 0x7f) return true;
  return false;
}

}  // namespace

std::string FieldsAsText(std::string_view fields_json) {
  const ordered_json object = ordered_json::parse(fields_json, nullptr, /*allow_exceptions=*/false);
  if (!object.is_object()) return "";
  std::string out;
  for (const auto& [key, value] : object.items()) {
    if (!out.empty()) out += ' ';
    out += key;
    out += '=';
    if (value.is_string() && !NeedsQuotes(value.get_ref<const std::string&>()))
      out += value.get_ref<const std::string&>();
    else
      out += value.dump(-1, ' ', false, ordered_json::error_handler_t::replace);  // quoted, escaped
  }
  return out;
}

}  // namespace stave::server
