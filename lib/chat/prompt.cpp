// Chat prompts: messages -> rendered text -> ids. See prompt.h.
#include "chat/prompt.h"

#include "chat/chat_template.h"

namespace hearth::chat {

ChatPrompt chat_prompt_encode(const tokenizer::Tokenizer& tokenizer, const nlohmann::ordered_json& messages,
                              const ChatPromptOptions& options) {
  ChatPrompt prompt;
  prompt.text = chat_template_apply(tokenizer.config(), messages, options.add_generation_prompt, options.tools,
                                    options.origin);
  tokenizer::EncodeOptions encode;
  encode.add_special_tokens = false;  // the template writes them
  encode.parse_special = true;
  prompt.ids = tokenizer.encode(prompt.text, encode);
  return prompt;
}

ChatPrompt chat_prompt_encode(const tokenizer::Tokenizer& tokenizer, const nlohmann::json& messages,
                              const ChatPromptOptions& options) {
  return chat_prompt_encode(tokenizer, nlohmann::ordered_json(messages), options);
}

}  // namespace hearth::chat
