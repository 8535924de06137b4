// Where the reference data lives (../shared next to the source tree, or $STAVE_SHARED_DIR), and
// the skip rule when it is absent. No project headers: the light test binaries include it too.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <string>

#include <gtest/gtest.h>

namespace stave::testing {

// ../shared next to the source tree, or $STAVE_SHARED_DIR.
inline std::string SharedDir() {
  if (const char* env = std::getenv("STAVE_SHARED_DIR")) return env;
  return STAVE_DEFAULT_SHARED_DIR;
}

inline std::string SharedPath(const std::string& relative) { return SharedDir() + "/" + relative; }

// Skips the current test with a message saying what is missing and how to provide it.
#define SKIP_UNLESS_SHARED(relative)                                                         \
  do {                                                                                       \
    if (!std::filesystem::exists(::stave::testing::SharedPath(relative)))                    \
      GTEST_SKIP() << "reference data " << ::stave::testing::SharedPath(relative)           \
                   << " not found; set STAVE_SHARED_DIR to the shared/ folder to run this test"; \
  } while (0)

}  // namespace stave::testing
