// hearth quantize: a Hugging Face folder, or a GGUF in F32/F16/BF16, -> one GGUF file at the chosen type, with
// llama.cpp's tensor names, metadata and quantization mix (lib/convert, docs/quantize.md). A summary goes to
// stdout (one JSON object with --json); progress and logs to stderr.
#include <iostream>

#include <fmt/format.h>

#include "apps/commands.h"
#include "convert/gguf_model_write.h"
#include "convert/model_input.h"
#include "convert/tensor_source.h"
#include "core/error.h"
#include "core/progress.h"

namespace hearth::app {
namespace {

namespace fs = std::filesystem;

struct QuantizeCliOptions {
  std::string model, out, type;
};

nlohmann::json summary_json(const convert::QuantizeSummary& s, const convert::ModelInput& in,
                            const std::string& model) {
  nlohmann::json fallbacks = nlohmann::json::array();
  for (const auto& f : s.fallbacks)
    fallbacks.push_back(
        {{"tensor", f.tensor}, {"wanted", quant::ggml_type_name(f.wanted)}, {"used", quant::ggml_type_name(f.used)}});
  const auto& info = convert::quant_type_info(s.type);
  return {{"out", s.path.string()},
          {"model", model},
          {"source", in.kind},
          {"type", info.name},
          {"file_type", info.llama_ftype},
          {"architecture", s.architecture},
          {"tensors", s.tensors},
          {"parameters", s.parameters},
          {"bytes", s.file_bytes},
          {"tensor_bytes", s.tensor_bytes},
          {"bits_per_weight", s.bits_per_weight},
          {"seconds", s.seconds},
          {"types", s.tensors_per_type},
          {"fallbacks", fallbacks},
          {"tokenizer_embedded", !in.tokenizer.empty()}};
}

void summary_print(const convert::QuantizeSummary& s, const convert::ModelInput& in) {
  const auto& info = convert::quant_type_info(s.type);
  std::cout << fmt::format(
      "{}: {} ({}, file type {}), {} tensors, {:.2f} M weights, {:.2f} MiB, {:.2f} bits per "
      "weight, {:.1f} s\n",
      s.path.string(), info.name, s.architecture, info.llama_ftype, s.tensors, s.parameters / 1e6,
      s.file_bytes / 1048576.0, s.bits_per_weight, s.seconds);
  std::string types;
  for (const auto& [t, n] : s.tensors_per_type) types += fmt::format("{}{} {}", types.empty() ? "" : ", ", t, n);
  std::cout << "  types: " << types << "\n";
  for (const auto& f : s.fallbacks)
    std::cout << fmt::format("  fallback: {} {} -> {} (row length not a multiple of the block)\n", f.tensor,
                             quant::ggml_type_name(f.wanted), quant::ggml_type_name(f.used));
  std::cout << "  tokenizer: " << (in.tokenizer.empty() ? "not embedded" : "embedded") << "\n";
}

void run_quantize(const QuantizeCliOptions& o, const GlobalOptions& g) {
  globals_apply(g);
  auto type = convert::quant_type_parse(o.type);
  if (!type)
    throw ConfigError(
        fmt::format("--type: unknown type '{}'; expected one of {}", o.type, convert::quant_type_names()));
  const fs::path model = o.model, out = o.out;
  std::error_code ec;
  if (fs::exists(out) && fs::equivalent(model, out, ec))
    throw ConfigError(fmt::format("--out: '{}' is the --model file itself; write to another file", out.string()));
  if (fs::is_directory(model)) model_dir_check(model);
  convert::ModelInput in = convert::model_input_open(model);
  convert::QuantizeOptions options;
  options.type = *type;
  options.name = in.name;
  options.threads = threads_resolve(g.threads);
  Progress bar("quantize", convert::gguf_model_plan(in.config, options.type).size(), "tensors");
  auto progress = [&bar](const convert::QuantizeProgress& p) {
    bar.update(p.done, fmt::format("{} {}", p.tensor->name.gguf, quant::ggml_type_name(p.tensor->type)));
  };
  auto summary = convert::gguf_model_write(out, in.config, in.source, options, in.tokenizer, progress);
  bar.finish();
  if (g.json) json_print(summary_json(summary, in, o.model));
  else summary_print(summary, in);
}

}  // namespace

void add_quantize(CLI::App& app, const GlobalOptions& g, Runner& run) {
  auto o = std::make_shared<QuantizeCliOptions>();
  auto* cmd = app.add_subcommand("quantize", "Write a model as a GGUF file (f32, f16, bf16, q8_0, q4_0, q6_k, q4_k_m)");
  model_option_add(cmd, o->model, "Hugging Face model folder, or a GGUF in F32/F16/BF16")->required();
  cmd->add_option("--type", o->type, "Output type: " + convert::quant_type_names())->required();
  cmd->add_option("--out", o->out, "The .gguf file to write (replaced atomically)")->required();
  cmd->callback([o, &g, &run] { run = [o, &g] { run_quantize(*o, g); }; });
}

}  // namespace hearth::app
