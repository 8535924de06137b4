#include "client/remote_generate.h"

#include "client/channel.h"
#include "proto/position_proto.h"

namespace stave::cli {

absl::StatusOr<RemoteResult> RemoteGenerate(stave::v1::Inference::StubInterface& stub,
                                            absl::string_view server, const RemoteRequest& r,
                                            const OnStreamed& on_streamed) {
  stave::v1::GenerateRequest request;
  request.set_prompt(r.prompt);
  request.set_max_tokens(static_cast<uint32_t>(r.max_tokens));
  request.set_temperature(r.temperature);
  request.set_top_p(r.top_p);
  request.set_top_k(static_cast<uint32_t>(r.top_k));
  request.set_seed(r.seed);
  for (const auto& s : r.stop) request.add_stop(s);
  if (r.position) {
    *request.mutable_position() = ToProto(*r.position);
    // Remotely, --router names one of the server's routers (GetModelInfo lists them).
    request.mutable_position()->set_router(r.position->router_path);
  }
  grpc::ClientContext context;
  SetDeadline(context, r.timeout_s);
  auto reader = stub.Generate(&context, request);
  RemoteResult result;
  stave::v1::GenerateResponse msg;
  while (reader->Read(&msg)) {
    if (!msg.finish_reason().empty()) {
      result.finish_reason = msg.finish_reason();
      result.prompt_tokens = msg.usage().prompt_tokens();
      result.config_version = msg.config_version();
    }
    std::optional<int> token;
    if (msg.has_token_id()) token = static_cast<int>(msg.token_id());
    if (token) result.token_ids.push_back(*token);
    result.text += msg.text();
    if (on_streamed) on_streamed(token, msg.text());
  }
  absl::Status status = FromGrpc(reader->Finish(), server, r.timeout_s);
  if (!status.ok()) return status;
  return result;
}

}  // namespace stave::cli
