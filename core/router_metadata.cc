#include "core/router_metadata.h"

#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/position_config.h"

namespace stave {

absl::StatusOr<RouterMetadata> ParseRouterMetadata(const std::map<std::string, std::string>& meta,
                                                   const std::string& path) {
  auto field = [&](const char* key) -> absl::StatusOr<std::string> {
    auto it = meta.find(key);
    if (it == meta.end())
      return absl::InvalidArgumentError(absl::StrCat(path, ": not a router checkpoint (metadata '", key, "' missing)"));
    return it->second;
  };
  RouterMetadata r;
  auto bases = field("expert_bases");
  if (!bases.ok()) return bases.status();
  auto parsed = ParseBaseList(*bases, "expert_bases");
  if (!parsed.ok()) return parsed.status();
  r.expert_bases = *parsed;
  for (auto [key, out] : {std::pair<const char*, int*>{"top_k", &r.top_k}, {"n_layers", &r.n_layers},
                          {"head_dim", &r.head_dim}}) {
    auto v = field(key);
    if (!v.ok()) return v.status();
    if (!absl::SimpleAtoi(*v, out)) return absl::InvalidArgumentError(absl::StrCat(path, ": metadata '", key, "' is not an integer"));
  }
  return r;
}

}  // namespace stave
