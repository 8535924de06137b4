#include "server/openai_json.h"

#include <cmath>
#include <limits>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "core/utf8.h"

namespace stave::server {
namespace {

using nlohmann::json;

absl::Status Expected(absl::string_view field, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": expected ", what));
}

// A field that is absent or null is left alone (OpenAI clients send null for "not set").
const json* Find(const json& object, const char* field) {
  auto it = object.find(field);
  return it == object.end() || it->is_null() ? nullptr : &*it;
}

absl::StatusOr<double> Number(const json& value, absl::string_view field) {
  if (!value.is_number()) return Expected(field, "a number");
  return value.get<double>();
}

absl::StatusOr<int64_t> Integer(const json& value, absl::string_view field) {
  if (value.is_number_integer()) return value.get<int64_t>();
  if (value.is_number_unsigned()) return static_cast<int64_t>(std::min<uint64_t>(value.get<uint64_t>(), INT64_MAX));
  // 3.0 is an integer to JavaScript clients.
  if (value.is_number_float() && std::isfinite(value.get<double>()) && value.get<double>() == std::floor(value.get<double>()) &&
      std::abs(value.get<double>()) < 9e18)
    return static_cast<int64_t>(value.get<double>());
  return Expected(field, "an integer");
}

absl::StatusOr<std::vector<double>> Numbers(const json& value, absl::string_view field) {
  if (!value.is_array()) return Expected(field, "an array of numbers");
  std::vector<double> out;
  for (const auto& v : value) {
    if (!v.is_number()) return Expected(field, "an array of numbers");
    out.push_back(v.get<double>());
  }
  return out;
}

absl::Status Unsupported(absl::string_view field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": not supported by staved (", why, ")"));
}

