// Debian's abseil has its own absl::string_view (ABSL_OPTION_USE_STD_STRING_VIEW is 0), which
// absl::StrCat and the hash maps' heterogeneous lookup take; std::string_view converts through this.
#pragma once

#include <string_view>

#include "absl/strings/string_view.h"

namespace stave::text {

inline absl::string_view Sv(std::string_view s) { return absl::string_view(s.data(), s.size()); }

}  // namespace stave::text
