// Where an exported model came from, carried in every export so that a file found later says what it is: the
// base model and adapter (paths and SHA-256), the training recipe, the datasets' manifests (SHA-256 and
// totals), the last training metrics and hearth's version. Written as hearth_provenance.json and the model card
// (README.md) in folders, and under the `hearth.` key prefix in GGUF metadata.
//
// Hashes: a GGUF base is the SHA-256 of the file; a Hugging Face base the SHA-256 of config.json followed by
// every *.safetensors file in name order; an adapter the SHA-256 of adapter_config.json followed by
// adapter_model.safetensors. The run (recipe, metrics, datasets) is found from the adapter folder when it lies
// in a finetune-lora run directory (RUN_DIR/adapters/vNNNN, RUN_DIR/adapters/latest, or
// RUN_DIR/checkpoints/step-N); otherwise those fields are null.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/gguf.h"

namespace hearth::convert {

struct Provenance {
  std::string hearth_version;
  std::string created;  // UTC, ISO 8601
  std::string format;   // the export format ("hf", "gguf", ...)
  std::string base, base_sha256;
  std::string adapter, adapter_sha256;  // empty without an adapter
  nlohmann::json adapter_config;        // adapter_config.json, null without an adapter
  nlohmann::json trained_on;            // the base the adapter was trained on ({"path", "kind", "sha256"}, from
                                        // hearth_base.json beside it or its run's base.json), or null
  std::string run_dir;                  // "" when the adapter is not in a run directory
  nlohmann::json recipe;                // RUN_DIR/recipe.resolved.json, or null
  nlohmann::json datasets;              // [{path, manifest_sha256, totals}] from the recipe, or null
  nlohmann::json metrics;               // {step, loss, eval_loss} from the last lines of metrics.jsonl, or null
};

// The base an adapter folder was trained on, as finetune-lora recorded it (train::base_record), or null.
nlohmann::json adapter_trained_on(const std::filesystem::path& adapter);

// Collects the provenance of an export of `base` (with `adapter` when given). Reads the whole base to hash it.
// Throws IoError for unreadable files; a malformed recipe, manifest or metrics line is recorded as null with a
// warning (provenance never blocks an export of valid weights).
Provenance provenance_collect(const std::filesystem::path& base, const std::optional<std::filesystem::path>& adapter,
                              const std::string& format, const std::string& hearth_version);

nlohmann::json provenance_json(const Provenance& p);
// hearth.version, hearth.base.sha256, hearth.adapter.sha256 (with an adapter), hearth.provenance (the JSON).
std::vector<io::GgufKv> provenance_gguf(const Provenance& p);
// A Hugging Face model card (README.md with YAML front matter: base_model, library_name, tags) for a merged
// model (`peft` false) or an adapter (`peft` true): what it is, how it was made, how to load it.
std::string model_card(const Provenance& p, bool peft);

}  // namespace hearth::convert
