#include "serve/api_keys.h"

#include <sstream>

#include <fmt/format.h>

#include "core/error.h"
#include "core/sha256.h"
#include "io/atomic_file.h"

namespace hearth::serve {
namespace {

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return {};
  size_t e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

}  // namespace

ApiKeys ApiKeys::load(const std::filesystem::path& path) {
  std::string text;
  try {
    text = io::file_read(path);
  } catch (const IoError& e) {
    throw IoError(fmt::format("--api-keys: {}", e.what()));
  }
  return parse(text, path.string());
}

ApiKeys ApiKeys::parse(const std::string& text, const std::string& origin) {
  ApiKeys out;
  std::istringstream in(text);
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    line = trim(line);
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    std::string key, list, extra;
    fields >> key >> list >> extra;
    if (!extra.empty())
      throw ConfigError(fmt::format("{}:{}: expected 'KEY' or 'KEY model1,model2', got '{}'", origin, n, line));
    if (key.size() < 8)
      throw ConfigError(fmt::format("{}:{}: key too short; expected at least 8 characters", origin, n));
    for (const auto& [k, s] : out.keys_)
      if (k == key) throw ConfigError(fmt::format("{}:{}: duplicate key", origin, n));
    KeyScope scope;
    if (!list.empty()) {
      scope.all = false;
      std::istringstream names(list);
      std::string name;
      while (std::getline(names, name, ','))
        if (!name.empty()) scope.models.insert(name);
      if (scope.models.empty()) throw ConfigError(fmt::format("{}:{}: empty model list", origin, n));
    }
    out.keys_.emplace_back(key, std::move(scope));
  }
  if (out.keys_.empty()) throw ConfigError(fmt::format("{}: no keys; expected one key per line", origin));
  return out;
}

std::optional<KeyScope> ApiKeys::find(const std::string& key) const {
  std::optional<KeyScope> found;
  for (const auto& [k, scope] : keys_)  // every key is compared, match or not
    if (equal_constant_time(k, key) && !found) found = scope;
  return found;
}

std::string bearer_token(const std::string& header) {
  const std::string prefix = "Bearer ";
  if (header.size() <= prefix.size() || header.compare(0, prefix.size(), prefix) != 0) return {};
  return trim(header.substr(prefix.size()));
}

}  // namespace hearth::serve
