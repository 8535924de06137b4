#include "server/config_service.h"

#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/base_search.h"
#include "proto/position_proto.h"
#include "server/inference_service.h"
#include "server/log_fields.h"

namespace stave::server {

absl::StatusOr<ConfigUpdate> FromProto(const stave::v1::UpdateConfigRequest& r, const RouterDirectory& routers) {
  ConfigUpdate u;
  if (r.has_mode()) {
    if (r.mode() == stave::v1::POSITION_MODE_UNSPECIFIED)
      return absl::InvalidArgumentError("mode: POSITION_MODE_UNSPECIFIED is not a mode to set");
    auto mode = stave::FromProto(r.mode());
    if (!mode.ok()) return mode.status();
    u.mode = *mode;
  }
  if (r.bases_size() > 0) u.bases = std::vector<double>(r.bases().begin(), r.bases().end());
  u.bucket_count = static_cast<int>(std::min<uint32_t>(r.bucket_count(), 1u << 20));
  if (r.has_fusion()) {
    auto fusion = stave::FromProto(r.fusion());
    if (!fusion.ok()) return fusion.status();
    u.fusion = *fusion;
  }
  if (r.expert_bases_size() > 0)
    u.expert_bases = std::vector<double>(r.expert_bases().begin(), r.expert_bases().end());
  if (r.has_top_k()) u.top_k = static_cast<int>(std::min<uint32_t>(r.top_k(), 1u << 20));
  if (r.has_router_path())
    return absl::InvalidArgumentError(
        "router_path: staved no longer opens files named by clients; name a router with `router` "
        "(GetModelInfo lists them)");
  if (r.has_router()) {
    auto path = routers.PathOf(r.router());
    if (!path.ok()) return path.status();
    u.router_path = *path;
  }
  u.expected_version = r.expected_version();
  return u;
}

void ConfigService::Describe(const ConfigSnapshot& snapshot, stave::v1::PositionConfig* out) const {
  *out = ToProto(snapshot.position);
  out->set_router(RouterDirectory::NameOf(snapshot.position.router_path));  // never the path
  out->set_version(snapshot.version);
  out->set_config_file(state_.config.config_file());
  out->set_config_file_error(state_.config.config_file_error());
}

grpc::ServerUnaryReactor* ConfigService::GetConfig(grpc::CallbackServerContext* context,
                                                   const stave::v1::GetConfigRequest*,
                                                   stave::v1::PositionConfig* response) {
  RequestRecord record = StartGrpcRecord(context, "GetConfig");
  Describe(*state_.config.Current(), response);
  auto* reactor = context->DefaultReactor();
  FinishUnary(reactor, state_.metrics, record, absl::OkStatus());
  return reactor;
}

grpc::ServerUnaryReactor* ConfigService::UpdateConfig(grpc::CallbackServerContext* context,
                                                      const stave::v1::UpdateConfigRequest* request,
                                                      stave::v1::PositionConfig* response) {
  auto* reactor = context->DefaultReactor();
  RequestRecord record = StartGrpcRecord(context, "UpdateConfig");
  absl::Status status = auth_.Check(*context);
  if (status.ok()) {
    auto update = FromProto(*request, state_.routers);
    // The base search (bucket_count) runs with the model's default range (a few dozen
    // candidates, milliseconds): fine on a callback thread.
    auto applied = update.ok() ? state_.config.Update(*update) : update.status();
    status = applied.ok() ? absl::OkStatus()
                          : absl::Status(applied.status().code(),
                                         state_.routers.Redact(std::string(applied.status().message())));
    if (status.ok()) {
      Describe(**applied, response);
      record.config_version = (*applied)->version;
      // The request id as a field: the change can be traced to the client's own logs.
      spdlog::info("{}", LogFields()
                             .Add("request_id", record.request_id)
                             .Attach(fmt::format("config version {} from {}: mode {}, bases [{}], expert bases [{}], "
                                                 "top_k {}",
                                                 (*applied)->version, context->peer(),
                                                 std::string(PositionModeName((*applied)->position.mode)),
                                                 absl::StrJoin((*applied)->position.bases, ","),
                                                 absl::StrJoin((*applied)->position.expert_bases, ","),
                                                 (*applied)->position.top_k)));
    }
  }
  if (!status.ok())
    spdlog::warn("{}", LogFields()
                           .Add("request_id", record.request_id)
                           .Attach(fmt::format("UpdateConfig from {} refused: {}", context->peer(), status.ToString())));
  FinishUnary(reactor, state_.metrics, record, status);
  return reactor;
}

grpc::ServerUnaryReactor* ConfigService::SearchBases(grpc::CallbackServerContext* context,
                                                     const stave::v1::SearchBasesRequest* request,
                                                     stave::v1::SearchBasesResponse* response) {
  auto* reactor = context->DefaultReactor();
  auto record = std::make_shared<RequestRecord>(StartGrpcRecord(context, "SearchBases"));
  if (request->count() < 1 || request->count() > static_cast<uint32_t>(kMaxBuckets)) {
    FinishUnary(reactor, state_.metrics, *record,
                absl::InvalidArgumentError(absl::StrCat("count: must be in 1..", kMaxBuckets, ", got ", request->count())));
    return reactor;
  }
  BaseSearchOptions options = SearchOptionsFor(state_.model, static_cast<int>(request->count()));
  options.min_base = request->min_base();
  options.max_base = request->max_base();
  options.step = request->step();
  // Checked here, so that a bad range is answered at once and the worker only runs bounded work.
  auto resolved = ResolveBaseSearchOptions(options);
  if (!resolved.ok()) {
    FinishUnary(reactor, state_.metrics, *record, resolved.status());
    return reactor;
  }
  Metrics& metrics = state_.metrics;
  auto status = state_.side_worker.TrySubmit([reactor, response, &metrics, record, o = *resolved] {
    auto result = stave::SearchBases(o);
    if (result.ok()) {
      for (double b : result->bases) response->add_bases(b);
      response->set_shortest_stave(result->stave.value);
      response->set_start_base_shortest_stave(result->start_stave.value);
    }
    FinishUnary(reactor, metrics, *record, result.status());
  });
  if (!status.ok()) FinishUnary(reactor, state_.metrics, *record, status);
  return reactor;
}

}  // namespace stave::server
