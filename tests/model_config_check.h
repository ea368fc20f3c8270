// Catch2 checks that two model configs describe the same architecture (e.g. one read from GGUF metadata and
// the Hugging Face config.json of the same weights). Shared by tests/model and tests/convert.
#pragma once

#include <catch2/catch.hpp>

#include "model/config.h"

namespace hearth::test {

inline void check_same_architecture(const model::ModelConfig& g, const model::ModelConfig& h) {
  CHECK(g.model_type == h.model_type);
  CHECK(g.vocab_size == h.vocab_size);
  CHECK(g.hidden_size == h.hidden_size);
  CHECK(g.intermediate_size == h.intermediate_size);
  CHECK(g.num_hidden_layers == h.num_hidden_layers);
  CHECK(g.num_attention_heads == h.num_attention_heads);
  CHECK(g.num_key_value_heads == h.num_key_value_heads);
  CHECK(g.head_dim == h.head_dim);
  CHECK(g.max_position_embeddings == h.max_position_embeddings);
  CHECK(g.rms_norm_eps == Approx(h.rms_norm_eps).epsilon(1e-6));  // GGUF stores it as f32, as llama.cpp does
  CHECK(g.rope_theta == h.rope_theta);
  CHECK(g.rope_scaling.rope_type == h.rope_scaling.rope_type);
  CHECK(g.tie_word_embeddings == h.tie_word_embeddings);
  CHECK(g.attention_bias == h.attention_bias);
  CHECK(g.mlp_bias == h.mlp_bias);
  CHECK(g.sliding_window == h.sliding_window);
}

}  // namespace hearth::test
