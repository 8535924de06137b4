#include "server/request_record.h"

#include <cmath>

#include <spdlog/spdlog.h>

#include "absl/strings/str_join.h"
#include "server/log_fields.h"

namespace stave::server {

double SecondsBetween(RequestRecord::Clock::time_point from, RequestRecord::Clock::time_point to) {
  return std::chrono::duration<double>(to - from).count();
}

namespace {

// Microseconds are plenty for a log line and keep it short ("0.012345", not 17 digits).
double Rounded(double seconds) { return std::round(seconds * 1e6) / 1e6; }

}  // namespace

void RequestRecord::Finish(Metrics& metrics, absl::StatusCode code, int http_status) {
  if (finished_) return;
  finished_ = true;
  const double seconds = SecondsBetween(arrived);
  for (auto& reason : finish_reasons)
    if (reason.empty()) reason = "cancelled";
  const std::string code_name = absl::StatusCodeToString(code);
  metrics.RequestFinished(transport, method, code_name, seconds);
  if (prompt_tokens.has_value()) metrics.PromptTokens(*prompt_tokens);
  for (const auto& reason : finish_reasons) metrics.GenerationFinished(transport, reason);

  LogFields fields;
  fields.Add("request_id", request_id).Add("method", method).Add("transport", transport).Add("peer", peer);
  fields.Add("code", code_name);
  if (http_status != 0) fields.Add("http_status", http_status);
  if (prompt_tokens.has_value()) fields.Add("prompt_tokens", *prompt_tokens).Add("generated_tokens", generated_tokens);
  if (!finish_reasons.empty()) fields.Add("finish_reason", absl::StrJoin(finish_reasons, ","));
  if (config_version.has_value()) fields.Add("config_version", *config_version);
  if (queue_seconds.has_value()) fields.Add("queue_seconds", Rounded(*queue_seconds));
  if (ttft_seconds.has_value()) fields.Add("ttft_seconds", Rounded(*ttft_seconds));
  fields.Add("duration_seconds", Rounded(seconds));
  if (!error.empty()) fields.Add("error", error);
  const bool probe = transport == "http" && (method == "/health" || method == "/v1/models");
  spdlog::log(probe ? spdlog::level::debug : spdlog::level::info, "{}", fields.Attach("request finished"));
}

}  // namespace stave::server
