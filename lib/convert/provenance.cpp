#include "convert/provenance.h"

#include <algorithm>
#include <ctime>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "core/error.h"
#include "core/log.h"
#include "core/sha256.h"
#include "io/json_file.h"
#include "model/checkpoint.h"

namespace hearth::convert {
namespace {

namespace fs = std::filesystem;

std::string now_utc() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// The run directory an adapter folder belongs to, or "".
fs::path run_dir_of(const fs::path& adapter) {
  std::error_code ec;
  fs::path dir = fs::canonical(adapter, ec);  // follows adapters/latest
  if (ec) return {};
  const fs::path parent = dir.parent_path();
  const std::string kind = parent.filename().string();
  if ((kind == "adapters" || kind == "checkpoints") && fs::exists(parent.parent_path() / "recipe.resolved.json"))
    return parent.parent_path();
  return {};
}

nlohmann::json json_or_null(const fs::path& path) {
  try {
    return io::json_read(path);
  } catch (const Error& e) {
    log::warn("provenance: {} is not readable JSON ({}); recorded as null", path.string(), e.what());
    return nullptr;
  }
}

// The datasets the recipe trained on: each manifest's hash and totals.
nlohmann::json datasets_of(const nlohmann::json& recipe) {
  if (!recipe.is_object() || !recipe.contains("datasets") || !recipe["datasets"].is_array()) return nullptr;
  nlohmann::json out = nlohmann::json::array();
  for (const auto& d : recipe["datasets"]) {
    const std::string path = d.value("path", "");
    const fs::path manifest = fs::path(path) / "manifest.json";
    nlohmann::json entry = {{"path", path}, {"weight", d.value("weight", 1.0)}};
    if (fs::exists(manifest)) {
      Sha256 h;
      h.update_file(manifest);
      entry["manifest_sha256"] = digest_hex(h.digest());
      nlohmann::json m = json_or_null(manifest);
      entry["totals"] = m.is_object() && m.contains("totals") ? m["totals"] : nlohmann::json(nullptr);
    } else {
      entry["manifest_sha256"] = nullptr;
      entry["totals"] = nullptr;
    }
    out.push_back(entry);
  }
  return out;
}

// The last step's training loss and the last eval loss of metrics.jsonl.
nlohmann::json metrics_of(const fs::path& run_dir) {
  std::ifstream in(run_dir / "metrics.jsonl");
  if (!in) return nullptr;
  nlohmann::json out = nlohmann::json::object();
  std::string line;
  while (std::getline(in, line)) {
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_object()) continue;
    if (j.contains("step")) out["step"] = j["step"];
    if (j.contains("loss")) out["loss"] = j["loss"];
    if (j.contains("eval_loss")) out["eval_loss"] = j["eval_loss"];
  }
  return out.empty() ? nlohmann::json(nullptr) : out;
}

std::string short_hash(const std::string& h) { return h.size() > 12 ? h.substr(0, 12) : h; }

}  // namespace

nlohmann::json adapter_trained_on(const fs::path& adapter) {
  if (fs::exists(adapter / "hearth_base.json")) return json_or_null(adapter / "hearth_base.json");
  const fs::path run = run_dir_of(adapter);
  if (!run.empty() && fs::exists(run / "base.json")) {
    nlohmann::json j = json_or_null(run / "base.json");
    if (j.is_object()) j.erase("files");
    return j;
  }
  return nullptr;
}

Provenance provenance_collect(const fs::path& base, const std::optional<fs::path>& adapter, const std::string& format,
                              const std::string& hearth_version) {
  Provenance p;
  p.hearth_version = hearth_version;
  p.created = now_utc();
  p.format = format;
  p.base = fs::absolute(base).lexically_normal().string();
  p.base_sha256 = model::model_sha256(base);
  p.adapter_config = p.trained_on = nullptr;
  p.recipe = p.datasets = p.metrics = nullptr;
  if (!adapter) return p;
  p.adapter = fs::absolute(*adapter).lexically_normal().string();
  Sha256 h;
  h.update_file(*adapter / "adapter_config.json");
  h.update_file(*adapter / "adapter_model.safetensors");
  p.adapter_sha256 = digest_hex(h.digest());
  p.adapter_config = json_or_null(*adapter / "adapter_config.json");
  p.trained_on = adapter_trained_on(*adapter);
  const fs::path run = run_dir_of(*adapter);
  if (!run.empty()) {
    p.run_dir = run.string();
    p.recipe = json_or_null(run / "recipe.resolved.json");
    p.datasets = datasets_of(p.recipe);
    p.metrics = metrics_of(run);
  }
  return p;
}

