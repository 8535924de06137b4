// Early-return helpers for absl::Status / absl::StatusOr (Abseil does not ship public ones).
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define STAVE_CONCAT_INNER(a, b) a##b
#define STAVE_CONCAT(a, b) STAVE_CONCAT_INNER(a, b)

#define RETURN_IF_ERROR(expr)                 \
  do {                                        \
    absl::Status stave_status_ = (expr);      \
    if (!stave_status_.ok()) return stave_status_; \
  } while (0)

#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL(STAVE_CONCAT(stave_statusor_, __LINE__), lhs, expr)
#define ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                          \
  if (!tmp.ok()) return tmp.status();         \
  lhs = std::move(tmp).value()
