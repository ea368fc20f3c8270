// hearth chat: chat with a model in the terminal (a REPL with the model's chat template), or one reply per
// line of piped input. The loop lives in lib/infer (chat_repl.h); this file turns options into it.
#include <unistd.h>

#include <filesystem>

#include <fmt/format.h>

#include "apps/commands.h"
#include "core/error.h"
#include "infer/chat_repl.h"
#include "infer/generator.h"
#include "model/causal_lm.h"
#include "tokenizer/tokenizer.h"

namespace hearth::app {
namespace {

struct ChatOptions {
  std::string model;
  std::string adapter;
  std::string system;
  int max_tokens = 256;  // per reply
  infer::SamplingParams sampling;
  std::vector<std::string> stop;
  std::string dtype = "float32";
};

void run_chat(const ChatOptions& o, const GlobalOptions& g) {
  model_dir_check(o.model);
  infer::ChatSessionOptions session_options;
  session_options.max_tokens = o.max_tokens;
  session_options.sampling = o.sampling;
  session_options.stop = o.stop;
  session_options.origin = (std::filesystem::path(o.model) / "tokenizer_config.json").string();
  if (o.max_tokens < 0) throw ConfigError(fmt::format("--max-tokens: expected >= 0, got {}", o.max_tokens));
  o.sampling.validate();
  model::LoadOptions load{model::device_parse(g.device, "--device"), model::dtype_parse(o.dtype, "--dtype")};
  session_options.device = load.device;
  auto tokenizer = tokenizer::Tokenizer::load(o.model);
  auto model_owner = model::causal_lm_load(o.model, load);
  infer::vocab_check(tokenizer, model_owner->config(), o.model);

  infer::ChatSession session(*model_owner, tokenizer, session_options);
  if (!o.adapter.empty()) session.adapter_use(o.adapter);
  session.conversation().system_set(o.system);
  infer::ChatReplOptions repl;
  repl.json = g.json;
  repl.interactive = !g.json && ::isatty(STDIN_FILENO);
  repl.banner = fmt::format("hearth chat: {}{} ({} tokens of context). /help for commands, Ctrl-D or /exit to leave.",
                            o.model, session.adapter_name().empty() ? "" : " + " + session.adapter_name(),
                            session.context());
  infer::chat_repl_run(session, repl);
}

}  // namespace

void add_chat(CLI::App& app, const GlobalOptions& g, Runner& run) {
  auto o = std::make_shared<ChatOptions>();
  auto* cmd = app.add_subcommand("chat", "Chat with a model in the terminal (or one reply per line of piped input)");
  cmd->add_option("-m,--model", o->model, "Model folder (Hugging Face layout) or GGUF file")->required();
  cmd->add_option("--adapter", o->adapter, "LoRA adapter folder (PEFT format); /adapter changes it");
  cmd->add_option("--system", o->system, "System message; /system changes it");
  cmd->add_option("-n,--max-tokens", o->max_tokens, "Most tokens per reply (default 256)");
  sampling_options_add(*cmd, o->sampling, o->stop);
  cmd->add_option("--dtype", o->dtype, "float32|bfloat16 (default float32)");
  cmd->callback([o, &g, &run] { run = [o, &g] { run_chat(*o, g); }; });
}

}  // namespace hearth::app