nlohmann::json provenance_json(const Provenance& p) {
  nlohmann::json j = {{"hearth_version", p.hearth_version},
                      {"created", p.created},
                      {"format", p.format},
                      {"base", {{"path", p.base}, {"sha256", p.base_sha256}}}};
  j["adapter"] = p.adapter.empty()
                     ? nlohmann::json(nullptr)
                     : nlohmann::json{{"path", p.adapter}, {"sha256", p.adapter_sha256}, {"config", p.adapter_config}};
  j["run_dir"] = p.run_dir.empty() ? nlohmann::json(nullptr) : nlohmann::json(p.run_dir);
  j["recipe"] = p.recipe;
  j["datasets"] = p.datasets;
  j["metrics"] = p.metrics;
  return j;
}

std::vector<io::GgufKv> provenance_gguf(const Provenance& p) {
  std::vector<io::GgufKv> kv;
  kv.push_back({"hearth.version", io::GgufValue::string(p.hearth_version)});
  kv.push_back({"hearth.base.sha256", io::GgufValue::string(p.base_sha256)});
  if (!p.adapter.empty()) kv.push_back({"hearth.adapter.sha256", io::GgufValue::string(p.adapter_sha256)});
  kv.push_back({"hearth.provenance", io::GgufValue::string(provenance_json(p).dump())});
  return kv;
}

std::string model_card(const Provenance& p, bool peft) {
  std::ostringstream s;
  const std::string base_name = fs::path(p.base).filename().string();
  s << "---\n";
  s << "base_model: " << nlohmann::json(base_name).dump() << "\n";
  if (peft) s << "library_name: peft\n";
  s << "tags:\n  - hearth\n" << (p.adapter.empty() ? "" : "  - lora\n");
  s << "---\n\n";
  s << "# " << (peft ? "LoRA adapter for " : p.adapter.empty() ? "" : "Fine-tuned ") << base_name << "\n\n";
  s << "Exported by hearth " << p.hearth_version << " on " << p.created << " (`hearth export " << p.format << "`).\n\n";
  s << "| | |\n| --- | --- |\n";
  s << "| base model | `" << p.base << "` (sha256 `" << short_hash(p.base_sha256) << "…`) |\n";
  if (!p.adapter.empty()) {
    s << "| adapter | `" << p.adapter << "` (sha256 `" << short_hash(p.adapter_sha256) << "…`) |\n";
    if (p.adapter_config.is_object()) {
      const auto& c = p.adapter_config;
      s << "| LoRA | r " << c.value("r", 0) << ", alpha " << c.value("lora_alpha", 0.0) << ", rslora "
        << (c.value("use_rslora", false) ? "on" : "off") << ", targets "
        << (c.contains("target_modules") ? c["target_modules"].dump() : "?") << " |\n";
    }
  }
  if (p.datasets.is_array())
    for (const auto& d : p.datasets) {
      s << "| dataset | `" << d.value("path", "") << "`";
      if (d.contains("manifest_sha256") && d["manifest_sha256"].is_string())
        s << " (manifest sha256 `" << short_hash(d["manifest_sha256"].get<std::string>()) << "…`)";
      if (d.contains("totals") && d["totals"].is_object()) s << ", totals " << d["totals"].dump();
      s << " |\n";
    }
  if (p.metrics.is_object()) s << "| last metrics | " << p.metrics.dump() << " |\n";
  if (p.recipe.is_object())
    s << "\n## Training recipe\n\nAs `hearth finetune-lora` resolved it (`" << p.run_dir
      << "/recipe.resolved.json`):\n\n```json\n"
      << p.recipe.dump(2) << "\n```\n";
  s << "\nThe full record is in `hearth_provenance.json`.\n\n";
  if (peft) {
    s << "## Use\n\n```python\nfrom transformers import AutoModelForCausalLM\nfrom peft import PeftModel\n\n"
         "base = AutoModelForCausalLM.from_pretrained(\"PATH/TO/BASE\")\n"
         "model = PeftModel.from_pretrained(base, \"PATH/TO/THIS/FOLDER\")\n```\n\n"
         "or with hearth: `hearth generate --model BASE --adapter THIS_FOLDER --prompt ...`.\n";
  } else {
    s << "## Use\n\n```python\nfrom transformers import AutoModelForCausalLM, AutoTokenizer\n\n"
         "model = AutoModelForCausalLM.from_pretrained(\"PATH/TO/THIS/FOLDER\")\n"
         "tokenizer = AutoTokenizer.from_pretrained(\"PATH/TO/THIS/FOLDER\")\n```\n\n"
         "or with hearth: `hearth generate --model THIS_FOLDER --prompt ...`.\n";
  }
  return s.str();
}

}  // namespace hearth::convert
