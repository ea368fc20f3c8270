#include "serve/adapters.h"

#include <chrono>
#include <fstream>

#include <fmt/format.h>

#include "core/error.h"
#include "core/log.h"
#include "serve/server_config.h"

namespace hearth::serve {

namespace fs = std::filesystem;

fs::path AdapterRegistry::resolve(const fs::path& source) {
  std::error_code ec;
  // A finetune-lora run directory stands for its newest published adapter (RUN_DIR/adapters/latest).
  if (!fs::exists(source / "latest", ec) && !fs::exists(source / "adapter_config.json", ec) &&
      fs::exists(source / "adapters" / "latest", ec))
    return resolve(source / "adapters");
  fs::path latest = source / "latest";
  if (fs::exists(latest, ec)) {
    if (fs::is_directory(latest, ec)) return fs::canonical(latest, ec);
    std::ifstream in(latest);
    std::string line;
    std::getline(in, line);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\n')) line.pop_back();
    if (line.empty()) throw IoError(fmt::format("adapter '{}': the `latest` file is empty", source.string()));
    fs::path target = fs::path(line).is_absolute() ? fs::path(line) : source / line;
    if (!fs::is_directory(target, ec))
      throw IoError(fmt::format("adapter '{}': `latest` names '{}', which is not a folder", source.string(), line));
    return fs::canonical(target, ec);
  }
  if (fs::exists(source / "adapter_config.json", ec)) return source;
  throw IoError(
      fmt::format("adapter '{}': expected adapter_config.json, a `latest` pointer, or a finetune-lora run directory "
                  "(adapters/latest) in the folder",
                  source.string()));
}

std::string AdapterRegistry::stamp_of(const fs::path& resolved) {
  std::error_code ec;
  std::string s = resolved.string();
  for (const char* f : {"adapter_model.safetensors", "adapter_config.json"}) {
    auto p = resolved / f;
    auto t = fs::last_write_time(p, ec);
    auto size = fs::file_size(p, ec);
    s += fmt::format("|{}:{}", ec ? 0 : static_cast<long long>(t.time_since_epoch().count()), ec ? 0 : size);
  }
  return s;
}

AdapterInfo AdapterRegistry::load(const std::string& name, const fs::path& source) {
  if (!model_name_valid(name))
    throw ConfigError(fmt::format("adapter name '{}' is not valid; expected 1-64 of A-Z a-z 0-9 . _ -", name));
  fs::path resolved = resolve(source);
  std::string stamp = stamp_of(resolved);
  auto adapter = std::make_shared<const model::LoraAdapter>(model::LoraAdapter::load(resolved, config_, device_));
  AdapterInfo info;
  info.name = name;
  info.source = source.string();
  info.resolved = resolved.string();
  info.loaded_at =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  info.r = adapter->config().r;
  info.parameters = adapter->parameter_count();
  std::lock_guard<std::mutex> lock(mu_);
  entries_[name] = Entry{info, std::move(adapter), stamp};
  return info;
}

bool AdapterRegistry::unload(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  return entries_.erase(name) > 0;
}

std::shared_ptr<const model::LoraAdapter> AdapterRegistry::find(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(name);
  return it == entries_.end() ? nullptr : it->second.adapter;
}

std::vector<AdapterInfo> AdapterRegistry::list() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<AdapterInfo> out;
  for (const auto& [name, e] : entries_) out.push_back(e.info);
  return out;
}

size_t AdapterRegistry::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return entries_.size();
}

std::pair<int, int> AdapterRegistry::poll() {
  std::vector<std::pair<std::string, std::string>> sources;  // name, source, stamp at the time
  std::map<std::string, std::string> stamps;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [name, e] : entries_) {
      sources.emplace_back(name, e.info.source);
      stamps[name] = e.stamp;
    }
  }
  int ok = 0, failed = 0;
  for (const auto& [name, source] : sources) {
    std::string now;
    try {
      now = stamp_of(resolve(source));
    } catch (const Error& e) {
      continue;  // pointer missing or dangling for now: keep serving what we have
    }
    if (now == stamps[name]) continue;
    try {
      auto info = load(name, source);
      log::info("adapter '{}' reloaded from {}", name, info.resolved);
      ++ok;
    } catch (const Error& e) {
      log::warn("adapter '{}': reload failed, still serving the previous one: {}", name, e.what());
      std::lock_guard<std::mutex> lock(mu_);  // do not retry the same broken files every poll
      if (auto it = entries_.find(name); it != entries_.end()) it->second.stamp = now;
      ++failed;
    }
  }
  return {ok, failed};
}

}  // namespace hearth::serve
