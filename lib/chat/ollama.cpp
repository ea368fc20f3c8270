// Ollama Modelfiles and templates (see ollama.h for the contract and the Ollama behaviour assumed).
#include "chat/ollama.h"

#include <cstdint>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "chat/chat_template.h"
#include "chat/jinja_eval.h"
#include "core/error.h"

namespace hearth::chat {

namespace {

using ojson = nlohmann::ordered_json;

struct Message {
  std::string role;
  std::string content;
};
using Conversation = std::vector<Message>;

// ---------------------------------------------------------------------------------------------------------
// Families
// ---------------------------------------------------------------------------------------------------------

struct FamilyTokens {
  const char* bos;
  const char* eos;
};

FamilyTokens family_tokens(ChatFamily family) {
  switch (family) {
    case ChatFamily::kLlama3: return {"<|begin_of_text|>", "<|eot_id|>"};
    case ChatFamily::kChatML: return {"", "<|im_end|>"};
    case ChatFamily::kMistral: return {"<s>", "</s>"};
  }
  throw Error("chat_family: unknown family");
}

// What Ollama's rendering of ollama_template(family) gives for `conversation` (an optional leading system
// message, then alternating user/assistant ending in user), written out in C++ so that detection can
// compare a Jinja template against it without a Go template engine.
std::string family_prompt(ChatFamily family, const Conversation& conversation) {
  std::string system;
  for (const Message& m : conversation)
    if (m.role == "system") system += (system.empty() ? "" : "\n\n") + m.content;
  std::string out;
  switch (family) {
    case ChatFamily::kLlama3:
      for (const Message& m : conversation)
        out += "<|start_header_id|>" + m.role + "<|end_header_id|>\n\n" + m.content + "<|eot_id|>";
      return out + "<|start_header_id|>assistant<|end_header_id|>\n\n";
    case ChatFamily::kChatML:
      for (const Message& m : conversation) out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
      return out + "<|im_start|>assistant\n";
    case ChatFamily::kMistral:
      for (size_t i = 0; i < conversation.size(); ++i) {
        const Message& m = conversation[i];
        bool last = i + 1 == conversation.size();
        if (m.role == "user")
          out += "[INST] " + (last && !system.empty() ? system + "\n\n" : "") + m.content + "[/INST]";
        else if (m.role == "assistant") out += " " + m.content + "</s>";
      }
      return out;
  }
  throw Error("chat_family: unknown family");
}

ojson to_json(const Conversation& conversation) {
  ojson messages = ojson::array();
  for (const Message& m : conversation) messages.push_back({{"role", m.role}, {"content", m.content}});
  return messages;
}

// Renders `conversation` as transformers would with add_generation_prompt=true.
std::string jinja_prompt(const ChatTemplate& tpl, const Conversation& conversation, const FamilyTokens& tokens) {
  ojson vars = ojson::object();
  vars["messages"] = to_json(conversation);
  vars["tools"] = nullptr;
  vars["documents"] = nullptr;
  vars["add_generation_prompt"] = true;
  vars["bos_token"] = tokens.bos;
  vars["eos_token"] = tokens.eos;
  return tpl.render(vars);
}

std::string strip_prefix(const std::string& text, const std::string& prefix) {
  if (!prefix.empty() && text.compare(0, prefix.size(), prefix) == 0) return text.substr(prefix.size());
  return text;
}

std::optional<ChatFamily> family_candidate(const std::string& source) {
  if (source.find("<|start_header_id|>") != std::string::npos || source.find("<|eot_id|>") != std::string::npos)
    return ChatFamily::kLlama3;
  if (source.find("<|im_start|>") != std::string::npos) return ChatFamily::kChatML;
  if (source.find("[INST]") != std::string::npos) return ChatFamily::kMistral;
  return std::nullopt;
}

// Probe texts: no leading/trailing whitespace (Llama 3 and Mistral trim), a quote and a brace, which a
// template that escapes or re-quotes content would change.
const char* const kProbeSystem = "You answer in \"short\" sentences {always}.";
const char* const kProbeUser1 = "What is 2+2?";
const char* const kProbeAssistant = "It is 4.";
const char* const kProbeUser2 = "And 3+3?\nThink first.";

std::optional<std::string> default_system(const ChatTemplate& tpl) {
  const std::string sentinel = "hearth-probe-system-4f1c";
  Conversation without = {{"user", kProbeUser1}};
  Conversation with = {{"system", sentinel}, {"user", kProbeUser1}};
  FamilyTokens tokens{"", ""};
  std::string plain, probed;
  try {
    plain = jinja_prompt(tpl, without, tokens);
    probed = jinja_prompt(tpl, with, tokens);
  } catch (const JinjaRaisedError&) {
    return std::nullopt;
  }
  size_t at = probed.find(sentinel);
  if (at == std::string::npos) return std::nullopt;
  std::string before = probed.substr(0, at), after = probed.substr(at + sentinel.size());
  if (plain.size() <= before.size() + after.size()) return std::nullopt;
  if (plain.compare(0, before.size(), before) != 0) return std::nullopt;
  if (plain.compare(plain.size() - after.size(), after.size(), after) != 0) return std::nullopt;
  return plain.substr(before.size(), plain.size() - before.size() - after.size());
}

}  // namespace

const char* chat_family_name(ChatFamily family) {
  switch (family) {
    case ChatFamily::kLlama3: return "llama3";
    case ChatFamily::kChatML: return "chatml";
    case ChatFamily::kMistral: return "mistral";
  }
  return "unknown";
}

std::optional<std::string> chat_default_system(const std::string& jinja_source) {
  return default_system(ChatTemplate::parse(jinja_source, "chat_template"));
}

std::optional<ChatFamily> chat_family_detect(const std::string& jinja_source) {
  std::optional<ChatFamily> family = family_candidate(jinja_source);
  if (!family) return std::nullopt;
  ChatTemplate tpl = ChatTemplate::parse(jinja_source, "chat_template");
  std::optional<std::string> fallback_system = default_system(tpl);
  const std::vector<Conversation> probes = {
      {{"system", kProbeSystem}, {"user", kProbeUser1}},
      {{"user", kProbeUser1}, {"assistant", kProbeAssistant}, {"user", kProbeUser2}},
      {{"system", kProbeSystem}, {"user", kProbeUser1}, {"assistant", kProbeAssistant}, {"user", kProbeUser2}},
      {{"user", kProbeUser2}},
  };
  FamilyTokens tokens = family_tokens(*family);
  for (const Conversation& probe : probes) {
    // What Ollama sees: the Modelfile SYSTEM (the template's default) prepended when there is no system.
    Conversation ollama = probe;
    if (probe.front().role != "system" && fallback_system)
      ollama.insert(ollama.begin(), Message{"system", *fallback_system});
    std::string got;
    try {
      got = strip_prefix(jinja_prompt(tpl, probe, tokens), tokens.bos);
    } catch (const JinjaRaisedError&) {
      return std::nullopt;
    }
    if (got != family_prompt(*family, ollama)) return std::nullopt;
  }
  return family;
}

std::string ollama_template(ChatFamily family) {
  switch (family) {
    case ChatFamily::kLlama3:
      return "{{- range .Messages }}<|start_header_id|>{{ .Role }}<|end_header_id|>\n"
             "\n"
             "{{ .Content }}<|eot_id|>\n"
             "{{- end }}<|start_header_id|>assistant<|end_header_id|>\n"
             "\n";
    case ChatFamily::kChatML:
      return "{{- range .Messages }}<|im_start|>{{ .Role }}\n"
             "{{ .Content }}<|im_end|>\n"
             "{{ end }}<|im_start|>assistant\n";
    case ChatFamily::kMistral:
      // The system prompt goes into the last message when that is a user turn (Mistral v0.3 / mistral-common).
      return "{{- range $i, $m := .Messages }}\n"
             "{{- if eq .Role \"user\" }}[INST] {{ if and $.System (eq (len (slice $.Messages $i)) 1) }}"
             "{{ $.System }}\n"
             "\n"
             "{{ end }}{{ .Content }}[/INST]\n"
             "{{- else if eq .Role \"assistant\" }} {{ .Content }}</s>\n"
             "{{- end }}\n"
             "{{- end }}";
  }
  throw Error("ollama_template: unknown family");
}

std::vector<std::string> ollama_stops(ChatFamily family) {
  switch (family) {
    case ChatFamily::kLlama3: return {"<|eot_id|>", "<|start_header_id|>", "<|end_header_id|>"};
    case ChatFamily::kChatML: return {"<|im_end|>", "<|im_start|>"};
    case ChatFamily::kMistral: return {"</s>", "[INST]", "[/INST]"};
  }
  throw Error("ollama_stops: unknown family");
}

// ---------------------------------------------------------------------------------------------------------
// Modelfile text
// ---------------------------------------------------------------------------------------------------------

namespace {

// Code points Go's strconv.IsPrint rejects that Ollama's parser would drop (an approximation: controls,
// non-ASCII spaces, format characters, private use, noncharacters; unassigned code points are not checked).
bool is_dropped(uint32_t cp) {
  if (cp == '\t' || cp == '\n' || cp == '\r') return false;  // kept inside quoted values
  if (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F)) return true;
  if (cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200F) || (cp >= 0x2028 && cp <= 0x202F) ||
      (cp >= 0x205F && cp <= 0x206F) || cp == 0x3000)
    return true;
  if (cp == 0xAD || (cp >= 0x600 && cp <= 0x605) || cp == 0x61C || cp == 0x6DD || cp == 0x70F || cp == 0x180E)
    return true;
  if (cp == 0xFEFF || (cp >= 0xFFF9 && cp <= 0xFFFB) || (cp & 0xFFFE) == 0xFFFE) return true;
  if (cp == 0x110BD || (cp >= 0x1D173 && cp <= 0x1D17A) || (cp >= 0xE0000 && cp <= 0xE007F)) return true;
  if ((cp >= 0xE000 && cp <= 0xF8FF) || cp >= 0xF0000) return true;
  return false;
}

