#include "serve/serve_state.h"

#include <fmt/format.h>

#include "serve/request.h"

namespace hearth::serve {

std::shared_ptr<const model::LoraAdapter> model_resolve(ServeState& s, const std::string& name, const KeyScope& scope) {
  if (!scope.allows(name))
    throw ApiError(403, fmt::format("This API key may not use the model '{}'", name), "permission_error", "model",
                   "model_not_permitted");
  if (name == s.model_name) return nullptr;
  auto adapter = s.adapters.find(name);
  if (!adapter)
    throw ApiError(404, fmt::format("The model '{}' does not exist", name), "invalid_request_error", "model",
                   "model_not_found");
  return adapter;
}

std::shared_ptr<const constrain::TokenTrie> token_trie(ServeState& s) {
  std::call_once(s.trie_once, [&s] {
    s.trie = std::make_shared<const constrain::TokenTrie>(s.tokenizer.token_bytes_all());
  });
  return s.trie;
}

}  // namespace hearth::serve
