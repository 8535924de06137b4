// Chat templates staved renders without Jinja: recognised from real Hugging Face template texts,
// rendered as those templates render (with the model's BOS left to the encoder), and refused
// clearly otherwise.
#include "server/chat_template.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <unistd.h>

namespace stave::server {
namespace {

// Abridged from the tokenizer_config.json files of the models (the markers are what count).
constexpr char kLlama2[] =
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = "
    "messages[0]['content'] %}{% endif %}{% for message in loop_messages %}{% if message['role'] == 'user' %}"
    "{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}"
    "{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}";
constexpr char kChatMl[] =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + "
    "'\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
constexpr char kLlama3[] =
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + "
    "message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 "
    "%}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{{ "
    "'<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}";

const std::vector<ChatMessage> kConversation = {
    {"system", "Be brief."}, {"user", "Hi "}, {"assistant", "Hello."}, {"user", "Bye"}};

TEST(ChatTemplate, RecognisesTheThreeFormsByTextOrName) {
  EXPECT_EQ(ChatTemplate::Recognize(kLlama2)->form(), ChatTemplate::Form::kLlama2);
  EXPECT_EQ(ChatTemplate::Recognize(kChatMl)->form(), ChatTemplate::Form::kChatMl);
  EXPECT_EQ(ChatTemplate::Recognize(kLlama3)->form(), ChatTemplate::Form::kLlama3);
  EXPECT_EQ(ChatTemplate::Recognize("ChatML\n")->form(), ChatTemplate::Form::kChatMl);
  EXPECT_EQ(ChatTemplate::Recognize("llama-3")->form(), ChatTemplate::Form::kLlama3);
  auto zephyr = ChatTemplate::Recognize("{% for m in messages %}<|user|>{{ m['content'] }}{% endfor %}");
  EXPECT_EQ(zephyr.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(zephyr.status().message().find("ChatML"), std::string::npos);
}

TEST(ChatTemplate, RendersChatMl) {
  EXPECT_EQ(*ChatTemplate::Recognize(kChatMl)->Render(kConversation),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi <|im_end|>\n"
            "<|im_start|>assistant\nHello.<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(ChatTemplate::Recognize(kChatMl)->EndOfTurn(), "<|im_end|>");
}

TEST(ChatTemplate, RendersLlama3) {
  EXPECT_EQ(*ChatTemplate::Recognize(kLlama3)->Render(kConversation),
            "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nHello.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nBye<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
  EXPECT_EQ(ChatTemplate::Recognize(kLlama3)->EndOfTurn(), "<|eot_id|>");
}

TEST(ChatTemplate, RendersLlama2WithTheSystemPromptInTheFirstTurn) {
  EXPECT_EQ(*ChatTemplate::Recognize(kLlama2)->Render(kConversation),
            "[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello. </s><s>[INST] Bye [/INST]");
  // Turns must alternate and end with the user's.
  auto bad = ChatTemplate::Recognize(kLlama2)->Render({{"user", "a"}, {"user", "b"}});
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  bad = ChatTemplate::Recognize(kLlama2)->Render({{"user", "a"}, {"assistant", "b"}});
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ChatTemplate, RefusesUnknownRolesAndNoMessages) {
  auto t = *ChatTemplate::Recognize("chatml");
  EXPECT_NE(t.Render({{"tool", "x"}}).status().message().find("messages[0].role"), std::string::npos);
  EXPECT_EQ(t.Render({}).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ChatTemplate, ReadsTokenizerConfigNextToTheModel) {
  const auto dir = std::filesystem::temp_directory_path() / ("stave_chat_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  EXPECT_FALSE(ChatTemplate::ForModel((dir / "model.bin").string())->has_value());  // no file: no chat
  std::ofstream(dir / "tokenizer_config.json") << R"({"chat_template": [{"name": "default", "template": ")"
                                               << "<|im_start|>" << R"("}]})";
  auto own = ChatTemplate::ForModel((dir / "model.bin").string());
  ASSERT_TRUE(own.ok()) << own.status();
  ASSERT_TRUE(own->has_value());
  EXPECT_EQ((*own)->form(), ChatTemplate::Form::kChatMl);
  EXPECT_EQ(ChatTemplate::FromFile((dir / "tokenizer_config.json").string())->form(), ChatTemplate::Form::kChatMl);
  std::ofstream(dir / "tokenizer_config.json") << R"({"chat_template": "<|user|>"})";
  EXPECT_EQ(ChatTemplate::ForModel(dir.string()).status().code(), absl::StatusCode::kNotFound);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace stave::server
