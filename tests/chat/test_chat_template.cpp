// Chat templates against goldens: the real Llama 3 and Qwen3 templates (from the fetched tokenizer_config.json
// files) and the fixture templates, rendered by @huggingface/jinja and cross-checked with Python jinja2 (see
// scripts/make_chat_goldens.mjs). Comparisons are byte-exact.
#include <catch2/catch.hpp>

#include "chat/fixed_clock.h"

#include <fstream>
#include <sstream>

#include "chat/chat_template.h"
#include "chat/jinja_eval.h"
#include "core/error.h"
#include "test_paths.h"

using hearth::chat::chat_template_apply;
using hearth::chat::ChatTemplate;
using hearth::chat::JinjaRaisedError;
using hearth::chat::JinjaRenderOptions;
using json = nlohmann::json;
using ojson = nlohmann::ordered_json;

using hearth::test::fixed_clock;

namespace {

std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in.good());
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

const ojson& goldens() {
  static const ojson g = ojson::parse(read_text(hearth::test::golden_dir() / "chat" / "chat_templates.json"));
  return g;
}

}  // namespace

TEST_CASE("chat goldens: every case renders byte-exact", "[chat]") {
  const ojson& g = goldens();
  REQUIRE(g["cases"].size() >= 100);
  size_t checked = 0, errors = 0;
  for (const auto& c : g["cases"]) {
    std::string name = c["template"].get<std::string>();
    const ojson& t = g["templates"][name];
    const ojson& conv = g["conversations"][c["conversation"].get<std::string>()];
    bool agp = c["add_generation_prompt"].get<bool>();
    ojson tools = conv.contains("tools") ? conv["tools"] : ojson(nullptr);
    INFO(name << " / " << c["conversation"].get<std::string>() << " / add_generation_prompt=" << agp);
    std::string got;
    try {
      if (t.contains("config")) {
        // What hearth itself does: chat_template_apply on the real tokenizer_config.json.
        json config = json::parse(read_text(hearth::test::assets_dir() / t["config"].get<std::string>()));
        got = chat_template_apply(config, conv["messages"], agp, tools, t["config"].get<std::string>());
      } else {
        auto tpl = ChatTemplate::parse(read_text(hearth::test::source_dir() / t["file"].get<std::string>()),
                                       t["file"].get<std::string>());
        ojson vars = t["tokens"];
        vars["messages"] = conv["messages"];
        vars["tools"] = tools;
        vars["documents"] = nullptr;
        vars["add_generation_prompt"] = agp;
        got = tpl.render(vars, fixed_clock());
      }
    } catch (const JinjaRaisedError& e) {
      REQUIRE(c.contains("error"));
      CHECK(e.message() == c["error"].get<std::string>());
      ++errors;
      ++checked;
      continue;
    }
    REQUIRE(c.contains("expected"));
    CHECK(got == c["expected"].get<std::string>());
    ++checked;
  }
  CHECK(checked == g["cases"].size());
  CHECK(errors >= 4);
}

TEST_CASE("chat goldens: the real templates are read from the fetched configs", "[chat]") {
  for (const char* family : {"llama3", "qwen3"}) {
    json config = json::parse(read_text(hearth::test::assets_dir() / family / "tokenizer_config.json"));
    auto tpl = ChatTemplate::from_tokenizer_config(config, std::string(family) + "/tokenizer_config.json");
    REQUIRE(tpl.has_value());
    CHECK(tpl->source() == config["chat_template"].get<std::string>());
  }
}

TEST_CASE("chat_template_apply: Qwen3 with and without tools", "[chat]") {
  json config = json::parse(read_text(hearth::test::assets_dir() / "qwen3" / "tokenizer_config.json"));
  ojson messages = ojson::array({{{"role", "user"}, {"content", "hi"}}});
  CHECK(chat_template_apply(config, messages, true) == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
  // Key order of tool schemas survives (ordered_json overload), as transformers keeps it.
  ojson tools = ojson::parse(R"([{"type":"function","function":{"name":"f","parameters":{"z":1,"a":2}}}])");
  std::string out = chat_template_apply(config, messages, false, tools);
  CHECK(out.find(R"({"type": "function", "function": {"name": "f", "parameters": {"z": 1, "a": 2}}})") !=
        std::string::npos);
}

TEST_CASE("chat_template_apply: special tokens, list templates and the fallback", "[chat]") {
  json messages = json::array({{{"role", "user"}, {"content", "hi"}}});
  json config = {{"bos_token", {{"content", "<s>"}, {"lstrip", false}}},
                 {"eos_token", "</s>"},
                 {"chat_template", "{{ bos_token }}|{{ eos_token }}|{{ tools is none }}|{{ messages[0].content }}"}};
  CHECK(chat_template_apply(config, messages, false) == "<s>|</s>|True|hi");

  json listed = {{"chat_template", json::array({{{"name", "default"}, {"template", "D"}},
                                                {{"name", "tool_use"}, {"template", "T{{ tools|length }}"}}})}};
  CHECK(chat_template_apply(listed, messages, false) == "D");
  CHECK(chat_template_apply(listed, messages, false, json::array({1})) == "T1");
  CHECK(ChatTemplate::from_tokenizer_config(listed, "cfg", "tool_use")->source() == "T{{ tools|length }}");
  CHECK_THROWS_AS(ChatTemplate::from_tokenizer_config(listed, "cfg", "nope"), hearth::FormatError);
  CHECK_THROWS_AS(ChatTemplate::from_tokenizer_config(json{{"chat_template", 5}}, "cfg"), hearth::FormatError);
  // A listed template whose name is not a string is a FormatError (nlohmann's type_error escaped).
  json odd = {
      {"chat_template", json::array({{{"name", 5}, {"template", "X"}}, {{"name", "default"}, {"template", "D"}}})}};
  CHECK_THROWS_AS(chat_template_apply(odd, messages, false), hearth::FormatError);
  CHECK_FALSE(ChatTemplate::from_tokenizer_config(json::object(), "cfg").has_value());
  CHECK_FALSE(ChatTemplate::from_tokenizer_config(json{{"chat_template", nullptr}}, "cfg").has_value());

  json none = json::object();
  CHECK(chat_template_apply(none, messages, true) == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
}

TEST_CASE("chat_template_apply: raise_exception reaches the caller with the template's message", "[chat]") {
  json config = json::object();
  config["chat_template"] = read_text(hearth::test::fixtures_dir() / "chat_templates" / "gemma.jinja");
  json messages = json::array({{{"role", "system"}, {"content", "x"}}, {{"role", "user"}, {"content", "y"}}});
  try {
    chat_template_apply(config, messages, true, nullptr, "gemma/tokenizer_config.json");
    FAIL("expected raise_exception");
  } catch (const JinjaRaisedError& e) {
    CHECK(e.message() == "System role not supported");
    CHECK(std::string(e.what()).find("gemma/tokenizer_config.json#chat_template:") == 0);
    CHECK(e.exit_code() == hearth::ExitCode::kFormat);
  }
}
