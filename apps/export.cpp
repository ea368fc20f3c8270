// hearth export FORMAT: a model, with its LoRA adapter, in the formats other tools load (docs/export.md):
//   hf         merged weights as a Hugging Face folder (safetensors, sharded above --max-shard-size)
//   peft       the adapter alone as PEFT loads it, with a model card
//   gguf       merged and quantized (--type) into one GGUF with tokenizer, chat template and stop ids
//   gguf-lora  the adapter as a llama.cpp LoRA GGUF (llama-cli --lora, Ollama ADAPTER)
//   ollama     a folder with the GGUF(s) and a Modelfile for `ollama create`
// Every export carries its provenance (hearth_provenance.json and the model card in folders, hearth.* keys in
// GGUFs). Outputs appear complete or not at all; an existing --out is replaced only with --force. A summary
// goes to stdout (one JSON object with --json), progress and logs to stderr.
#include <chrono>
#include <iostream>

#include <fmt/format.h>

#include "apps/commands.h"
#include "chat/ollama.h"
#include "convert/gguf_lora_write.h"
#include "convert/gguf_model_write.h"
#include "convert/hf_export.h"
#include "convert/lora_merge.h"
#include "convert/model_input.h"
#include "convert/provenance.h"
#include "core/error.h"
#include "core/log.h"
#include "core/progress.h"
#include "io/atomic_file.h"
#include "io/gguf.h"
#include "io/json_file.h"
#include "model/gguf_model.h"
#include "model/lora.h"

#ifndef HEARTH_VERSION
#define HEARTH_VERSION "0.0.0"
#endif

