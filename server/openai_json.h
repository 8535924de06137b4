// The OpenAI JSON of /v1/completions and /v1/chat/completions: request bodies read into the
// transport-neutral GenerateRequest (so the gRPC rules apply unchanged), and the answer objects,
// whole or as server-sent-event chunks. Field errors are INVALID_ARGUMENT whose message starts
// with the field's name ("max_tokens: ..."), as the gRPC ones do.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "core/model.h"
#include "core/sequence.h"
#include "server/chat_template.h"
#include "server/generate_request.h"
#include "stave/v1/stave.pb.h"

namespace stave::server {

// A field left out keeps the GenerateRequest default (generate_request.h: the same for gRPC,
// HTTP and the CLI).
inline constexpr int kMaxChoices = 8;  // n: bounded work per request

struct OpenAiRequest {
  bool chat = false;
  std::string model;  // as sent ("" = not sent)
  std::vector<ChatMessage> messages;  // chat: rendered into request.prompt by the caller
  stave::v1::GenerateRequest request;
  GenerationOptions options;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage: a last chunk with usage
};

// Parses a request body. INVALID_ARGUMENT for malformed JSON, a field of the wrong type or an
// OpenAI option staved does not implement with a non-default value (echo, suffix, best_of,
// logit_bias, penalties, top logprobs).
absl::StatusOr<OpenAiRequest> ParseOpenAiRequest(const std::string& body, bool chat);

// One choice of an answer, accumulated from the engine's steps.
struct ChoiceResult {
  std::string text;
  uint32_t completion_tokens = 0;
  std::vector<std::string> tokens;  // with logprobs: each token's text (U+FFFD for a stray byte)
  std::vector<std::string> token_bytes;  // ... and its bytes as decoded (chat's "bytes")
  std::vector<double> logprobs;
  std::string finish_reason;  // OpenAI's: "length" or "stop" ("eos" and stop strings are "stop")
};

// The fields every answer object and chunk carries.
struct AnswerHeader {
  std::string id;  // "cmpl-..." or "chatcmpl-..."
  int64_t created = 0;
  std::string model;
  bool chat = false;
  bool logprobs = false;
};

// A step's progress for one choice: what is not yet sent (streaming) or all of it (a whole
// answer), and what the next token's piece is decoded after.
struct ChoiceState {
  ChoiceResult pending;
  int prev_token = 0;  // the last prompt token, then the last generated one
  uint32_t completion_tokens = 0;
  bool first_sent = false, finished = false;
};

// Adds one engine step to its choice (with logprobs: the token's text and log-probability). A
// failed step is returned as its status; a cancelled one (staved stopping) as UNAVAILABLE.
absl::Status AddStep(const Model& model, bool logprobs, const Sequence::Step& step, ChoiceState& choice);

// OpenAI's error object {"error": {message, type, param, code}}: the type follows the status
// code, param is the request field the message starts with ("max_tokens: ..."), if any.
nlohmann::json ErrorJson(const absl::Status& status, absl::string_view code = "");

// JSON text for the wire. Answers hold valid UTF-8 already; invalid bytes would be replaced
// rather than throw on a server thread.
std::string Dump(const nlohmann::json& j);

// The engine's finish reason in OpenAI's words.
std::string OpenAiFinishReason(const std::string& engine_reason);

// The whole answer of a request that did not stream.
nlohmann::json AnswerJson(const AnswerHeader& header, const std::vector<ChoiceResult>& choices,
                          uint32_t prompt_tokens, uint64_t config_version);

// One streamed chunk for choice `index`: `delta` holds the text and tokens since the last chunk;
// finish_reason "" until the last. `first`: the chat's first chunk carries the role.
nlohmann::json ChunkJson(const AnswerHeader& header, int index, const ChoiceResult& delta, bool first);

// The last chunk with usage (stream_options.include_usage): no choices.
nlohmann::json UsageChunkJson(const AnswerHeader& header, uint32_t prompt_tokens, uint32_t completion_tokens,
                              uint64_t config_version);

// GET /v1/models.
nlohmann::json ModelsJson(const std::string& model, int64_t created);

}  // namespace stave::server