// Throws unless every character of `value` survives Ollama's parser and the value has no `"""`. (Ollama's
// parser would read a `"""` that does not end a line back, but a reader going by docs/modelfile.md would
// take it for the closing quotes.)
void check_chars(const std::string& field, const std::string& value) {
  if (value.find("\"\"\"") != std::string::npos)
    throw ConfigError("modelfile: " + field + ": the value contains \"\"\", which a Modelfile cannot quote");
  size_t i = 0;
  while (i < value.size()) {
    auto b = static_cast<unsigned char>(value[i]);
    size_t n = b < 0x80 ? 1 : (b >> 5) == 0x6 ? 2 : (b >> 4) == 0xE ? 3 : (b >> 3) == 0x1E ? 4 : 0;
    if (n == 0 || i + n > value.size())
      throw ConfigError("modelfile: " + field + ": invalid UTF-8 at byte " + std::to_string(i));
    uint32_t cp = n == 1 ? b : b & (0x7F >> n);
    for (size_t k = 1; k < n; ++k) {
      auto c = static_cast<unsigned char>(value[i + k]);
      if ((c & 0xC0) != 0x80) throw ConfigError("modelfile: " + field + ": invalid UTF-8 at byte " + std::to_string(i));
      cp = (cp << 6) | (c & 0x3F);
    }
    static const uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
      throw ConfigError("modelfile: " + field + ": invalid UTF-8 at byte " + std::to_string(i));
    if (is_dropped(cp)) {
      char hex[16];
      std::snprintf(hex, sizeof hex, "U+%04X", static_cast<unsigned>(cp));
      throw ConfigError("modelfile: " + field + ": " + hex + " at byte " + std::to_string(i) +
                        " would be dropped by Ollama's parser; expected printable characters, tab or line breaks");
    }
    i += n;
  }
}

