// Tool calls: the format detected from real template texts (tests/fixtures/chat_templates, written from the
// families' published prompt formats), replies split into text and calls, streaming that never shows part of
// a call as text, and the call grammar accepting exactly what each family's template renders for a call.
#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>

#include "chat/chat_template.h"
#include "chat/tool_calls.h"
#include "constrain/matcher.h"
#include "test_paths.h"

using namespace hearth::chat;
using ojson = nlohmann::ordered_json;

namespace {

nlohmann::json config_of(const std::string& fixture) {
  std::ifstream in(hearth::test::fixtures_dir() / "chat_templates" / fixture);
  std::stringstream ss;
  ss << in.rdbuf();
  return {{"chat_template", ss.str()}, {"bos_token", "<s>"}, {"eos_token", "</s>"}};
}

const ojson kTools = ojson::parse(R"([
  {"type":"function","function":{"name":"get_weather","description":"Weather in a city",
    "parameters":{"type":"object","properties":{"city":{"type":"string"},"unit":{"enum":["c","f"]}},
                  "required":["city"],"additionalProperties":false}}},
  {"type":"function","function":{"name":"add","parameters":{"type":"object","properties":{"a":{"type":"integer"},
    "b":{"type":"integer"}},"required":["a","b"],"additionalProperties":false}}}])");

bool grammar_accepts(const hearth::constrain::Grammar& g, const std::string& text) {
  hearth::constrain::Matcher m(g);
  auto s = m.start();
  return m.advance(s, text) && hearth::constrain::Matcher::accepting(s);
}

// What `fixture` renders for an assistant turn with `calls` (OpenAI tool_calls, arguments as objects), without
// the text before it.
std::string rendered_call(const std::string& fixture, const ojson& calls, const std::string& before,
                          const std::string& after) {
  ojson messages = ojson::array({{{"role", "user"}, {"content", "hi"}}});
  const std::string head = chat_template_apply(config_of(fixture), messages, true, kTools);
  messages.push_back({{"role", "assistant"}, {"content", nullptr}, {"tool_calls", calls}});
  const std::string all = chat_template_apply(config_of(fixture), messages, false, kTools);
  const size_t b = all.find(before, head.size() > 40 ? head.size() - 40 : 0);
  REQUIRE(b != std::string::npos);
  const size_t e = all.rfind(after);
  REQUIRE(e != std::string::npos);
  return all.substr(b, e - b);
}

}  // namespace

TEST_CASE("tool calls: the format comes from the chat template", "[chat]") {
  CHECK(tool_style_detect(config_of("qwen25.jinja")).format == ToolFormat::kHermes);
  CHECK(tool_style_detect(config_of("qwen25.jinja")).template_has_tools);
  CHECK(tool_style_detect(config_of("llama31_tools.jinja")).format == ToolFormat::kLlama3Json);
  CHECK(tool_style_detect(config_of("mistral_v03.jinja")).format == ToolFormat::kMistral);
  CHECK_FALSE(tool_style_detect(config_of("chatml.jinja")).template_has_tools);
  CHECK_FALSE(tool_style_detect(nlohmann::json::object()).template_has_tools);
}

TEST_CASE("tool calls: replies split into text and calls in each format", "[chat]") {
  auto r = tool_reply_parse(ToolFormat::kHermes,
                            "Let me look.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n"
                            "</tool_call>\n<tool_call>\n{\"name\": \"add\", \"arguments\": {\"a\": 1, \"b\": 2}}\n</tool_call>");
  CHECK(r.content == "Let me look.");
  REQUIRE(r.calls.size() == 2);
  CHECK(r.calls[0].name == "get_weather");
  CHECK(r.calls[0].arguments == R"({"city":"Paris"})");
  CHECK(r.calls[1].arguments == R"({"a":1,"b":2})");
  CHECK(r.calls[0].id.rfind("call_", 0) == 0);
  CHECK(r.calls[0].id.size() == 29);
  CHECK(r.calls[0].id != r.calls[1].id);
  // Malformed: the whole reply stays text.
  r = tool_reply_parse(ToolFormat::kHermes, "x <tool_call>\n{\"name\": \"add\", \"arguments\": {\"a\": 1\n</tool_call>");
  CHECK(r.calls.empty());
  CHECK(r.content == "x <tool_call>\n{\"name\": \"add\", \"arguments\": {\"a\": 1\n</tool_call>");

  r = tool_reply_parse(ToolFormat::kLlama3Json, " {\"name\": \"add\", \"parameters\": {\"a\": 3, \"b\": 4}}");
  REQUIRE(r.calls.size() == 1);
  CHECK(r.calls[0].arguments == R"({"a":3,"b":4})");
  CHECK(r.content.empty());
  CHECK(tool_reply_parse(ToolFormat::kLlama3Json, "<|python_tag|>{\"name\": \"f\", \"parameters\": {}}").calls.size() == 1);
  r = tool_reply_parse(ToolFormat::kLlama3Json, "Sure: {\"name\": \"f\"}");
  CHECK(r.calls.empty());
  CHECK(r.content == "Sure: {\"name\": \"f\"}");

  r = tool_reply_parse(ToolFormat::kMistral,
                       "[TOOL_CALLS] [{\"name\": \"add\", \"arguments\": {\"a\": 1, \"b\": 2}}, "
                       "{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\"}}]");
  REQUIRE(r.calls.size() == 2);
  CHECK(r.calls[1].name == "get_weather");
  CHECK(r.calls[0].id.size() == 9);  // Mistral's template refuses other ids
}

