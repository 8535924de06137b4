// A MoICE router checkpoint as MoiceRouters::Load reads it before any tensor: the safetensors
// header, then the router metadata (expert_bases, top_k, n_layers, head_dim).
#include <cstdint>

#include "core/router_metadata.h"
#include "core/safetensors_header.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto header = stave::ParseSafetensorsHeader(data, size, "router.safetensors");
  if (!header.ok()) return 0;
  // A Status or the four fields; the checks against the model follow in Load (with LibTorch).
  (void)stave::ParseRouterMetadata(header->metadata, "router.safetensors");
  return 0;
}
