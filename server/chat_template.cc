#include "server/chat_template.h"

#include <filesystem>

#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/text_file.h"

namespace stave::server {
namespace {

std::string Strip(const std::string& s) { return std::string(absl::StripAsciiWhitespace(s)); }

// tokenizer_config.json's chat_template: a string, or a list of {name, template} of which
// "default" is the one used for chat.
std::optional<std::string> TemplateField(const nlohmann::json& config) {
  auto it = config.find("chat_template");
  if (it == config.end() || it->is_null()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_array())
    for (const auto& entry : *it)
      if (entry.is_object() && entry.value("name", "") == "default" && entry.contains("template") &&
          entry["template"].is_string())
        return entry["template"].get<std::string>();
  return std::nullopt;
}

absl::StatusOr<nlohmann::json> ReadJson(const std::string& path) {
  auto text = ReadTextFile(path);
  if (!text.ok()) return text.status();
  auto json = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object())
    return absl::InvalidArgumentError(absl::StrCat(path, ": not a JSON object"));
  return json;
}

}  // namespace

absl::StatusOr<ChatTemplate> ChatTemplate::Recognize(const std::string& text) {
  const std::string name = absl::AsciiStrToLower(Strip(text));
  // The most specific marker first: a Llama-3 template mentions none of the others' markers,
  // but a ChatML one might quote "[INST]" in a system prompt.
  if (name == "llama-3" || name == "llama3" || absl::StrContains(text, "<|start_header_id|>"))
    return ChatTemplate(Form::kLlama3);
  if (name == "chatml" || absl::StrContains(text, "<|im_start|>")) return ChatTemplate(Form::kChatMl);
  if (name == "llama-2" || name == "llama2" || absl::StrContains(text, "[INST]")) return ChatTemplate(Form::kLlama2);
  return absl::NotFoundError(
      "the chat template is none of the forms staved renders (Llama-2 [INST], ChatML <|im_start|>, "
      "Llama-3 <|start_header_id|>)");
}

absl::StatusOr<std::optional<ChatTemplate>> ChatTemplate::ForModel(const std::string& model_path) {
  std::error_code ec;
  const std::filesystem::path model(model_path);
  const auto dir = std::filesystem::is_directory(model, ec) ? model : model.parent_path();
  const auto config_path = (dir / "tokenizer_config.json").string();
  if (!std::filesystem::exists(config_path, ec)) return std::nullopt;
  auto config = ReadJson(config_path);
  if (!config.ok()) return config.status();
  auto text = TemplateField(*config);
  if (!text.has_value()) return std::nullopt;
  auto form = Recognize(*text);
  if (!form.ok()) return absl::Status(form.status().code(), absl::StrCat(config_path, ": ", form.status().message()));
  return std::optional<ChatTemplate>(*form);
}

absl::StatusOr<ChatTemplate> ChatTemplate::FromFile(const std::string& path) {
  auto text = ReadTextFile(path);
  if (!text.ok()) return text.status();
  if (absl::EndsWith(path, ".json")) {
    auto config = ReadJson(path);
    if (!config.ok()) return config.status();
    auto field = TemplateField(*config);
    if (!field.has_value()) return absl::InvalidArgumentError(absl::StrCat(path, ": no chat_template field"));
    *text = *field;
  }
  auto form = Recognize(*text);
  if (!form.ok()) return absl::Status(form.status().code(), absl::StrCat(path, ": ", form.status().message()));
  return form;
}

const char* ChatTemplate::name() const {
  switch (form_) {
    case Form::kLlama2: return "llama-2";
    case Form::kChatMl: return "chatml";
    case Form::kLlama3: return "llama-3";
  }
  return "";
}

std::string ChatTemplate::EndOfTurn() const {
  switch (form_) {
    case Form::kLlama2: return "";  // the model's EOS (</s>) ends the turn
    case Form::kChatMl: return "<|im_end|>";
    case Form::kLlama3: return "<|eot_id|>";
  }
  return "";
}

absl::StatusOr<std::string> ChatTemplate::Render(const std::vector<ChatMessage>& messages) const {
  if (messages.empty()) return absl::InvalidArgumentError("messages: must not be empty");
  for (size_t i = 0; i < messages.size(); ++i) {
    const auto& role = messages[i].role;
    if (role != "system" && role != "user" && role != "assistant")
      return absl::InvalidArgumentError(absl::StrCat("messages[", i, "].role: expected system, user or assistant, got '",
                                                     role, "'"));
  }
  std::string out;
  switch (form_) {
    case Form::kChatMl:
      for (const auto& m : messages) absl::StrAppend(&out, "<|im_start|>", m.role, "\n", m.content, "<|im_end|>\n");
      absl::StrAppend(&out, "<|im_start|>assistant\n");
      return out;
    case Form::kLlama3:
      for (const auto& m : messages)
        absl::StrAppend(&out, "<|start_header_id|>", m.role, "<|end_header_id|>\n\n", Strip(m.content), "<|eot_id|>");
      absl::StrAppend(&out, "<|start_header_id|>assistant<|end_header_id|>\n\n");
      return out;
    case Form::kLlama2: {
      // Meta's format (the HF Llama-2-chat template): a system message is folded into the first
      // user turn; user and assistant must then alternate, ending with the user.
      size_t first = 0;
      std::string system;
      if (messages[0].role == "system") {
        system = absl::StrCat("<<SYS>>\n", Strip(messages[0].content), "\n<</SYS>>\n\n");
        first = 1;
      }
      for (size_t i = first; i < messages.size(); ++i) {
        const bool user_turn = (i - first) % 2 == 0;
        if (messages[i].role != (user_turn ? "user" : "assistant"))
          return absl::InvalidArgumentError(absl::StrCat(
              "messages[", i, "].role: this model's chat template (llama-2) needs user and assistant turns to "
              "alternate, starting with user after an optional system message"));
        if (user_turn) {
          // The model's BOS starts the first turn (the prompt is encoded with it).
          absl::StrAppend(&out, i == first ? "" : "<s>", "[INST] ", i == first ? system : "",
                          Strip(messages[i].content), " [/INST]");
        } else {
          absl::StrAppend(&out, " ", Strip(messages[i].content), " </s>");
        }
      }
      if (messages.back().role != "user")
        return absl::InvalidArgumentError("messages: the last message must be the user's (llama-2 chat template)");
      return out;
    }
  }
  return absl::InternalError("unknown chat template form");
}

}  // namespace stave::server
