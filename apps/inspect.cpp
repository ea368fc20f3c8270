// hearth inspect: what a model folder or GGUF file holds — architecture, parameters, dtypes (ggml types for
// GGUF), context, tokenizer. Reads only config files, safetensors headers or GGUF metadata (no weights), unless
// --verify: then every weight is read and checked for NaN/Inf (exit 4 when any is found).
#include <iostream>
#include <map>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "apps/commands.h"
#include "core/error.h"
#include "core/progress.h"
#include "model/checkpoint.h"
#include "io/gguf.h"
#include "io/safetensors.h"
#include "model/config.h"
#include "model/gguf_model.h"
#include "tokenizer/tokenizer.h"

namespace hearth::app {
namespace {

struct InspectOptions {
  std::string model;
  bool verify = false;
};

// What the weights of a model are stored as: parameters and bytes per dtype (or ggml type), file count.
struct WeightSummary {
  std::map<std::string, int64_t> dtypes;  // dtype -> parameters
  int64_t params = 0;
  size_t bytes = 0, files = 0;
};

WeightSummary weights_of(const std::filesystem::path& model, model::ModelConfig& c) {
  WeightSummary w;
  auto add = [&](std::string dtype, int64_t n, size_t bytes) {
    w.dtypes[dtype] += n;
    w.params += n;
    w.bytes += bytes;
  };
  if (model.extension() == ".gguf" && !std::filesystem::is_directory(model)) {
    auto file = io::GgufFile::open(model);
    c = model::gguf_config(*file);
    for (const auto& t : file->tensors()) add(std::string(quant::ggml_type_name(t.type)), t.numel(), t.nbytes);
    w.files = 1;
    return w;
  }
  c = model::config_load(model);
  auto archive = io::SafetensorsArchive::open(model);
  for (const auto& name : archive.names()) {
    const auto* t = archive.find(name);
    add(std::string(io::dtype_name(t->dtype)), t->numel(), t->nbytes);
  }
  w.files = archive.files().size();
  return w;
}

void run_inspect(const InspectOptions& o, const GlobalOptions& g) {
  model_dir_check(o.model);
  model::ModelConfig c;
  const WeightSummary w = weights_of(o.model, c);
  const auto& dtypes = w.dtypes;
  const int64_t params = w.params;
  const size_t bytes = w.bytes;
  auto tok = tokenizer::Tokenizer::load(o.model);
  bool has_template = tok.config().is_object() && tok.config().contains("chat_template");
  nlohmann::json j = {
      {"model_type", c.model_type},
      {"architectures", c.architectures},
      {"parameters", params},
      {"weight_bytes", bytes},
      {"dtypes", dtypes},
      {"files", w.files},
      {"context", c.max_position_embeddings},
      {"vocab_size", c.vocab_size},
      {"hidden_size", c.hidden_size},
      {"intermediate_size", c.intermediate_size},
      {"num_hidden_layers", c.num_hidden_layers},
      {"num_attention_heads", c.num_attention_heads},
      {"num_key_value_heads", c.num_key_value_heads},
      {"head_dim", c.head_dim},
      {"rope_theta", c.rope_theta},
      {"rope_scaling", c.rope_scaling.rope_type},
      {"tie_word_embeddings", c.tie_word_embeddings},
      {"qkv_bias", c.qkv_bias},
      {"qk_norm", c.qk_norm},
      {"eos_token_id", c.eos_token_id},
      {"tokenizer", tok.summary()},
      {"chat_template", has_template},
  };
  std::vector<model::NonFiniteTensor> bad;
  if (o.verify) {
    Progress bar("verify", 0, "tensors");
    bad = model::weights_non_finite(o.model, [&bar](size_t done, size_t) { bar.update(done); });
    bar.finish();
    nlohmann::json list = nlohmann::json::array();
    for (const auto& b : bad) list.push_back({{"tensor", b.name}, {"non_finite", b.count}, {"numel", b.numel}});
    j["verify"] = {{"ok", bad.empty()}, {"non_finite_tensors", list}};
  }
  // Non-finite weights are a format error (exit 4) naming the tensors; with --json the error object replaces the
  // summary (one JSON object per run).
  auto verdict = [&] {
    if (bad.empty()) return;
    std::string list;
    for (size_t i = 0; i < bad.size() && i < 5; ++i)
      list += fmt::format("{}'{}' ({} of {})", i ? ", " : "", bad[i].name, bad[i].count, bad[i].numel);
    throw FormatError(fmt::format("{}: {} weight tensor(s) hold NaN or Inf values: {}{}; the model would produce "
                                  "garbage",
                                  o.model, bad.size(), list, bad.size() > 5 ? ", ..." : ""));
  };
  if (g.json) {
    verdict();
    json_print(j);
    return;
  }
  std::cout << fmt::format("model        {} ({})\n", o.model, c.model_type);
  std::cout << fmt::format("parameters   {} ({:.2f} M), {:.1f} MiB in {} file(s)\n", params, params / 1e6,
                           bytes / 1048576.0, w.files);
  std::string dt;
  for (const auto& [k, v] : dtypes) dt += fmt::format("{}{}: {}", dt.empty() ? "" : ", ", k, v);
  std::cout << fmt::format("dtypes       {}\n", dt);
  std::cout << fmt::format("layers       {} × (hidden {}, ffn {}, heads {} / kv {} × {})\n", c.num_hidden_layers,
                           c.hidden_size, c.intermediate_size, c.num_attention_heads, c.num_key_value_heads,
                           c.head_dim);
  std::cout << fmt::format("context      {} tokens, rope theta {} ({})\n", c.max_position_embeddings, c.rope_theta,
                           c.rope_scaling.rope_type);
  std::cout << fmt::format("features     tied embeddings: {}, qkv bias: {}, qk norm: {}\n", c.tie_word_embeddings,
                           c.qkv_bias, c.qk_norm);
  std::cout << fmt::format("eos ids      [{}]\n", fmt::join(c.eos_token_id, ", "));
  std::cout << fmt::format("tokenizer    {}\n", tok.summary());
  std::cout << fmt::format("chat tmpl    {}\n", has_template ? "yes" : "no (fallback used)");
  if (o.verify) {
    std::cout << fmt::format("verify       {}\n", bad.empty() ? "every weight is finite" : "NON-FINITE WEIGHTS:");
    for (const auto& b : bad) std::cout << fmt::format("  {}: {} of {} values are NaN or Inf\n", b.name, b.count, b.numel);
  }
  verdict();
}

}  // namespace

void add_inspect(CLI::App& app, const GlobalOptions& g, Runner& run) {
  auto o = std::make_shared<InspectOptions>();
  auto* cmd = app.add_subcommand("inspect", "Describe a model folder: architecture, parameters, dtypes, tokenizer");
  model_option_add(cmd, o->model, "Model folder (Hugging Face layout) or GGUF file")->required();
  cmd->add_flag("--verify", o->verify, "Read every weight and check it is finite (exit 4 if not)");
  cmd->callback([o, &g, &run] { run = [o, &g] { run_inspect(*o, g); }; });
}

}  // namespace hearth::app
