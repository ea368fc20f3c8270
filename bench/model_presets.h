// Model shapes used by the benchmarks (random weights; the shapes are what matters for speed).
#pragma once

#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

namespace hearth::bench {

// config.json for a named preset: "smollm2-135m" (hidden 576, 30 layers, 9 heads / 3 KV, FFN 1536,
// vocab 49152, tied), "llama-3.2-1b" (hidden 2048, 16 layers, 32 heads / 8 KV, FFN 8192, vocab 128256, tied)
// or "stories260k" (the bundled model's shape).
inline nlohmann::json preset_config(const std::string& name) {
  if (name == "smollm2-135m")
    return {{"model_type", "llama"},
            {"architectures", {"LlamaForCausalLM"}},
            {"vocab_size", 49152},
            {"hidden_size", 576},
            {"intermediate_size", 1536},
            {"num_hidden_layers", 30},
            {"num_attention_heads", 9},
            {"num_key_value_heads", 3},
            {"max_position_embeddings", 8192},
            {"rms_norm_eps", 1e-5},
            {"rope_theta", 100000.0},
            {"tie_word_embeddings", true},
            {"bos_token_id", 1},
            {"eos_token_id", 2},
            {"torch_dtype", "float32"}};
  if (name == "llama-3.2-1b")
    return {{"model_type", "llama"},
            {"architectures", {"LlamaForCausalLM"}},
            {"vocab_size", 128256},
            {"hidden_size", 2048},
            {"intermediate_size", 8192},
            {"num_hidden_layers", 16},
            {"num_attention_heads", 32},
            {"num_key_value_heads", 8},
            {"head_dim", 64},
            {"max_position_embeddings", 131072},
            {"rms_norm_eps", 1e-5},
            {"rope_theta", 500000.0},
            {"tie_word_embeddings", true},
            {"bos_token_id", 128000},
            {"eos_token_id", 128001},
            {"torch_dtype", "float32"}};
  if (name == "stories260k")
    return {{"model_type", "llama"},
            {"architectures", {"LlamaForCausalLM"}},
            {"vocab_size", 512},
            {"hidden_size", 64},
            {"intermediate_size", 172},
            {"num_hidden_layers", 5},
            {"num_attention_heads", 8},
            {"num_key_value_heads", 4},
            {"max_position_embeddings", 512},
            {"rms_norm_eps", 1e-5},
            {"rope_theta", 10000.0},
            {"tie_word_embeddings", true},
            {"bos_token_id", 1},
            {"eos_token_id", 2},
            {"torch_dtype", "float32"}};
  throw std::invalid_argument("unknown preset '" + name + "'; expected smollm2-135m, llama-3.2-1b or stories260k");
}

}  // namespace hearth::bench
