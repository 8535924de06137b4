// Chat prompts for /v1/chat/completions without a Jinja engine: staved recognises the three
// common template forms (Llama-2 "[INST]", ChatML "<|im_start|>", Llama-3 "<|start_header_id|>")
// in a Hugging Face tokenizer_config.json `chat_template` or in a --chat-template file, and
// renders them in C++. A model with no template (or one of another form) serves no chat.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace stave::server {

struct ChatMessage {
  std::string role;  // "system", "user" or "assistant"
  std::string content;
};

class ChatTemplate {
 public:
  enum class Form { kLlama2, kChatMl, kLlama3 };

  // The form a Jinja template text (or a form name: "llama-2", "chatml", "llama-3") is written
  // in; NOT_FOUND when it is none of the three.
  static absl::StatusOr<ChatTemplate> Recognize(const std::string& text);
  // The template of the model at `model_path` (a file or a directory): `chat_template` of the
  // tokenizer_config.json in its directory. nullopt when there is no such file or field;
  // an error when the file is unreadable or the template is of another form.
  static absl::StatusOr<std::optional<ChatTemplate>> ForModel(const std::string& model_path);
  // A --chat-template file: a form name, a template text or a tokenizer_config.json.
  static absl::StatusOr<ChatTemplate> FromFile(const std::string& path);

  Form form() const { return form_; }
  const char* name() const;
  // The prompt for `messages`, ending where the assistant's answer starts. The model's BOS is not
  // written: the prompt is encoded with it. INVALID_ARGUMENT for an unknown role or no message.
  absl::StatusOr<std::string> Render(const std::vector<ChatMessage>& messages) const;
  // Text that ends the assistant's turn, a stop string for generation ("" = the model's EOS).
  std::string EndOfTurn() const;

 private:
  explicit ChatTemplate(Form form) : form_(form) {}
  Form form_;
};

}  // namespace stave::server
