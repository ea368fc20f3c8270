// hearth chat-template: renders a conversation with a model's chat template (and optionally tokenizes it),
// for debugging templates and for scripts.
#include <iostream>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "apps/commands.h"
#include "chat/prompt.h"
#include "core/error.h"
#include "io/json_file.h"
#include "tokenizer/tokenizer.h"

namespace hearth::app {
namespace {

struct ChatTemplateOptions {
  std::string model;
  std::string messages;
  std::string tools;
  bool add_generation_prompt = false;
  bool tokenize = false;
};

// Reads an ordered JSON file (key order matters for `tojson` in templates).
nlohmann::ordered_json ordered_read(const std::string& path, const std::string& option) {
  std::string text = text_file_read(path, option);
  try {
    return io::json_parse_bounded<nlohmann::ordered_json>(text);
  } catch (const io::JsonTooDeep& e) {
    throw FormatError(fmt::format("{}: {}: invalid JSON; {}", option, path, e.what()));
  } catch (const nlohmann::json::parse_error& e) {
    throw FormatError(fmt::format("{}: {}: invalid JSON at byte {}", option, path, e.byte));
  } catch (const nlohmann::json::exception& e) {  // a number out of range, such as 1e400
    throw FormatError(fmt::format("{}: {}: invalid JSON; {}", option, path, e.what()));
  }
}

void run_chat_template(const ChatTemplateOptions& o, const GlobalOptions& g) {
  auto tok = tokenizer::Tokenizer::load(o.model);
  auto messages = ordered_read(o.messages, "--messages");
  if (messages.is_object() && messages.contains("messages")) messages = messages["messages"];
  if (!messages.is_array())
    throw FormatError(
        fmt::format("--messages: {}: expected a JSON array of {{\"role\", \"content\"}} objects (or an "
                    "object with \"messages\"), got {}",
                    o.messages, messages.type_name()));
  chat::ChatPromptOptions options;
  options.add_generation_prompt = o.add_generation_prompt;
  if (!o.tools.empty()) options.tools = ordered_read(o.tools, "--tools");
  options.origin = (std::filesystem::path(o.model) / "tokenizer_config.json").string();
  chat::ChatPrompt chat_prompt = chat::chat_prompt_encode(tok, messages, options);
  const std::string& prompt = chat_prompt.text;
  if (g.json) {
    nlohmann::json j = {{"prompt", prompt}};
    if (o.tokenize) j["token_ids"] = chat_prompt.ids;
    json_print(j);
    return;
  }
  std::cout << prompt;
  if (o.tokenize) {
    std::cout << (prompt.empty() || prompt.back() == '\n' ? "" : "\n");
    std::cout << fmt::format("{}", fmt::join(chat_prompt.ids, " "));
  }
  std::cout << std::endl;
}

}  // namespace

void add_chat_template(CLI::App& app, const GlobalOptions& g, Runner& run) {
  auto o = std::make_shared<ChatTemplateOptions>();
  auto* cmd = app.add_subcommand("chat-template", "Render a conversation with the model's chat template");
  model_option_add(cmd, o->model, "Model folder (its tokenizer_config.json)")->required();
  cmd->add_option("--messages", o->messages, "JSON file: [{\"role\", \"content\"}, ...]")->required();
  cmd->add_option("--tools", o->tools, "JSON file: a list of tool (function) definitions");
  cmd->add_flag("--add-generation-prompt", o->add_generation_prompt, "End with the assistant turn's header");
  cmd->add_flag("--tokenize", o->tokenize, "Also print the token ids of the rendered prompt");
  cmd->callback([o, &g, &run] { run = [o, &g] { run_chat_template(*o, g); }; });
}

}  // namespace hearth::app