bool is_blank(char c) { return c == ' ' || c == '\t'; }
bool is_line_break(char c) { return c == '\n' || c == '\r'; }

std::string trim_space(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && (is_blank(s[b]) || is_line_break(s[b]))) ++b;
  while (e > b && (is_blank(s[e - 1]) || is_line_break(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

// Ollama's unquote: `"""x"""` -> x, `"x"` -> x, a bare value as is; nullopt for an unfinished quote.
std::optional<std::string> unquote(const std::string& s) {
  if (s.compare(0, 3, "\"\"\"") == 0) {
    if (s.size() >= 6 && s.compare(s.size() - 3, 3, "\"\"\"") == 0) return s.substr(3, s.size() - 6);
    return std::nullopt;
  }
  if (!s.empty() && s[0] == '"') {
    if (s.size() >= 2 && s.back() == '"') return s.substr(1, s.size() - 2);
    return std::nullopt;
  }
  return s;
}

// Whether `written` (the text after "INSTRUCTION ", up to the line end) reads back as `value`: Ollama ends a
// value at the first line break where the text so far (trimmed) unquotes, so no earlier line may.
bool reads_back(const std::string& written, const std::string& value) {
  for (size_t i = 0; i < written.size(); ++i)
    if (is_line_break(written[i]) && unquote(trim_space(written.substr(0, i)))) return false;
  std::optional<std::string> got = unquote(trim_space(written));
  return got && *got == value;
}

// The first of `candidates` that reads back as `value`; throws if none does.
std::string pick(const std::string& field, const std::string& value, const std::vector<std::string>& candidates) {
  for (const std::string& c : candidates)
    if (reads_back(c, value)) return c;
  throw ConfigError("modelfile: " + field + ": the value cannot be written so that it reads back exactly");
}

// A value that Modelfiles write on one line (FROM, ADAPTER, PARAMETER): bare when that reads back, else quoted.
std::string single_line(const std::string& field, const std::string& value, bool always_quote, bool allow_breaks) {
  check_chars(field, value);
  bool breaks = value.find_first_of("\r\n") != std::string::npos;
  if (breaks && !allow_breaks) throw ConfigError("modelfile: " + field + ": the value has a line break");
  std::vector<std::string> candidates;
  if (breaks) return pick(field, value, {"\"\"\"" + value + "\"\"\""});
  if (!always_quote && !value.empty()) candidates.push_back(value);
  candidates.push_back("\"" + value + "\"");
  candidates.push_back("\"\"\"" + value + "\"\"\"");
  return pick(field, value, candidates);
}

std::string multi_line(const std::string& field, const std::string& value) {
  check_chars(field, value);
  return pick(field, value, {"\"\"\"" + value + "\"\"\""});
}

bool is_parameter_name(const std::string& name) {
  if (name.empty()) return false;
  for (char c : name)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')) return false;
  return true;
}

}  // namespace

std::string modelfile_render(const Modelfile& modelfile) {
  if (modelfile.from.empty()) throw ConfigError("modelfile: FROM: empty; expected a GGUF path or a model name");
  std::string out = "FROM " + single_line("FROM", modelfile.from, false, false) + "\n";
  if (modelfile.adapter) out += "ADAPTER " + single_line("ADAPTER", *modelfile.adapter, false, false) + "\n";
  if (!modelfile.template_text.empty()) out += "TEMPLATE " + multi_line("TEMPLATE", modelfile.template_text) + "\n";
  if (modelfile.system) out += "SYSTEM " + multi_line("SYSTEM", *modelfile.system) + "\n";
  for (const std::string& stop : modelfile.stops)
    out += "PARAMETER stop " + single_line("PARAMETER stop", stop, true, true) + "\n";
  for (const auto& [name, value] : modelfile.parameters) {
    if (!is_parameter_name(name))
      throw ConfigError("modelfile: PARAMETER: name '" + name + "'; expected letters, digits and '_'");
    out += "PARAMETER " + name + " " + single_line("PARAMETER " + name, value, false, true) + "\n";
  }
  return out;
}

}  // namespace hearth::chat