TEST_CASE("tool calls: streaming never shows part of a call as text", "[chat]") {
  const std::string reply =
      "Checking <tool now.\n<tool_call>\n{\"name\": \"add\", \"arguments\": {\"a\": 1, \"b\": 2}}\n</tool_call>";
  ToolStream s(ToolFormat::kHermes);
  std::string shown;
  for (char c : reply) {
    shown += s.push(std::string(1, c));
    CHECK(shown.find("<tool_call") == std::string::npos);
  }
  CHECK(shown == "Checking <tool now.\n");  // "<tool" was held back until it could not be the marker
  const ToolReply r = s.finish();
  REQUIRE(r.calls.size() == 1);
  CHECK(r.content.empty());
  // Llama 3: a reply that starts as text streams at once; one that starts with '{' is held whole.
  ToolStream t(ToolFormat::kLlama3Json);
  CHECK(t.push("  ").empty());
  CHECK(t.push("Hi") == "  Hi");
  CHECK(t.push(" there {") == " there {");
  ToolStream u(ToolFormat::kLlama3Json);
  CHECK(u.push("{\"name\": \"f\", ").empty());
  CHECK(u.push("\"parameters\": {}}").empty());
  CHECK(u.finish().calls.size() == 1);
}

TEST_CASE("tool calls: the grammar accepts what each family's template renders for a call", "[chat]") {
  const ojson call = ojson::parse(R"([{"id":"abcdefghi","type":"function",
    "function":{"name":"get_weather","arguments":{"city":"Paris","unit":"c"}}}])");
  // Qwen2.5 (Hermes).
  const std::string qwen = rendered_call("qwen25.jinja", call, "<tool_call>", "<|im_end|>");
  CHECK(qwen == "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"unit\": \"c\"}}\n</tool_call>");
  const auto hermes = tool_call_grammar(ToolFormat::kHermes, kTools, "", true);
  CHECK(grammar_accepts(hermes, qwen));
  CHECK(grammar_accepts(hermes, qwen + "\n" + qwen));
  CHECK_FALSE(grammar_accepts(tool_call_grammar(ToolFormat::kHermes, kTools, "", false), qwen + "\n" + qwen));
  CHECK_FALSE(grammar_accepts(tool_call_grammar(ToolFormat::kHermes, kTools, "add", true), qwen));
  CHECK_FALSE(grammar_accepts(hermes, "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"unit\": \"c\"}}\n</tool_call>"));
  CHECK(tool_reply_parse(ToolFormat::kHermes, qwen).calls.at(0).arguments == R"({"city":"Paris","unit":"c"})");
  // Llama 3.1.
  const std::string llama = rendered_call("llama31_tools.jinja", call, "{\"name\"", "<|eot_id|>");
  CHECK(grammar_accepts(tool_call_grammar(ToolFormat::kLlama3Json, kTools, "", true), llama));
  CHECK(tool_reply_parse(ToolFormat::kLlama3Json, llama).calls.at(0).name == "get_weather");
  // Mistral v0.3: the template writes "[TOOL_CALLS] [...]"; the grammar starts after the marker, and its
  // calls carry no id (the template adds the id to what the model wrote).
  const std::string mistral = rendered_call("mistral_v03.jinja", call, "[TOOL_CALLS]", "</s>");
  CHECK(mistral.rfind("[TOOL_CALLS] [{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"unit\": \"c\"}", 0) == 0);
  CHECK(grammar_accepts(tool_call_grammar(ToolFormat::kMistral, kTools, "", true),
                        " [{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"unit\": \"c\"}}]"));
  CHECK(tool_reply_parse(ToolFormat::kMistral, mistral).calls.at(0).arguments == R"({"city":"Paris","unit":"c"})");
  CHECK(tool_call_prefix(ToolFormat::kMistral) == "[TOOL_CALLS]");
}

TEST_CASE("tool calls: a template without tools gets them described and calls written back as blocks", "[chat]") {
  const ojson messages = ojson::parse(R"([{"role":"system","content":"Be brief."},{"role":"user","content":"2+3?"},
    {"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function",
      "function":{"name":"add","arguments":{"a":2,"b":3}}}]},
    {"role":"tool","tool_call_id":"call_1","content":"5"}])");
  const ojson out = tool_messages_fallback(messages, kTools);
  REQUIRE(out.size() == 4);
  CHECK(out[0]["content"].get<std::string>().rfind("Be brief.\n\nFunctions you can call", 0) == 0);
  CHECK(out[0]["content"].get<std::string>().find(kTools[1].dump()) != std::string::npos);
  CHECK(out[2]["content"] == "<tool_call>\n{\"name\":\"add\",\"arguments\":{\"a\":2,\"b\":3}}\n</tool_call>");
  CHECK(out[3] == ojson({{"role", "user"}, {"content", "<tool_response>\n5\n</tool_response>"}}));
  CHECK(tool_reply_parse(ToolFormat::kHermes, out[2]["content"]).calls.at(0).arguments == R"({"a":2,"b":3})");
}
