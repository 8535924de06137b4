// staved --config: ParseConfigText (YAML or JSON) on arbitrary text. yaml-cpp throws on bad input
// and on conversions; everything must come back as a Status (validation against the model
// follows in ConfigStore::Replace, which needs a model).
#include <cstdint>
#include <string>

#include "server/config_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  (void)stave::server::ParseConfigText(text, "/etc/stave");
  return 0;
}
