// The subcommands, one file each: add_<cmd>() registers the options and the callback that runs it.
#pragma once

#include <functional>

#include "apps/common.h"

namespace hearth::app {

// Each add_<cmd> sets `run` to the subcommand's action when the subcommand is selected on the command line.
using Runner = std::function<void()>;

void add_generate(CLI::App& app, const GlobalOptions& g, Runner& run);
void add_chat(CLI::App& app, const GlobalOptions& g, Runner& run);  // the terminal REPL, or lines from a pipe
void add_eval(CLI::App& app, const GlobalOptions& g, Runner& run);
void add_inspect(CLI::App& app, const GlobalOptions& g, Runner& run);
void add_tokenize(CLI::App& app, const GlobalOptions& g, Runner& run);  // tokenize and detokenize
void add_chat_template(CLI::App& app, const GlobalOptions& g, Runner& run);
void add_ingest(CLI::App& app, const GlobalOptions& g, Runner& run);
void add_dataset(CLI::App& app, const GlobalOptions& g, Runner& run);  // dataset inspect
void add_finetune_lora(CLI::App& app, const GlobalOptions& g, Runner& run);
void add_report(CLI::App& app, const GlobalOptions& g, Runner& run);
void add_serve(CLI::App& app, const GlobalOptions& g, Runner& run);
void add_quantize(CLI::App& app, const GlobalOptions& g, Runner& run);  // HF folder / GGUF -> GGUF
void add_export(CLI::App& app, const GlobalOptions& g, Runner& run);    // hf, peft, gguf, gguf-lora, ollama
void add_pull(CLI::App& app, const GlobalOptions& g, Runner& run);      // Hub -> the Hugging Face cache
void add_list(CLI::App& app, const GlobalOptions& g, Runner& run);      // the cached models
void add_rm(CLI::App& app, const GlobalOptions& g, Runner& run);        // a cached model deleted

}  // namespace hearth::app
