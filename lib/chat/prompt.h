// Chat prompts: a conversation -> the prompt a chat model sees, as text and as token ids. The one place
// hearth turns messages into prompt ids (`hearth generate --chat`, `hearth chat-template --tokenize`, the
// server's /v1/chat/completions, chat records in datasets).
//
// The text is the tokenizer_config.json's chat template rendered by chat_template_apply (chat_template.h).
// The ids are that text encoded with add_special_tokens=false, because the template writes BOS and the other
// special tokens itself (letting the tokenizer add its own would double BOS), and parse_special=true, so that
// the "<|im_start|>" the template wrote become their special ids. The text that came from the messages and
// tools (content, names, tool call arguments, ...) is the exception: special-token text in it ("</s>",
// "<|im_end|>", "<|eot_id|>") is encoded as the plain text it is, as transformers' split_special_tokens=True
// encodes it, so a message cannot end its turn or forge another (docs/tokenizers.md, "Special-token text in
// messages"). Not here: what a caller does with an empty prompt or one longer than the context.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tokenizer/tokenizer.h"

namespace hearth::chat {

struct ChatPromptOptions {
  // End with the assistant turn's header (a prompt to generate from). false, as in transformers, renders the
  // conversation as it stands (a training example).
  bool add_generation_prompt = false;
  // Tool (function) definitions, passed to the template as `tools`; null for none.
  nlohmann::ordered_json tools = nullptr;
  // Names the tokenizer_config.json in error messages ("<origin>#chat_template:<line>:<col>: ...").
  std::string origin = "tokenizer_config.json";
};

struct ChatPrompt {
  std::string text;                     // the rendered template
  std::vector<tokenizer::TokenId> ids;  // text, encoded as above (special-token text from messages plain)
};

// Renders `messages` (an OpenAI-style array of {"role", "content", ...}) with the chat template of
// tokenizer.config() and encodes the result with `tokenizer`. The ordered_json overload keeps the key order
// of `messages` (which `tojson` output depends on; use it for request bodies); the nlohmann::json one has
// its keys sorted. Throws hearth::FormatError as chat_template_apply does (chat::JinjaRaisedError when the
// template calls raise_exception). Thread-safe.
ChatPrompt chat_prompt_encode(const tokenizer::Tokenizer& tokenizer, const nlohmann::ordered_json& messages,
                              const ChatPromptOptions& options = {});
ChatPrompt chat_prompt_encode(const tokenizer::Tokenizer& tokenizer, const nlohmann::json& messages,
                              const ChatPromptOptions& options = {});

// Stop strings that end the assistant's turn beyond the model's stop tokens: with the ChatML fallback template (a
// tokenizer_config.json without chat_template), "<|im_end|>" is text the model writes, not a stop token, so a
// reply would run on into invented turns. Empty for a model's own template (its end of turn is a stop token).
std::vector<std::string> chat_stop_strings(const tokenizer::Tokenizer& tokenizer);

}  // namespace hearth::chat
