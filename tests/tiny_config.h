// A tiny Llama config for model tests: vocabulary 50, hidden 24, FFN 40, 4 query heads over 2 key/value
// heads (head dim 6), `layers` layers, a context of `ctx` tokens.
#pragma once

#include "model/config.h"

namespace hearth::test {

inline model::ModelConfig tiny_config(int64_t layers = 2, int64_t ctx = 32) {
  return model::config_parse({{"model_type", "llama"},
                              {"vocab_size", 50},
                              {"hidden_size", 24},
                              {"intermediate_size", 40},
                              {"num_hidden_layers", layers},
                              {"num_attention_heads", 4},
                              {"num_key_value_heads", 2},
                              {"max_position_embeddings", ctx}},
                             "tiny");
}

}  // namespace hearth::test
