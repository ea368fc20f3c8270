// API keys for hearth serve: who may call the server and which personal models each caller may use.
//
// File format (docs/serve.md): one key per line, optionally followed by whitespace and a comma-separated
// list of the model names (adapters, or the base model's name) the key is limited to:
//   sk-family-laptop
//   sk-kids-tablet   stories-kids,homework
// Blank lines and lines starting with '#' are ignored. A key without a list may use every model and the
// admin endpoints; a scoped key only its models. Not here: HTTP (http_server.cpp applies this).
#pragma once

#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace hearth::serve {

struct KeyScope {
  bool all = true;               // no list: every model, admin allowed
  std::set<std::string> models;  // the list, when !all

  bool allows(const std::string& model) const { return all || models.count(model) > 0; }
};

// Immutable after load; const methods are safe from any thread.
class ApiKeys {
 public:
  // An empty set: authentication off.
  ApiKeys() = default;
  // Reads the key file. Throws IoError (unreadable), ConfigError "<file>:<line>: ..." (malformed line,
  // duplicate key, key shorter than 8 characters, no key at all).
  static ApiKeys load(const std::filesystem::path& path);
  // Parses file content; `origin` names it in errors.
  static ApiKeys parse(const std::string& text, const std::string& origin);

  bool enabled() const { return !keys_.empty(); }
  // The scope of `key`, or std::nullopt when it is not a known key. Compares in constant time per key.
  std::optional<KeyScope> find(const std::string& key) const;
  size_t size() const { return keys_.size(); }

 private:
  std::vector<std::pair<std::string, KeyScope>> keys_;
};

// The token of an "Authorization: Bearer <token>" header value; empty when the header has another form.
std::string bearer_token(const std::string& header);

}  // namespace hearth::serve
