// The versioned position config of a running staved. Requests take a snapshot (a shared pointer
// to an immutable version) when they start and keep it to the end, so an update never changes a
// running request. Updates are validated against the model in full before anything changes.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/base_search.h"
#include "core/model.h"
#include "core/position_cache.h"
#include "core/position_config.h"
#include "core/position_rules.h"

namespace stave::server {

struct ConfigSnapshot {
  uint64_t version = 0;
  PositionConfig position;
};

// UpdateConfig's request and the --config file in core types (core/position_rules.h): unset
// fields keep their value. The rules (partial updates, defaults, validation against the model,
// the base search options) are core's: ApplyPositionUpdate, ValidateForModel, SearchOptionsFor.
using ConfigUpdate = PositionUpdate;

class ConfigStore {
 public:
  // Version 1 is `initial` (validated by the caller); validation loads through `cache` (may be
  // null).
  ConfigStore(const Model& model, PositionConfig initial, PositionCache* cache = nullptr);

  std::shared_ptr<const ConfigSnapshot> Current() const;

  // Applies `update` on top of the current config. FAILED_PRECONDITION on a version mismatch,
  // INVALID_ARGUMENT naming the field otherwise; nothing changes on error.
  absl::StatusOr<std::shared_ptr<const ConfigSnapshot>> Update(const ConfigUpdate& update);

  // Replaces the whole config (the --config file): `update` applied to the defaults (vanilla,
  // nothing set); same validation. expected_version is honoured too.
  absl::StatusOr<std::shared_ptr<const ConfigSnapshot>> Replace(const ConfigUpdate& update);

  // The watched --config file and why its last reading was rejected ("" = applied).
  void SetConfigFile(std::string path);
  void SetConfigFileError(std::string error);
  std::string config_file() const;
  std::string config_file_error() const;

  // Called (under the writer lock) after every accepted change.
  void OnChange(std::function<void(const ConfigSnapshot&)> listener);

 private:
  // `update` applied to `start`, validated and made current.
  absl::StatusOr<std::shared_ptr<const ConfigSnapshot>> ApplyLocked(PositionConfig start,
                                                                     const ConfigUpdate& update);

  const Model& model_;
  PositionCache* const cache_;
  std::mutex writer_;            // serialises updates (validation included)
  mutable std::mutex snapshot_;  // guards the pointer and the file status only: reads stay cheap
  std::shared_ptr<const ConfigSnapshot> current_;
  std::string config_file_, config_file_error_;
  std::function<void(const ConfigSnapshot&)> listener_;
};

}  // namespace stave::server
