// MoICE routers by name: the only way a remote client picks a router file. A name stands for
// NAME.safetensors in one directory the operator chose (staved --router-dir, default the model's
// directory), so a request can never make the server open a path of its choosing, and answers
// and errors name routers, never server paths.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace stave::server {

class RouterDirectory {
 public:
  // `dir` empty: no routers can be named (only untrained ones are available).
  explicit RouterDirectory(std::string dir);

  // "" -> "" (untrained routers); NAME -> DIR/NAME.safetensors when it names a regular file there.
  // INVALID_ARGUMENT naming the field otherwise (the message lists the available names).
  absl::StatusOr<std::string> PathOf(const std::string& name) const;
  // The name a client sees for a router file: its name without .safetensors ("" stays "").
  static std::string NameOf(const std::string& path);
  // Names of the router files present now, sorted.
  std::vector<std::string> List() const;
  // `message` with this directory's path removed, so errors about router files never tell a
  // client where they live.
  std::string Redact(const std::string& message) const;

 private:
  std::string dir_;
};

}  // namespace stave::server
