// Chat templates: tokenizer_config.json's chat_template -> prompt text. See chat_template.h.
#include "chat/chat_template.h"

#include <atomic>
#include <mutex>
#include <unordered_map>

#include "chat/jinja_eval.h"
#include "chat/jinja_lexer.h"
#include "chat/jinja_parser.h"
#include "chat/jinja_value.h"
#include "core/error.h"
#include "core/log.h"

namespace hearth::chat {

const char* const kChatTemplateFallback =
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}";

struct ChatTemplate::Impl {
  std::string raw;
  JinjaSource source;
  JinjaBody body;
};

ChatTemplate ChatTemplate::parse(const std::string& source, const std::string& origin) {
  auto impl = std::make_shared<Impl>();
  impl->raw = source;
  impl->source = jinja_source(source, origin);
  impl->body = jinja_parse(impl->source, jinja_lex(impl->source));
  jinja_check_names(impl->source, impl->body);
  return ChatTemplate(std::move(impl));
}

std::optional<ChatTemplate> ChatTemplate::from_tokenizer_config(const nlohmann::json& config, const std::string& origin,
                                                                const std::string& name) {
  if (!config.is_object() || !config.contains("chat_template") || config["chat_template"].is_null()) {
    return std::nullopt;
  }
  const nlohmann::json& t = config["chat_template"];
  if (t.is_string()) return parse(t.get<std::string>(), origin + "#chat_template");
  if (t.is_array()) {
    std::string names;
    for (const auto& entry : t) {
      if (!entry.is_object() || !entry.contains("name") || !entry["name"].is_string() || !entry.contains("template") ||
          !entry["template"].is_string()) {
        throw FormatError(origin + ": chat_template; expected a list of {\"name\", \"template\"} strings, got " +
                          entry.dump());
      }
      std::string entry_name = entry["name"].get<std::string>();
      if (entry_name == name) {
        return parse(entry["template"].get<std::string>(), origin + "#chat_template[" + name + "]");
      }
      names += (names.empty() ? "" : ", ") + entry_name;
    }
    throw FormatError(origin + ": chat_template has no template named '" + name + "'; expected one of " + names);
  }
  throw FormatError(origin + ": chat_template; expected a string or a list of {\"name\", \"template\"}, got " +
                    std::string(t.type_name()));
}

std::string ChatTemplate::render(const nlohmann::json& variables) const {
  return jinja_render(impl_->source, impl_->body, value_from_json(variables), JinjaRenderOptions{});
}

std::string ChatTemplate::render(const nlohmann::ordered_json& variables) const {
  return render(variables, JinjaRenderOptions{});
}

std::string ChatTemplate::render(const nlohmann::ordered_json& variables, const JinjaRenderOptions& options) const {
  return jinja_render(impl_->source, impl_->body, value_from_json(variables), options);
}

const std::string& ChatTemplate::source() const { return impl_->raw; }

namespace {

// Parsed templates by source text: servers apply the same template to every request.
std::shared_ptr<const ChatTemplate> cached_template(const std::string& source, const std::string& origin) {
  static std::mutex mutex;
  static std::unordered_map<std::string, std::shared_ptr<const ChatTemplate>> cache;
  std::lock_guard<std::mutex> lock(mutex);
  std::string key = origin + '\0' + source;
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  auto parsed = std::make_shared<const ChatTemplate>(ChatTemplate::parse(source, origin));
  if (cache.size() >= 16) cache.clear();  // a handful of models per process; never grow without bound
  cache.emplace(std::move(key), parsed);
  return parsed;
}

// A special token as tokenizer_config.json spells it: a string, or an AddedToken dict with "content".
std::optional<std::string> token_text(const nlohmann::json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_object() && value.contains("content") && value["content"].is_string()) {
    return value["content"].get<std::string>();
  }
  return std::nullopt;
}

std::string apply(const nlohmann::json& config, nlohmann::ordered_json variables, const std::string& origin) {
  static const char* kTokenKeys[] = {"bos_token", "eos_token", "unk_token", "sep_token",
                                     "pad_token", "cls_token", "mask_token"};
  if (config.is_object()) {
    for (const char* key : kTokenKeys) {
      if (!config.contains(key)) continue;
      if (auto text = token_text(config[key])) variables[key] = *text;
    }
    if (config.contains("additional_special_tokens") && config["additional_special_tokens"].is_array()) {
      nlohmann::ordered_json extra = nlohmann::ordered_json::array();
      for (const auto& t : config["additional_special_tokens"])
        if (auto text = token_text(t)) extra.push_back(*text);
      variables["additional_special_tokens"] = extra;
    }
  }
  std::string source;
  std::string template_origin = origin + "#chat_template";
  const nlohmann::json* t = config.is_object() && config.contains("chat_template") ? &config["chat_template"] : nullptr;
  if (t && t->is_array()) {
    // transformers picks "tool_use" when tools are given and such a template exists, else "default".
    std::string name = !variables["tools"].is_null() ? "tool_use" : "default";
    bool found = false;
    // entry["name"] == name: value("name", "") would throw type_error for a name that is not a string (the shape
    // error below names it instead).
    for (const auto& entry : *t)
      found = found || (entry.is_object() && entry.contains("name") && entry["name"] == name);
    auto chosen = ChatTemplate::from_tokenizer_config(config, origin, found ? name : "default");
    source = chosen->source();
    template_origin += "[" + std::string(found ? name : "default") + "]";
  } else if (t && !t->is_null()) {
    if (!t->is_string()) ChatTemplate::from_tokenizer_config(config, origin);  // throws the shape error
    source = t->get<std::string>();
  } else {
    static std::atomic<bool> warned{false};
    if (!warned.exchange(true)) {
      log::warn("{}: no chat_template; using the ChatML fallback (<|im_start|>role ... <|im_end|>)", origin);
    }
    source = kChatTemplateFallback;
    template_origin = "chat template fallback";
  }
  return cached_template(source, template_origin)->render(variables);
}

}  // namespace

std::string chat_template_apply(const nlohmann::json& tokenizer_config, const nlohmann::json& messages,
                                bool add_generation_prompt, const nlohmann::json& tools, const std::string& origin) {
  return chat_template_apply(tokenizer_config, nlohmann::ordered_json(messages), add_generation_prompt,
                             nlohmann::ordered_json(tools), origin);
}

std::string chat_template_apply(const nlohmann::json& tokenizer_config, const nlohmann::ordered_json& messages,
                                bool add_generation_prompt, const nlohmann::ordered_json& tools,
                                const std::string& origin) {
  nlohmann::ordered_json variables = nlohmann::ordered_json::object();
  variables["messages"] = messages;
  variables["tools"] = tools;  // transformers passes tools=None and documents=None when there are none
  variables["documents"] = nullptr;
  variables["add_generation_prompt"] = add_generation_prompt;
  return apply(tokenizer_config, std::move(variables), origin);
}

}  // namespace hearth::chat
