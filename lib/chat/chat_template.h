// Chat templates: renders the Jinja `chat_template` of a Hugging Face tokenizer_config.json into the prompt
// text a model was trained on, byte for byte as transformers' apply_chat_template(tokenize=False) does.
//
// transformers renders with jinja2 (trim_blocks, lstrip_blocks, loopcontrols, a `raise_exception` global, a
// `tojson` that keeps non-ASCII and does not escape HTML, and `strftime_now`); hearth implements the subset
// of jinja2 that real chat templates use (see jinja_parser.h, jinja_eval.h, jinja_builtins.h and the "Chat
// templates" section of docs/tokenizers.md). This file is not a tokenizer: the rendered string still has to
// be encoded (special tokens such as <|im_start|> are plain text here); prompt.h does both.
#pragma once

#include <ctime>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace hearth::chat {

struct JinjaRenderOptions;

// A parsed chat template. Immutable and cheap to copy (the syntax tree is shared); render() is const and
// safe to call from several threads at once.
class ChatTemplate {
 public:
  // Parses Jinja source. Throws hearth::FormatError "<origin>:<line>:<col>: <what>; expected <x>, got <y>"
  // for syntax errors, unknown tags, and filters or tests hearth does not have.
  static ChatTemplate parse(const std::string& source, const std::string& origin);

  // The template of tokenizer_config.json's "chat_template": a string, or a list of {"name", "template"}
  // from which `name` is picked. std::nullopt when the config has no (or a null) chat_template. Throws
  // hearth::FormatError when chat_template has another shape, `name` is not in the list, or the template
  // does not parse. Error locations read "<origin>#chat_template:<line>:<col>".
  static std::optional<ChatTemplate> from_tokenizer_config(const nlohmann::json& config, const std::string& origin,
                                                           const std::string& name = "default");

  // Renders with the given variables (an object: messages, tools, add_generation_prompt, bos_token, ...).
  // The ordered_json overload keeps object key order, which `tojson` output depends on (transformers keeps
  // the order of the request); nlohmann::json sorts keys. Throws hearth::FormatError
  // "<origin>:<line>:<col>: <what>" for runtime errors and chat::JinjaRaisedError (a FormatError) when the
  // template calls raise_exception.
  std::string render(const nlohmann::json& variables) const;
  std::string render(const nlohmann::ordered_json& variables) const;
  // As above; `options.now` fixes the time strftime_now() sees (for tests).
  std::string render(const nlohmann::ordered_json& variables, const JinjaRenderOptions& options) const;

  const std::string& source() const;

 private:
  struct Impl;
  explicit ChatTemplate(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;
};

// The template used when a tokenizer_config.json has none: ChatML, the format transformers used as its
// default_chat_template ("<|im_start|>{role}\n{content}<|im_end|>\n" per message, then
// "<|im_start|>assistant\n" when add_generation_prompt).
extern const char* const kChatTemplateFallback;

// What hearth uses to build prompts: renders `messages` (an OpenAI-style array of {"role", "content", ...})
// with the config's chat_template, passing add_generation_prompt, `tools` and `documents` (None when
// null, as transformers passes them, so `tools is none` holds and `tools is defined` too), and the
// config's special tokens (bos_token, eos_token, unk_token, pad_token, ...: a string or an AddedToken dict
// with "content"; omitted when null), as transformers' apply_chat_template does. A config without a template
// uses kChatTemplateFallback and logs a warning (once per process). Parsed templates are cached by source.
// Throws as ChatTemplate::parse and render do. Thread-safe.
std::string chat_template_apply(const nlohmann::json& tokenizer_config, const nlohmann::json& messages,
                                bool add_generation_prompt, const nlohmann::json& tools = nullptr,
                                const std::string& origin = "tokenizer_config.json");
// As above, keeping the key order of `messages` and `tools` (use this for request bodies parsed as
// ordered_json, so that `tools | tojson` matches transformers byte for byte).
std::string chat_template_apply(const nlohmann::json& tokenizer_config, const nlohmann::ordered_json& messages,
                                bool add_generation_prompt, const nlohmann::ordered_json& tools = nullptr,
                                const std::string& origin = "tokenizer_config.json");

}  // namespace hearth::chat
