// hearth generate: text from a prompt, streamed to stdout (or one JSON object with --json).
#include <iostream>
#include <optional>

#include <fmt/format.h>

#include "apps/commands.h"
#include "chat/prompt.h"
#include "constrain/json_schema.h"
#include "core/error.h"
#include "core/log.h"
#include "infer/generator.h"
#include "model/causal_lm.h"
#include "tokenizer/tokenizer.h"

namespace hearth::app {
namespace {

struct GenerateOptions {
  std::string model;
  std::string prompt;
  std::string prompt_file;
  int max_tokens = 256;
  int64_t ctx_size = 0;  // 0: the model's context
  infer::SamplingParams sampling;
  std::vector<std::string> stop;
  std::string dtype = "float32";
  bool no_special = false;
  bool chat = false;
  std::string adapter;
  std::string system;
  std::string json_schema;  // file
};

// --json-schema FILE -> the grammar its schema compiles to. Throws ConfigError naming the file.
constrain::Grammar schema_file_grammar(const std::string& path) {
  const std::string text = text_file_read(path, "--json-schema");
  nlohmann::ordered_json schema;
  try {
    schema = nlohmann::ordered_json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw ConfigError(fmt::format("--json-schema {}: not JSON ({})", path, e.what()));
  }
  try {
    return constrain::json_schema_grammar(schema);
  } catch (const constrain::SchemaError& e) {
    throw ConfigError(fmt::format("--json-schema {}: {}", path, e.what()));
  }
}

void run_generate(const GenerateOptions& o, const GlobalOptions& g) {
  model_dir_check(o.model);
  std::string prompt = o.prompt_file.empty() ? o.prompt : text_file_read(o.prompt_file, "--prompt-file");
  if (o.max_tokens < 0) throw ConfigError(fmt::format("--max-tokens: expected >= 0, got {}", o.max_tokens));
  if (o.ctx_size < 0) throw ConfigError(fmt::format("--ctx-size: expected >= 0, got {}", o.ctx_size));
  o.sampling.validate();
  std::optional<constrain::Grammar> grammar;
  if (!o.json_schema.empty()) grammar = schema_file_grammar(o.json_schema);
  model::LoadOptions load{model::device_parse(g.device, "--device"), model::dtype_parse(o.dtype, "--dtype")};
  auto tokenizer = tokenizer::Tokenizer::load(o.model);
  auto model_owner = model::causal_lm_load(o.model, load);
  const model::CausalLM& model = *model_owner;
  infer::vocab_check(tokenizer, model.config(), o.model);
  std::optional<model::LoraAdapter> adapter;
  if (!o.adapter.empty()) adapter = model::LoraAdapter::load(o.adapter, model.config(), load.device);

  infer::GenerationRequest request;
  if (o.chat) {
    nlohmann::json messages = nlohmann::json::array();
    if (!o.system.empty()) messages.push_back({{"role", "system"}, {"content", o.system}});
    messages.push_back({{"role", "user"}, {"content", prompt}});
    chat::ChatPromptOptions chat_options;
    chat_options.add_generation_prompt = true;
    chat_options.origin = (std::filesystem::path(o.model) / "tokenizer_config.json").string();
    request.prompt = chat::chat_prompt_encode(tokenizer, messages, chat_options).ids;
  } else {
    tokenizer::EncodeOptions enc;
    enc.parse_special = !o.no_special;
    request.prompt = tokenizer.encode(prompt, enc);
  }
  if (request.prompt.empty()) {
    auto bos = tokenizer.bos_id();
    if (!bos) throw ConfigError("--prompt: empty, and the tokenizer has no BOS token to start from");
    request.prompt.push_back(*bos);
  }
  request.max_tokens = o.max_tokens;
  request.sampling = o.sampling;
  request.stop = o.stop;
  if (o.chat)  // a model without a chat template: the fallback's end of turn is text (chat/prompt.h)
    for (auto& s : chat::chat_stop_strings(tokenizer)) request.stop.push_back(s);
  request.stop_token_ids = infer::stop_ids_default(model, tokenizer);
  request.adapter = adapter ? &*adapter : nullptr;
  if (grammar) {
    auto trie = std::make_shared<const constrain::TokenTrie>(tokenizer.token_bytes_all());
    request.grammar = std::make_shared<const constrain::TokenGrammar>(std::move(*grammar), trie, request.stop_token_ids);
  }

  infer::TextCallback stream;
  if (!g.json) stream = [](size_t, const std::string& text) { std::cout << text << std::flush; };
  infer::GenerationStats stats;
  auto results = infer::generate(model, tokenizer, {request}, stream, &stats, o.ctx_size);
  const auto& r = results.front();
  double prefill_tps = stats.prefill_seconds > 0 ? stats.prefill_tokens / stats.prefill_seconds : 0;
  double decode_tps = stats.decode_seconds > 0 ? stats.decode_tokens / stats.decode_seconds : 0;
  if (g.json) {
    json_print({{"text", r.text},
                {"token_ids", r.tokens},
                {"prompt_tokens", r.prompt_tokens},
                {"completion_tokens", r.tokens.size()},
                {"prefill_tokens_per_s", prefill_tps},
                {"decode_tokens_per_s", decode_tps},
                {"finish_reason", r.finish_reason}});
  } else {
    std::cout << std::endl;
    log::info("{} prompt tokens, {} generated ({}); prefill {:.1f} tok/s, decode {:.1f} tok/s", r.prompt_tokens,
              r.tokens.size(), r.finish_reason, prefill_tps, decode_tps);
  }
}

}  // namespace

void add_generate(CLI::App& app, const GlobalOptions& g, Runner& run) {
  auto o = std::make_shared<GenerateOptions>();
  auto* cmd = app.add_subcommand("generate", "Generate text from a prompt (streams to stdout)");
  model_option_add(cmd, o->model, "Model folder (Hugging Face layout)")->required();
  auto* p = cmd->add_option("-p,--prompt", o->prompt, "Prompt text");
  auto* pf = cmd->add_option("--prompt-file", o->prompt_file, "Read the prompt from a file");
  p->excludes(pf);
  cmd->add_option("-n,--max-tokens", o->max_tokens, "Most tokens to generate (default 256)");
  cmd->add_option("-c,--ctx-size", o->ctx_size,
                  "Context in tokens, prompt and reply (default and most: the model's max_position_embeddings)");
  sampling_options_add(*cmd, o->sampling, o->stop);
  cmd->add_option("--dtype", o->dtype, "float32|bfloat16 (default float32)");
  cmd->add_flag("--no-special", o->no_special, "Treat special-token text in the prompt as plain text");
  cmd->add_option("--adapter", o->adapter, "LoRA adapter folder (PEFT format, e.g. RUN_DIR/adapters/latest)");
  cmd->add_flag("--chat", o->chat, "Wrap the prompt as a user turn with the model's chat template");
  cmd->add_option("--system", o->system, "System message (with --chat)");
  cmd->add_option("--json-schema", o->json_schema,
                  "Constrain the output to JSON valid against this JSON Schema file (docs/cli.md lists the keywords)");
  cmd->callback([o, &g, &run] { run = [o, &g] { run_generate(*o, g); }; });
}

}  // namespace hearth::app
