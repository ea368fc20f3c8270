// Tool (function) calls in the formats chat models write them: which format a model's chat template
// teaches, how a reply splits into text and calls (whole or while streaming), and the grammar that makes a
// reply exactly one well-formed call (or several) when a request requires one.
//
// Formats, as the families' published chat templates render calls (tests/fixtures/chat_templates):
// - Hermes (Qwen2.5, Qwen3, and hearth's own fallback): <tool_call>\n{"name": N, "arguments": {...}}\n</tool_call>,
//   one block per call, after optional text;
// - Llama 3.1/3.2 JSON: the whole reply is {"name": N, "parameters": {...}} (optionally after <|python_tag|>);
// - Mistral v0.3: [TOOL_CALLS] [{"name": N, "arguments": {...}}, ...] ([TOOL_CALLS] a special token).
// A model whose template describes no tools gets them described in a system message in the Hermes format
// (tool_messages_fallback), with earlier calls and results rewritten the same way.
// Not here: HTTP and the OpenAI objects (lib/serve), sampling (lib/infer).
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "constrain/grammar.h"

namespace hearth::chat {

enum class ToolFormat { kHermes, kLlama3Json, kMistral };

struct ToolStyle {
  ToolFormat format = ToolFormat::kHermes;
  bool template_has_tools = false;  // false: hearth describes the tools itself (tool_messages_fallback)
};

// The tool-call format a tokenizer_config.json's chat_template (a string or a list of named templates) uses.
ToolStyle tool_style_detect(const nlohmann::json& tokenizer_config);

// For a template without tools: `messages` with a system message describing `tools` (merged into a leading
// system message when there is one; none when `tools` is empty), assistant tool_calls written into the content as <tool_call> blocks and
// tool results as user messages in <tool_response> blocks.
nlohmann::ordered_json tool_messages_fallback(const nlohmann::ordered_json& messages, const nlohmann::ordered_json& tools);

struct ToolCall {
  std::string id;         // "call_" + 24 characters; 9 alphanumerics for Mistral (its template requires them)
  std::string name;
  std::string arguments;  // a JSON object, compact
};

struct ToolReply {
  std::string content;  // the text outside the calls
  std::vector<ToolCall> calls;
};

// Splits a reply while it streams: push() returns the text that is certainly not part of a call (held back
// while it may still become one), finish() the rest and the calls. A call that does not parse stays text.
// Not thread-safe; one per reply.
class ToolStream {
 public:
  explicit ToolStream(ToolFormat format) : format_(format) {}
  std::string push(const std::string& text);
  ToolReply finish();

 private:
  ToolFormat format_;
  std::string all_;
  size_t sent_ = 0;       // bytes of all_ returned as text
  bool in_call_ = false;  // from sent_ on, all_ is tool-call text
  bool never_ = false;    // the reply can no longer be a call (formats whose call is the whole reply)
};

// The whole reply at once (a ToolStream fed once).
ToolReply tool_reply_parse(ToolFormat format, const std::string& text);

// The grammar of a reply that is a call of one of `tools` (OpenAI "tools" entries: {"type": "function",
// "function": {"name", "parameters"}}), only `name` when not empty, several calls when `parallel` and the
// format allows them. Arguments follow each function's parameters schema (constrain/json_schema.h); throws
// constrain::SchemaError for a schema it cannot enforce (`where` prefixed by the tool's index). For Mistral
// the grammar starts after the [TOOL_CALLS] token (tool_call_prefix: the caller puts it in the prompt).
constrain::Grammar tool_call_grammar(ToolFormat format, const nlohmann::ordered_json& tools, const std::string& name,
                                     bool parallel);
// Text the prompt must end with for tool_call_grammar ("[TOOL_CALLS]" for Mistral, else "").
std::string tool_call_prefix(ToolFormat format);

}  // namespace hearth::chat
