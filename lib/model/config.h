// Model configuration: Hugging Face `config.json` (+ `generation_config.json`) with the HF key names verbatim.
//
// Parsing validates every field it uses and names the file and key in errors. Family-specific defaults
// (Qwen2's q/k/v bias, Qwen3's q/k norm) come from the family table in family.cpp; see docs/models.md.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace hearth::model {

// `rope_scaling` as in config.json. rope_type "default" means none.
struct RopeScaling {
  std::string rope_type = "default";  // default | linear | llama3
  double factor = 1.0;
  double low_freq_factor = 1.0;                     // llama3
  double high_freq_factor = 4.0;                    // llama3
  int64_t original_max_position_embeddings = 8192;  // llama3
};

struct ModelConfig {
  // Keys of config.json.
  std::string model_type;
  std::vector<std::string> architectures;
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;  // defaults to num_attention_heads
  int64_t head_dim = 0;             // defaults to hidden_size / num_attention_heads
  int64_t max_position_embeddings = 2048;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  std::string hidden_act = "silu";
  bool tie_word_embeddings = false;
  bool attention_bias = false;  // q/k/v/o bias (Llama key); Qwen2 family: q/k/v only (see qkv_bias)
  bool mlp_bias = false;
  std::optional<int64_t> sliding_window;  // Mistral; applied only when set and in use
  std::string torch_dtype = "float32";
  std::optional<int64_t> bos_token_id;
  std::vector<int64_t> eos_token_id;  // config.json and generation_config.json merged, in order

  // Derived from the family (not config.json keys).
  bool qkv_bias = false;  // bias on q/k/v projections
  bool o_bias = false;    // bias on the output projection
  bool qk_norm = false;   // RMSNorm on q and k per head before RoPE (Qwen3)

  int64_t n_group() const { return num_attention_heads / num_key_value_heads; }
  // Parameter count implied by the shapes (tied head counted once).
  int64_t parameter_count() const;
};

// Parses a config.json object. `origin` names the file in errors. Throws FormatError for a missing or
// ill-typed key or an unsupported model_type / rope_scaling (listing the supported ones).
ModelConfig config_parse(const nlohmann::json& config, const std::string& origin);
// Loads DIR/config.json and merges DIR/generation_config.json's eos_token_id when present.
ModelConfig config_load(const std::filesystem::path& dir);

}  // namespace hearth::model
