// Fuzz target: the Jinja chat-template engine (chat/chat_template.h) — lexer, parser, name checks, and rendering
// of whatever parses, with the variables hearth passes in (two conversations: one with a system prompt, tool calls,
// a tool result and a tools list, one plain; special tokens; add_generation_prompt).
//
// A template comes from a model's tokenizer_config.json or GGUF metadata, i.e. from whoever published the model:
// syntax errors, runtime errors and raise_exception() are FormatErrors; a crash, another exception type, a hang
// or runaway memory (libFuzzer's -timeout and -rss_limit_mb) are findings.
// Seeds: tests/fixtures/chat_templates/*.jinja (real templates and a syntax tour).
#include <cstdint>
#include <ctime>
#include <string>

#include <nlohmann/json.hpp>

#include "chat/chat_template.h"
#include "chat/jinja_eval.h"
#include "fuzz_util.h"

using namespace hearth;
using namespace hearth::fuzz;
using ojson = nlohmann::ordered_json;

namespace {

// The variables of two renders: a conversation with tool calls (which many templates refuse with
// raise_exception), and a plain system/user/assistant/user one that every template renders.
const ojson& variables(int which) {
  static const ojson tools = ojson::parse(R"({
    "messages": [
      {"role": "system", "content": "You are a helpful assistant."},
      {"role": "user", "content": "What is the weather in Paris?"},
      {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
        "function": {"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}}]},
      {"role": "tool", "tool_call_id": "call_1", "name": "get_weather", "content": "{\"temp\": 21}"},
      {"role": "assistant", "content": "It is 21 °C in Paris."},
      {"role": "user", "content": "Thanks! 日本語も"}
    ],
    "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather for a city",
      "parameters": {"type": "object", "properties": {"city": {"type": "string"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}, "required": ["city"]}}}],
    "documents": null,
    "add_generation_prompt": true,
    "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": null
  })");
  static const ojson plain = ojson::parse(R"({
    "messages": [
      {"role": "user", "content": "Hello!"},
      {"role": "assistant", "content": "Hi. How can I help?"},
      {"role": "user", "content": "  Tell me a joke\n  "}
    ],
    "tools": null,
    "documents": null,
    "add_generation_prompt": false,
    "bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"
  })");
  return which == 0 ? tools : plain;
}

chat::JinjaRenderOptions fixed_clock() {
  std::tm tm{};
  tm.tm_year = 2024 - 1900;
  tm.tm_mon = 6;
  tm.tm_mday = 26;
  tm.tm_hour = 12;
  chat::JinjaRenderOptions options;
  options.now = tm;
  return options;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz_expect_errors("chat_template", [&] {
    const auto tpl = chat::ChatTemplate::parse(std::string(fuzz_bytes(data, size)), "fuzz.jinja");
    for (int which : {0, 1}) {
      try {
        (void)tpl.render(variables(which), fixed_clock());
      } catch (const FormatError&) {  // a runtime error or raise_exception: try the other conversation too
      }
    }
  });
  return 0;
}
