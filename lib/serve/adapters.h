// The LoRA adapters a server hosts, by name: load, replace and unload while serving, and follow an
// adapter folder's `latest` pointer so that a nightly fine-tune is served the next morning.
//
// An adapter source is a folder that either holds a PEFT adapter (adapter_config.json +
// adapter_model.safetensors) or holds `latest`: a symlink to such a folder, or a text file whose first line
// names one (relative to the source folder). The pointer wins when both are present. A finetune-lora run
// directory (RUN_DIR/adapters/latest) stands for its newest published adapter. Requests hold a
// shared_ptr to the adapter they started with, so a reload never changes a generation mid-way.
// Not here: HTTP (http_server.cpp has the admin endpoints), the forward pass (lib/model/lora.h).
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "model/config.h"
#include "model/lora.h"

namespace hearth::serve {

struct AdapterInfo {
  std::string name;
  std::string source;     // folder given by the user
  std::string resolved;   // the PEFT folder actually loaded (after `latest`)
  int64_t loaded_at = 0;  // unix seconds
  int64_t r = 0;
  int64_t parameters = 0;
};

// Thread-safe: every method may be called from any thread (one mutex; loading happens outside it).
class AdapterRegistry {
 public:
  AdapterRegistry(const model::ModelConfig& model_config, torch::Device device)
      : config_(model_config), device_(device) {}

  // Loads (or replaces) adapter `name` from `source`. Throws ConfigError (bad name), IoError/FormatError
  // (lora.h's load errors, naming the file). On failure the previous adapter of that name stays.
  AdapterInfo load(const std::string& name, const std::filesystem::path& source);
  // Removes `name`; false when there is none. In-flight requests keep using it to their end.
  bool unload(const std::string& name);
  // The adapter, or nullptr when `name` is not loaded.
  std::shared_ptr<const model::LoraAdapter> find(const std::string& name) const;
  std::vector<AdapterInfo> list() const;
  size_t size() const;

  // Checks every source's `latest` pointer (target and file times) and reloads those that changed. A load
  // that fails (e.g. a fine-tune still being written) is logged and retried once the files change again. Returns the
  // number of (attempted) reloads: pair{ok, failed}.
  std::pair<int, int> poll();

  // The PEFT folder `source` points at (see the file comment). Throws IoError when there is none.
  static std::filesystem::path resolve(const std::filesystem::path& source);

 private:
  struct Entry {
    AdapterInfo info;
    std::shared_ptr<const model::LoraAdapter> adapter;
    std::string stamp;  // resolved path + weight file time + size, to detect changes
  };
  static std::string stamp_of(const std::filesystem::path& resolved);

  model::ModelConfig config_;
  torch::Device device_;
  mutable std::mutex mu_;
  std::map<std::string, Entry> entries_;
};

}  // namespace hearth::serve
