#include "serve/serve_state.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include "model/compute_threads.h"

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

torch::Tensor prompt_forward(const model::CausalLM& m, const std::vector<infer::TokenId>& ids,
                             const model::LoraAdapter* adapter, bool hidden_states) {
  torch::Tensor out;
  model::run_on_passing_thread([&] {
    c10::InferenceMode guard;
    const auto T = static_cast<int64_t>(ids.size());
    std::vector<int64_t> wide(ids.begin(), ids.end());
    auto tokens = torch::tensor(wide, torch::kInt64).view({1, T}).to(m.device());
    auto positions = torch::arange(T, torch::TensorOptions().dtype(torch::kInt64).device(m.device())).view({1, T});
    model::ForwardOptions o;
    o.hidden_states = hidden_states;
    if (adapter) o.adapters = {adapter};
    out = m.forward(tokens, positions, torch::Tensor(), nullptr, o)[0];  // [1, T, ·] -> [T, ·]
  });
  return out;
}

}  // namespace hearth::serve
