// What every HTTP handler of hearth serve shares: the model, tokenizer, scheduler, adapters, keys,
// metrics and the server's settings. Built once by apps/serve.cpp; outlives the HTTP server.
// Thread-safety: the references are to thread-safe objects (or immutable ones); the atomics are atomics.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "constrain/token_trie.h"
#include "model/causal_lm.h"
#include "serve/adapters.h"
#include "serve/api_keys.h"
#include "serve/metrics.h"
#include "serve/scheduler.h"
#include "serve/server_config.h"
#include "tokenizer/tokenizer.h"

namespace hearth::serve {

struct ServeState {
  const ServerConfig& config;
  const model::CausalLM& model;
  const tokenizer::Tokenizer& tokenizer;
  std::string model_name;  // the base model's name in the API
  std::string model_dir;
  std::vector<infer::TokenId> stop_ids;  // infer::stop_ids_default()
  Scheduler& scheduler;
  AdapterRegistry& adapters;
  const ApiKeys& keys;
  Metrics& metrics;
  std::atomic<bool> draining{false};  // SIGTERM received: refuse new work with 503
  std::atomic<int> in_flight{0};      // completions being generated or streamed
  // The vocabulary trie for constrained decoding (token_trie()), built by the first request that needs it.
  std::once_flag trie_once{};
  std::shared_ptr<const constrain::TokenTrie> trie{};
};

// The tokenizer's vocabulary trie (constrain/token_trie.h), built on first use. Thread-safe.
std::shared_ptr<const constrain::TokenTrie> token_trie(ServeState& s);

// The adapter a request's `model` names (nullptr for the base model). ApiError 403 outside the key's scope, 404
// for an unknown name.
std::shared_ptr<const model::LoraAdapter> model_resolve(ServeState& s, const std::string& name, const KeyScope& scope);

// One forward over a whole prompt outside the scheduler (echo's logprobs, embeddings), without a cache: [T, V] logits,
// or [T, C] final hidden states, on the model's device. It runs in inference mode on a thread that then ends: a
// connection thread that ran the model would keep an OpenMP worker pool beside the scheduler's, whose workers would
// then sleep between parallel regions (model/compute_threads.h).
torch::Tensor prompt_forward(const model::CausalLM& m, const std::vector<infer::TokenId>& ids,
                             const model::LoraAdapter* adapter, bool hidden_states);

}  // namespace hearth::serve
