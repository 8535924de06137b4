#include "client/remote_generate.h"

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "stave/v1/stave.grpc.pb.h"

namespace stave::cli {

absl::StatusOr<RemoteResult> RemoteGenerate(const RemoteRequest& r,
                                            const std::function<void(std::string_view)>& on_text) {
  auto channel = grpc::CreateChannel(r.server, grpc::InsecureChannelCredentials());
  auto stub = stave::v1::Inference::NewStub(channel);
  stave::v1::GenerateRequest request;
  request.set_prompt(r.prompt);
  request.set_max_tokens(static_cast<uint32_t>(r.max_tokens));
  request.set_temperature(r.temperature);
  request.set_top_p(r.top_p);
  request.set_top_k(static_cast<uint32_t>(r.top_k));
  request.set_seed(r.seed);
  for (const auto& s : r.stop) request.add_stop(s);
  grpc::ClientContext context;
  auto reader = stub->Generate(&context, request);
  RemoteResult result;
  stave::v1::GenerateResponse msg;
  while (reader->Read(&msg)) {
    if (msg.has_usage() || !msg.finish_reason().empty()) {
      result.finish_reason = msg.finish_reason();
      result.prompt_tokens = msg.usage().prompt_tokens();
      result.config_version = msg.config_version();
    }
    // A final message may carry no token (the stop token is not part of the output).
    if (msg.finish_reason().empty() || msg.usage().completion_tokens() > result.token_ids.size())
      result.token_ids.push_back(static_cast<int>(msg.token_id()));
    result.text += msg.text();
    if (on_text && !msg.text().empty()) on_text(msg.text());
  }
  grpc::Status status = reader->Finish();
  if (!status.ok())
    return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                        absl::StrCat(r.server, ": ", status.error_message()));
  return result;
}

}  // namespace stave::cli