// "stave": the position config of this request, as GenerateRequest.position (same validation).
absl::Status ReadPosition(const json& stave, stave::v1::PositionConfig* position) {
  if (!stave.is_object()) return Expected("stave", "an object");
  for (const auto& [key, value] : stave.items()) {
    const std::string field = "stave." + key;
    if (key == "mode") {
      if (!value.is_string()) return Expected(field, "\"vanilla\", \"buckets\" or \"moice\"");
      const std::string mode = absl::AsciiStrToLower(value.get<std::string>());
      if (mode == "vanilla") position->set_mode(stave::v1::POSITION_MODE_VANILLA);
      else if (mode == "buckets") position->set_mode(stave::v1::POSITION_MODE_BUCKETS);
      else if (mode == "moice") position->set_mode(stave::v1::POSITION_MODE_MOICE);
      else return Expected(field, "\"vanilla\", \"buckets\" or \"moice\"");
    } else if (key == "bases" || key == "expert_bases") {
      auto bases = Numbers(value, field);
      if (!bases.ok()) return bases.status();
      for (double b : *bases) (key == "bases" ? position->add_bases(b) : position->add_expert_bases(b));
    } else if (key == "fusion") {
      if (!value.is_string()) return Expected(field, "\"logits\" or \"probs\"");
      const std::string fusion = absl::AsciiStrToLower(value.get<std::string>());
      if (fusion == "logits") position->set_fusion(stave::v1::FUSION_LOGITS);
      else if (fusion == "probs") position->set_fusion(stave::v1::FUSION_PROBS);
      else return Expected(field, "\"logits\" or \"probs\"");
    } else if (key == "top_k") {
      auto k = Integer(value, field);
      if (!k.ok()) return k.status();
      if (*k < 0 || *k > 1024) return Expected(field, "an integer in 0..1024");
      position->set_top_k(static_cast<uint32_t>(*k));
    } else if (key == "router" || key == "router_path") {
      // router_path is kept so that the shared validation refuses it with the gRPC message.
      if (!value.is_string()) return Expected(field, "a string");
      (key == "router" ? position->set_router(value.get<std::string>()) : position->set_router_path(value.get<std::string>()));
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          field, ": unknown field (known: mode, bases, fusion, expert_bases, top_k, router)"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> MessageContent(const json& content, absl::string_view field) {
  if (content.is_string()) return content.get<std::string>();
  // The array form: text parts only (no images here).
  if (content.is_array()) {
    std::string out;
    for (const auto& part : content) {
      if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text") || !part["text"].is_string())
        return Expected(field, "a string or an array of {\"type\": \"text\", \"text\": ...} parts");
      out += part["text"].get<std::string>();
    }
    return out;
  }
  return Expected(field, "a string");
}

absl::Status ReadMessages(const json& messages, OpenAiRequest* out) {
  if (!messages.is_array()) return Expected("messages", "an array of {\"role\", \"content\"} objects");
  size_t total = 0;
  for (size_t i = 0; i < messages.size(); ++i) {
    const auto& m = messages[i];
    const std::string field = absl::StrCat("messages[", i, "]");
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string())
      return Expected(field, "an object with a string role");
    ChatMessage message{m["role"].get<std::string>(), ""};
    if (const json* content = Find(m, "content")) {
      auto text = MessageContent(*content, field + ".content");
      if (!text.ok()) return text.status();
      message.content = *std::move(text);
    }
    total += message.content.size();
    // The messages become the prompt: the prompt's limit holds for them together.
    if (total > kMaxRequestTextBytes)
      return absl::InvalidArgumentError(absl::StrCat("messages: ", total, " bytes of content, over the limit of ",
                                                     kMaxRequestTextBytes, " bytes per request"));
    out->messages.push_back(std::move(message));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<OpenAiRequest> ParseOpenAiRequest(const std::string& body, bool chat) {
  json j;
  try {
    j = json::parse(body);
  } catch (const json::exception& e) {  // a syntax error, or a number out of double's range
    return absl::InvalidArgumentError(absl::StrCat("the request body is not valid JSON: ", e.what()));
  }
  if (!j.is_object()) return absl::InvalidArgumentError("the request body must be a JSON object");
  OpenAiRequest out;
  out.chat = chat;
  stave::v1::GenerateRequest& r = out.request;

  if (const json* v = Find(j, "model")) {
    if (!v->is_string()) return Expected("model", "a string");
    out.model = v->get<std::string>();
  }
  if (chat) {
    const json* messages = Find(j, "messages");
    if (messages == nullptr) return absl::InvalidArgumentError("messages: required");
    auto status = ReadMessages(*messages, &out);
    if (!status.ok()) return status;
  } else {
    const json* prompt = Find(j, "prompt");
    if (prompt == nullptr) return absl::InvalidArgumentError("prompt: required");
    if (prompt->is_array() && prompt->size() == 1 && (*prompt)[0].is_string()) prompt = &(*prompt)[0];
    if (!prompt->is_string()) return Expected("prompt", "a string (or an array of one string)");
    r.set_prompt(prompt->get<std::string>());
  }
  for (const char* field : {"max_tokens", "max_completion_tokens"}) {
    const json* v = Find(j, field);
    if (v == nullptr) continue;
    auto n = Integer(*v, field);
    if (!n.ok()) return n.status();
    if (*n < 1) return absl::InvalidArgumentError(absl::StrCat(field, ": must be >= 1"));
    r.set_max_tokens(static_cast<uint32_t>(std::min<int64_t>(*n, std::numeric_limits<uint32_t>::max())));
  }
  if (const json* v = Find(j, "temperature")) {
    auto t = Number(*v, "temperature");
    if (!t.ok()) return t.status();
    r.set_temperature(static_cast<float>(*t));  // checked by the shared validation
  }
  if (const json* v = Find(j, "top_p")) {
    auto p = Number(*v, "top_p");
    if (!p.ok()) return p.status();
    r.set_top_p(static_cast<float>(*p));
  }
  if (const json* v = Find(j, "top_k")) {
    auto k = Integer(*v, "top_k");
    if (!k.ok()) return k.status();
    if (*k < 0) return absl::InvalidArgumentError("top_k: must be >= 0");
    r.set_top_k(static_cast<uint32_t>(std::min<int64_t>(*k, std::numeric_limits<uint32_t>::max())));
  }
  if (const json* v = Find(j, "seed")) {
    auto seed = Integer(*v, "seed");
    if (!seed.ok()) return seed.status();
    r.set_seed(static_cast<uint64_t>(*seed));
  }
  if (const json* v = Find(j, "stop")) {
    if (v->is_string()) {
      r.add_stop(v->get<std::string>());
    } else if (v->is_array()) {
      for (const auto& s : *v) {
        if (!s.is_string()) return Expected("stop", "a string or an array of strings");
        r.add_stop(s.get<std::string>());
      }
    } else {
      return Expected("stop", "a string or an array of strings");
    }
  }
  if (const json* v = Find(j, "n")) {
    auto n = Integer(*v, "n");
    if (!n.ok()) return n.status();
    if (*n < 1 || *n > kMaxChoices)
      return absl::InvalidArgumentError(absl::StrCat("n: must be in 1..", kMaxChoices, ", got ", *n));
    out.options.n = static_cast<int>(*n);
  }
  if (const json* v = Find(j, "stream")) {
    if (!v->is_boolean()) return Expected("stream", "true or false");
    out.stream = v->get<bool>();
  }
  if (const json* v = Find(j, "stream_options")) {
    if (!v->is_object()) return Expected("stream_options", "an object");
    if (const json* u = Find(*v, "include_usage")) {
      if (!u->is_boolean()) return Expected("stream_options.include_usage", "true or false");
      out.include_usage = u->get<bool>();
    }
  }
  if (const json* v = Find(j, "logprobs")) {
    if (chat) {
      if (!v->is_boolean()) return Expected("logprobs", "true or false");
      out.options.logprobs = v->get<bool>();
    } else {
      // OpenAI's completions logprobs N asks for the N most likely alternatives too.
      auto n = Integer(*v, "logprobs");
      if (!n.ok()) return n.status();
      if (*n != 0) return Unsupported("logprobs", "only 0, the chosen tokens' log-probabilities, is served");
      out.options.logprobs = true;
    }
  }
  if (const json* v = Find(j, "top_logprobs")) {
    auto n = Integer(*v, "top_logprobs");
    if (!n.ok()) return n.status();
    if (*n != 0) return Unsupported("top_logprobs", "only the chosen tokens' log-probabilities are served");
  }
  // Options that would change the answer and that staved does not implement: refused unless
  // they hold their no-op value, rather than silently ignored.
  if (const json* v = Find(j, "echo"); v != nullptr && !(v->is_boolean() && !v->get<bool>()))
    return Unsupported("echo", "the answer never repeats the prompt");
  if (const json* v = Find(j, "suffix"); v != nullptr && !(v->is_string() && v->get<std::string>().empty()))
    return Unsupported("suffix", "no insertion mode");
  if (const json* v = Find(j, "best_of"); v != nullptr && !(v->is_number() && v->get<double>() == out.options.n))
    return Unsupported("best_of", "only best_of = n");
  if (const json* v = Find(j, "logit_bias"); v != nullptr && !(v->is_object() && v->empty()))
    return Unsupported("logit_bias", "no logit bias");
  for (const char* field : {"presence_penalty", "frequency_penalty"})
    if (const json* v = Find(j, field); v != nullptr && !(v->is_number() && v->get<double>() == 0))
      return Unsupported(field, "no penalties");
  if (const json* v = Find(j, "stave")) {
    auto status = ReadPosition(*v, r.mutable_position());
    if (!status.ok()) return status;
  }
  return out;
}

namespace {

const char* ErrorType(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange:
    case absl::StatusCode::kNotFound: return "invalid_request_error";
    case absl::StatusCode::kUnauthenticated: return "authentication_error";
    case absl::StatusCode::kPermissionDenied: return "permission_error";
    case absl::StatusCode::kResourceExhausted: return "rate_limit_error";
    default: return "server_error";
  }
}

// The request field an error names: messages start with it ("max_tokens: ...", "stave.bases: ...",
// "temperature must be ...").
json ParamOf(absl::string_view message) {
  const size_t end = message.find_first_of(": ");
  if (end == 0 || end == absl::string_view::npos || end > 64) return nullptr;
  const absl::string_view word = message.substr(0, end);
  for (char c : word)
    if (!(absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '_' || c == '.' || c == '[' || c == ']'))
      return nullptr;
  if (message[end] == ' ' && word != "temperature" && word != "top_p" && word != "top_k") return nullptr;
  return std::string(word);
}

}  // namespace

json ErrorJson(const absl::Status& status, absl::string_view code) {
  return {{"error",
           {{"message", std::string(status.message())},
            {"type", ErrorType(status.code())},
            {"param", ParamOf(status.message())},
            {"code", code.empty() ? json(nullptr) : json(std::string(code))}}}};
}

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

absl::Status AddStep(const Model& model, bool logprobs, const Sequence::Step& step, ChoiceState& c) {
  if (!step.status.ok()) return step.status;
  if (step.finished && step.finish_reason == "cancelled")
    return absl::UnavailableError("the request was cancelled: staved is shutting down");
  if (step.token >= 0) {
    ++c.completion_tokens;
    ++c.pending.completion_tokens;
    if (logprobs) {
      std::string piece = model.tokenizer()->DecodeToken(c.prev_token, step.token);
      c.pending.tokens.push_back(ToValidUtf8(piece));
      c.pending.token_bytes.push_back(std::move(piece));
      c.pending.logprobs.push_back(step.logprob);
    }
    c.prev_token = step.token;
  }
  c.pending.text += step.text;
  if (step.finished) {
    c.finished = true;
    c.pending.finish_reason = OpenAiFinishReason(step.finish_reason);
  }
  return absl::OkStatus();
}

std::string OpenAiFinishReason(const std::string& engine_reason) {
  return engine_reason == "length" ? "length" : "stop";  // "eos" and stop strings alike
}

namespace {

json LogprobsJson(const AnswerHeader& header, const ChoiceResult& c) {
  if (header.chat) {
    json content = json::array();
    for (size_t i = 0; i < c.tokens.size(); ++i) {
      json bytes = json::array();
      for (unsigned char b : c.token_bytes[i]) bytes.push_back(b);
      content.push_back({{"token", c.tokens[i]}, {"logprob", c.logprobs[i]}, {"bytes", bytes},
                         {"top_logprobs", json::array()}});
    }
    return {{"content", content}};
  }
  return {{"tokens", c.tokens}, {"token_logprobs", c.logprobs}, {"top_logprobs", nullptr}};
}

json ChoiceJson(const AnswerHeader& header, int index, const ChoiceResult& c, bool whole, bool first) {
  json choice = {{"index", index}};
  if (header.chat) {
    if (whole) {
      choice["message"] = {{"role", "assistant"}, {"content", c.text}};
    } else {
      choice["delta"] = json::object();
      if (first) choice["delta"]["role"] = "assistant";
      if (!c.text.empty() || !first) choice["delta"]["content"] = c.text;
    }
  } else {
    choice["text"] = c.text;
  }
  choice["logprobs"] = header.logprobs ? LogprobsJson(header, c) : json(nullptr);
  choice["finish_reason"] = c.finish_reason.empty() ? json(nullptr) : json(c.finish_reason);
  return choice;
}

json Header(const AnswerHeader& h, bool chunk) {
  const char* object = h.chat ? (chunk ? "chat.completion.chunk" : "chat.completion") : "text_completion";
  return {{"id", h.id}, {"object", object}, {"created", h.created}, {"model", h.model}};
}

}  // namespace

json AnswerJson(const AnswerHeader& header, const std::vector<ChoiceResult>& choices, uint32_t prompt_tokens,
                uint64_t config_version) {
  json answer = Header(header, false);
  answer["choices"] = json::array();
  uint32_t completion_tokens = 0;
  for (size_t i = 0; i < choices.size(); ++i) {
    answer["choices"].push_back(ChoiceJson(header, static_cast<int>(i), choices[i], true, false));
    completion_tokens += choices[i].completion_tokens;
  }
  answer["usage"] = {{"prompt_tokens", prompt_tokens},
                     {"completion_tokens", completion_tokens},
                     {"total_tokens", prompt_tokens + completion_tokens}};
  answer["stave"] = {{"config_version", config_version}};
  return answer;
}

json ChunkJson(const AnswerHeader& header, int index, const ChoiceResult& delta, bool first) {
  json chunk = Header(header, true);
  chunk["choices"] = json::array({ChoiceJson(header, index, delta, false, first)});
  return chunk;
}

json UsageChunkJson(const AnswerHeader& header, uint32_t prompt_tokens, uint32_t completion_tokens,
                    uint64_t config_version) {
  json chunk = Header(header, true);
  chunk["choices"] = json::array();
  chunk["usage"] = {{"prompt_tokens", prompt_tokens},
                    {"completion_tokens", completion_tokens},
                    {"total_tokens", prompt_tokens + completion_tokens}};
  chunk["stave"] = {{"config_version", config_version}};
  return chunk;
}

json ModelsJson(const std::string& model, int64_t created) {
  return {{"object", "list"},
          {"data", json::array({{{"id", model}, {"object", "model"}, {"created", created}, {"owned_by", "stave"}}})}};
}

}  // namespace stave::server
