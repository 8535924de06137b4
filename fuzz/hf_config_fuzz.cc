// ParseHfConfig (what LoadHfConfig runs on config.json's text) on arbitrary bytes: a Status or a
// validated config, never an exception (nlohmann's json::value throws on a mistyped field).
#include <cstdint>
#include "absl/strings/string_view.h"

#include "core/hf_config.h"
#include "fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto config = stave::ParseHfConfig(absl::string_view(reinterpret_cast<const char*>(data), size), "config.json");
  if (!config.ok()) return 0;
  FUZZ_CHECK(stave::ValidateConfig(config->config, "config.json").ok());
  if (config->llama3.has_value()) {
    const auto& [factor, low, high, original] = *config->llama3;
    FUZZ_CHECK(factor >= 1.0 && low > 0 && high > low && original > 0);
  }
  return 0;
}