namespace hearth::app {
namespace {

namespace fs = std::filesystem;

const char* const kFormats = "hf, peft, gguf, gguf-lora, ollama";

struct ExportCliOptions {
  std::string format, model, adapter, out;
  bool force = false;
  std::string dtype, max_shard_size, type, system, name;
  bool no_merge = false;
  bool allow_base_mismatch = false;
};

// Flags that only some formats use: anything else given is an error, never silently ignored.
void flags_check(const ExportCliOptions& o) {
  auto only = [&](bool given, const char* flag, std::initializer_list<const char*> formats) {
    if (!given) return;
    for (const char* f : formats)
      if (o.format == f) return;
    std::string list;
    for (const char* f : formats) list += (list.empty() ? "" : ", ") + std::string(f);
    throw ConfigError(fmt::format("{}: not used by 'export {}'; it applies to {}", flag, o.format, list));
  };
  only(!o.dtype.empty(), "--dtype", {"hf"});
  only(!o.max_shard_size.empty(), "--max-shard-size", {"hf"});
  only(!o.type.empty(), "--type", {"gguf", "ollama"});
  only(!o.system.empty(), "--system", {"ollama"});
  only(o.no_merge, "--no-merge", {"ollama"});
  only(!o.name.empty(), "--name", {"gguf", "gguf-lora", "ollama"});
  if (o.allow_base_mismatch && o.adapter.empty())
    throw ConfigError("--allow-base-mismatch: only meaningful with --adapter");
  const bool needs_adapter = o.format == "peft" || o.format == "gguf-lora" || o.no_merge;
  if (needs_adapter && o.adapter.empty())
    throw ConfigError(
        fmt::format("--adapter: 'export {}{}' exports an adapter; give its folder (e.g. "
                    "RUN_DIR/adapters/latest)",
                    o.format, o.no_merge ? " --no-merge" : ""));
}

// The config of a base, without opening its weights (a quantized GGUF is a valid base for peft and gguf-lora).
model::ModelConfig base_config(const fs::path& base) {
  if (fs::is_directory(base)) return model::config_load(base);
  return model::gguf_config(*io::GgufFile::open(base));
}

void out_check(const fs::path& out, bool force) {
  if (fs::exists(out) && !force)
    throw ConfigError(fmt::format("--out: '{}' exists; pass --force to replace it", out.string()));
  const fs::path parent = fs::absolute(out).parent_path();
  if (!fs::is_directory(parent)) throw IoError(fmt::format("--out: folder '{}' does not exist", parent.string()));
}

convert::QuantizeOptions gguf_options(const ExportCliOptions& o, const std::string& name, const GlobalOptions& g) {
  const std::string type = o.type.empty() ? "q8_0" : o.type;
  auto t = convert::quant_type_parse(type);
  if (!t)
    throw ConfigError(fmt::format("--type: unknown type '{}'; expected one of {}", type, convert::quant_type_names()));
  convert::QuantizeOptions options;
  options.type = *t;
  options.name = o.name.empty() ? name : o.name;
  options.threads = threads_resolve(g.threads);
  return options;
}

// Writes the (merged) model as one GGUF; returns its summary.
convert::QuantizeSummary gguf_write(const fs::path& path, const convert::ModelInput& in,
                                    const std::shared_ptr<const model::LoraAdapter>& adapter,
                                    const convert::QuantizeOptions& options, const convert::Provenance& prov) {
  convert::TensorSource source = adapter ? convert::tensor_source_merged(in.source, adapter) : in.source;
  std::vector<io::GgufKv> extra = in.tokenizer;
  for (auto& kv : convert::provenance_gguf(prov)) extra.push_back(std::move(kv));
  Progress bar("export", convert::gguf_model_plan(in.config, options.type).size(), "tensors");
  auto progress = [&bar](const convert::QuantizeProgress& p) {
    bar.update(p.done, fmt::format("{} {}", p.tensor->name.gguf, quant::ggml_type_name(p.tensor->type)));
  };
  auto summary = convert::gguf_model_write(path, in.config, source, options, extra, progress);
  bar.finish();
  return summary;
}

nlohmann::json gguf_summary_json(const convert::QuantizeSummary& s) {
  return {{"type", convert::quant_type_info(s.type).name},
          {"architecture", s.architecture},
          {"tensors", s.tensors},
          {"bytes", s.file_bytes},
          {"bits_per_weight", s.bits_per_weight},
          {"types", s.tensors_per_type}};
}

nlohmann::json lora_summary_json(const convert::GgufLoraSummary& s) {
  return {{"tensors", s.tensors}, {"bytes", s.file_bytes}, {"alpha", s.alpha}};
}

void provenance_write(const fs::path& dir, const convert::Provenance& prov, bool peft) {
  io::atomic_write(dir / "hearth_provenance.json", convert::provenance_json(prov).dump(2) + "\n");
  io::atomic_write(dir / "README.md", convert::model_card(prov, peft));
}

// --- the formats ------------------------------------------------------------------------------------------

nlohmann::json export_hf(const ExportCliOptions& o, const std::shared_ptr<const model::LoraAdapter>& adapter,
                         const convert::Provenance& prov) {
  const fs::path base = o.model;
  if (!fs::is_directory(base))
    throw ConfigError(fmt::format(
        "--model: 'export hf' needs a Hugging Face folder (its config and tokenizer files are copied); '{}' is a "
        "file — a GGUF base exports as gguf, gguf-lora or ollama",
        o.model));
  convert::ModelInput in = convert::model_input_open(base);
  convert::HfExportOptions options;
  const std::string dtype = o.dtype.empty() ? in.config.torch_dtype : o.dtype;
  auto d = convert::hf_dtype_parse(dtype);
  if (!d) {
    if (!o.dtype.empty())
      throw ConfigError(fmt::format("--dtype: unknown dtype '{}'; expected bf16, f16 or f32", o.dtype));
    log::warn("export: the base's torch_dtype '{}' is not a float type hearth writes; writing bfloat16", dtype);
    d = io::Dtype::kBF16;
  }
  options.dtype = *d;
  if (!o.max_shard_size.empty()) {
    auto size = convert::shard_size_parse(o.max_shard_size);
    if (!size)
      throw ConfigError(
          fmt::format("--max-shard-size: '{}' is not a size; expected e.g. 5GB, 500MB, 2GiB", o.max_shard_size));
    options.max_shard_bytes = *size;
  }
  convert::TensorSource source = adapter ? convert::tensor_source_merged(in.source, adapter) : in.source;
  io::AtomicDir dir(o.out, o.force);
  Progress bar("export", source.names.size(), "tensors");
  auto summary = convert::hf_weights_write(dir.path(), source, options,
                                           [&bar](size_t done, size_t) { bar.update(done); });
  bar.finish();
  auto copied = convert::hf_files_copy(base, dir.path(), options.dtype);
  provenance_write(dir.path(), prov, false);
  dir.commit();
  return {{"dtype", convert::hf_torch_dtype(options.dtype)},
          {"weight_files", summary.files},
          {"tensors", summary.tensors},
          {"bytes", summary.bytes},
          {"copied", copied}};
}

nlohmann::json export_peft(const ExportCliOptions& o, const convert::Provenance& prov) {
  const fs::path adapter = o.adapter;
  nlohmann::ordered_json config;
  try {  // bounded depth: the config is copied and dumped recursively
    config = io::json_parse_bounded<nlohmann::ordered_json>(io::file_read(adapter / "adapter_config.json"), false);
  } catch (const io::JsonTooDeep& e) {
    throw FormatError(fmt::format("{}: {}", (adapter / "adapter_config.json").string(), e.what()));
  }
  if (!config.is_object())
    throw FormatError(fmt::format("{}: not a JSON object", (adapter / "adapter_config.json").string()));
  config["base_model_name_or_path"] = prov.base;
  io::AtomicDir dir(o.out, o.force);
  std::error_code ec;
  fs::copy_file(adapter / "adapter_model.safetensors", dir.path() / "adapter_model.safetensors", ec);
  if (ec)
    throw IoError(fmt::format("{}: cannot copy: {}", (adapter / "adapter_model.safetensors").string(), ec.message()));
  io::atomic_write(dir.path() / "adapter_config.json", config.dump(2) + "\n");
  provenance_write(dir.path(), prov, true);
  dir.commit();
  return {{"files", {"adapter_config.json", "adapter_model.safetensors", "README.md", "hearth_provenance.json"}}};
}

nlohmann::json export_gguf(const ExportCliOptions& o, const std::shared_ptr<const model::LoraAdapter>& adapter,
                           const convert::Provenance& prov, const GlobalOptions& g) {
  convert::ModelInput in = convert::model_input_open(o.model);
  auto summary = gguf_write(o.out, in, adapter, gguf_options(o, in.name, g), prov);
  return gguf_summary_json(summary);
}

nlohmann::json export_gguf_lora(const ExportCliOptions& o, const model::ModelConfig& config,
                                const model::LoraAdapter& adapter, const convert::Provenance& prov) {
  std::vector<io::GgufKv> extra;
  if (!o.name.empty()) extra.push_back({"general.name", io::GgufValue::string(o.name)});
  for (auto& kv : convert::provenance_gguf(prov)) extra.push_back(std::move(kv));
  return lora_summary_json(convert::gguf_lora_write(o.out, config, adapter, extra));
}

nlohmann::json export_ollama(const ExportCliOptions& o, const std::shared_ptr<const model::LoraAdapter>& adapter,
                             const convert::Provenance& prov, const GlobalOptions& g) {
  convert::ModelInput in = convert::model_input_open(o.model);
  chat::Modelfile mf;
  nlohmann::json out = nlohmann::json::object();
  // The chat format, so Ollama renders the prompts the model was trained on and stops at its end of turn.
  std::optional<chat::ChatFamily> family;
  if (!in.chat_template.empty()) family = chat::chat_family_detect(in.chat_template);
  if (family) {
    mf.template_text = chat::ollama_template(*family);
    mf.stops = chat::ollama_stops(*family);
    out["template"] = chat::chat_family_name(*family);
  } else {
    log::warn(
        "export ollama: {}; the Modelfile has no TEMPLATE, so Ollama falls back to what it derives from the GGUF's "
        "chat template (see docs/export.md)",
        in.chat_template.empty() ? "the model has no chat template" : "the chat template is not one hearth translates");
    out["template"] = nullptr;
  }
  // SYSTEM: the user's, else the template's own default (e.g. Qwen2.5's), which Ollama only renders as SYSTEM.
  if (!o.system.empty()) mf.system = o.system;
  else if (family) mf.system = chat::chat_default_system(in.chat_template);
  io::AtomicDir dir(o.out, o.force);
  const convert::QuantizeOptions options = gguf_options(o, in.name, g);
  if (o.no_merge) {
    // The base GGUF holds no adapter, so its record names none; adapter.gguf carries the adapter's.
    convert::Provenance base_prov = prov;
    base_prov.adapter = base_prov.adapter_sha256 = base_prov.run_dir = "";
    base_prov.adapter_config = base_prov.recipe = base_prov.datasets = base_prov.metrics = nullptr;
    out["model"] = gguf_summary_json(gguf_write(dir.path() / "base.gguf", in, nullptr, options, base_prov));
    out["adapter"] = lora_summary_json(
        convert::gguf_lora_write(dir.path() / "adapter.gguf", in.config, *adapter, convert::provenance_gguf(prov)));
    mf.from = "./base.gguf";
    mf.adapter = "./adapter.gguf";
  } else {
    out["model"] = gguf_summary_json(gguf_write(dir.path() / "model.gguf", in, adapter, options, prov));
    mf.from = "./model.gguf";
  }
  io::atomic_write(dir.path() / "Modelfile", chat::modelfile_render(mf));
  provenance_write(dir.path(), prov, false);
  dir.commit();
  out["modelfile"] = "Modelfile";
  return out;
}

// An adapter trained on another base than --model (by the hash finetune-lora recorded) is refused: its shapes may
// fit, but its weights were learned against other weights. Hashes of a folder and of a GGUF cannot be compared.
void base_match_check(const ExportCliOptions& o, const convert::Provenance& prov) {
  const nlohmann::json& t = prov.trained_on;
  if (!t.is_object() || !t.contains("sha256") || !t["sha256"].is_string()) {
    if (!o.adapter.empty())
      log::info("export: {} records no base hash (not published by hearth finetune-lora); only its shapes are checked",
                o.adapter);
    return;
  }
  const std::string kind = fs::is_directory(o.model) ? "hf" : "gguf";
  if (t.value("kind", "") != kind) {
    log::info("export: the adapter was trained on a {} base and --model is a {}; their hashes cannot be compared, "
              "only the shapes are checked",
              t.value("kind", "?"), kind);
    return;
  }
  if (t["sha256"] == prov.base_sha256) return;
  const std::string msg = fmt::format(
      "--adapter: '{}' was trained on base sha256 {} ('{}'); --model '{}' has sha256 {}", o.adapter,
      t["sha256"].get<std::string>(), t.value("path", "?"), o.model, prov.base_sha256);
  if (o.allow_base_mismatch) {
    log::warn("{} (exporting anyway: --allow-base-mismatch)", msg);
    return;
  }
  throw FormatError(msg + "; export it with the base it was trained on, or pass --allow-base-mismatch");
}

void run_export(const ExportCliOptions& o, const GlobalOptions& g) {
  globals_apply(g);
  const auto start = std::chrono::steady_clock::now();
  if (o.format != "hf" && o.format != "peft" && o.format != "gguf" && o.format != "gguf-lora" && o.format != "ollama")
    throw ConfigError(fmt::format("export: unknown format '{}'; expected one of {}", o.format, kFormats));
  flags_check(o);
  const fs::path model = o.model, out = o.out;
  if (fs::is_directory(model)) model_dir_check(model);
  else if (!fs::exists(model))
    throw IoError(
        fmt::format("--model: '{}' does not exist; expected a Hugging Face model folder or a .gguf file", o.model));
  std::error_code ec;
  if (fs::exists(out) && (fs::equivalent(model, out, ec) || (!o.adapter.empty() && fs::equivalent(o.adapter, out, ec))))
    throw ConfigError(fmt::format("--out: '{}' is an input of the export; write to another path", o.out));
  out_check(out, o.force);

  // Everything is checked before anything is written: the base's config, the adapter against it.
  const model::ModelConfig config = base_config(model);
  std::shared_ptr<const model::LoraAdapter> adapter;
  if (!o.adapter.empty()) {
    if (!fs::is_directory(o.adapter))
      throw IoError(fmt::format("--adapter: '{}' is not a folder; expected a PEFT adapter folder", o.adapter));
    adapter = std::make_shared<const model::LoraAdapter>(model::LoraAdapter::load(o.adapter, config));
  }
  log::info("export {}: hashing the inputs for the provenance record", o.format);
  const convert::Provenance prov = convert::provenance_collect(
      model, o.adapter.empty() ? std::nullopt : std::optional<fs::path>(o.adapter), o.format, HEARTH_VERSION);

  base_match_check(o, prov);

  nlohmann::json detail;
  if (o.format == "hf") detail = export_hf(o, adapter, prov);
  else if (o.format == "peft") detail = export_peft(o, prov);
  else if (o.format == "gguf") detail = export_gguf(o, adapter, prov, g);
  else if (o.format == "gguf-lora") detail = export_gguf_lora(o, config, *adapter, prov);
  else detail = export_ollama(o, adapter, prov, g);

  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  nlohmann::json summary = {
      {"format", o.format},
      {"out", o.out},
      {"model", o.model},
      {"adapter", o.adapter.empty() ? nlohmann::json(nullptr) : nlohmann::json(o.adapter)},
      {"merged", adapter && o.format != "peft" && o.format != "gguf-lora" && !o.no_merge},
      {"seconds", seconds},
      {"base_sha256", prov.base_sha256},
      {"adapter_sha256", prov.adapter_sha256.empty() ? nlohmann::json(nullptr) : nlohmann::json(prov.adapter_sha256)},
      {"detail", detail}};
  if (g.json) {
    json_print(summary);
    return;
  }
  std::cout << fmt::format("{}: export {} of {}{} in {:.1f} s\n", o.out, o.format, o.model,
                           o.adapter.empty() ? "" : " + " + o.adapter, seconds);
  std::cout << "  " << detail.dump() << "\n";
}

}  // namespace

void add_export(CLI::App& app, const GlobalOptions& g, Runner& run) {
  auto o = std::make_shared<ExportCliOptions>();
  auto* cmd = app.add_subcommand("export", "Export a model and its adapter: hf, peft, gguf, gguf-lora, ollama");
  cmd->add_option("format", o->format, std::string("What to write: ") + kFormats)->required();
  model_option_add(cmd, o->model, "Base model: Hugging Face folder or GGUF")->required();
  cmd->add_option("--adapter", o->adapter, "LoRA adapter folder (PEFT format, e.g. RUN_DIR/adapters/latest)");
  cmd->add_option("--out", o->out, "Folder (hf, peft, ollama) or .gguf file (gguf, gguf-lora) to write")->required();
  cmd->add_flag("--force", o->force, "Replace --out if it exists (atomically)");
  cmd->add_option("--dtype", o->dtype, "hf: weight dtype bf16|f16|f32 (default: the base's torch_dtype)");
  cmd->add_option("--max-shard-size", o->max_shard_size, "hf: largest weight file, e.g. 5GB (default), 500MB");
  cmd->add_option("--type", o->type, "gguf, ollama: " + convert::quant_type_names() + " (default q8_0)");
  cmd->add_option("--system", o->system, "ollama: SYSTEM prompt of the Modelfile");
  cmd->add_flag("--no-merge", o->no_merge, "ollama: keep the adapter as a separate GGUF (Modelfile ADAPTER)");
  cmd->add_flag("--allow-base-mismatch", o->allow_base_mismatch,
                "Export even if the adapter was trained on a base with another hash");
  cmd->add_option("--name", o->name, "gguf, gguf-lora, ollama: general.name in the GGUF (default: the base's)");
  cmd->callback([o, &g, &run] { run = [o, &g] { run_export(*o, g); }; });
}

}  // namespace hearth::app
