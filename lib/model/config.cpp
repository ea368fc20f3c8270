#include "model/config.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "core/error.h"
#include "io/json_file.h"
#include "model/family.h"

namespace hearth::model {
using nlohmann::json;

namespace {

// Typed getters that name the file and key in their errors.
class Reader {
 public:
  Reader(const json& j, std::string origin) : j_(j), origin_(std::move(origin)) {}

  int64_t int_required(const char* key) const {
    auto it = j_.find(key);
    if (it == j_.end()) throw FormatError(fmt::format("{}: missing required key '{}'", origin_, key));
    return as_int(key, *it);
  }
  int64_t int_or(const char* key, int64_t fallback) const {
    auto it = j_.find(key);
    return it == j_.end() || it->is_null() ? fallback : as_int(key, *it);
  }
  double number_or(const char* key, double fallback) const {
    auto it = j_.find(key);
    if (it == j_.end() || it->is_null()) return fallback;
    if (!it->is_number()) throw bad(key, "a number", *it);
    return it->get<double>();
  }
  bool bool_or(const char* key, bool fallback) const {
    auto it = j_.find(key);
    if (it == j_.end() || it->is_null()) return fallback;
    if (!it->is_boolean()) throw bad(key, "true or false", *it);
    return it->get<bool>();
  }
  std::string string_or(const char* key, const std::string& fallback) const {
    auto it = j_.find(key);
    if (it == j_.end() || it->is_null()) return fallback;
    if (!it->is_string()) throw bad(key, "a string", *it);
    return it->get<std::string>();
  }
  // An id or a list of ids (eos_token_id may be either).
  std::vector<int64_t> ids(const char* key) const {
    auto it = j_.find(key);
    if (it == j_.end() || it->is_null()) return {};
    if (it->is_number_integer()) return {it->get<int64_t>()};
    if (!it->is_array()) throw bad(key, "an integer or a list of integers", *it);
    std::vector<int64_t> out;
    for (const auto& v : *it) {
      if (!v.is_number_integer()) throw bad(key, "a list of integers", *it);
      out.push_back(v.get<int64_t>());
    }
    return out;
  }
  const std::string& origin() const { return origin_; }

 private:
  int64_t as_int(const char* key, const json& v) const {
    if (!v.is_number_integer()) throw bad(key, "an integer", v);
    return v.get<int64_t>();
  }
  FormatError bad(const char* key, const char* expected, const json& got) const {
    return FormatError(fmt::format("{}: key '{}'; expected {}, got {}", origin_, key, expected, got.dump()));
  }
  const json& j_;
  std::string origin_;
};

std::string supported_list() {
  std::string out;
  for (const auto& f : family_all()) out += (out.empty() ? "" : ", ") + std::string(f.model_type);
  return out;
}

RopeScaling parse_rope_scaling(const json& j, const std::string& origin) {
  RopeScaling rs;
  auto it = j.find("rope_scaling");
  if (it == j.end() || it->is_null()) return rs;
  if (!it->is_object()) throw FormatError(fmt::format("{}: key 'rope_scaling'; expected an object or null", origin));
  Reader r(*it, origin + ": rope_scaling");
  rs.rope_type = r.string_or("rope_type", r.string_or("type", "default"));
  rs.factor = r.number_or("factor", 1.0);
  if (rs.rope_type == "default") return rs;
  if (rs.rope_type == "linear") {
    if (rs.factor <= 0) throw FormatError(fmt::format("{}: rope_scaling.factor must be > 0", origin));
    return rs;
  }
  if (rs.rope_type == "llama3") {
    rs.low_freq_factor = r.number_or("low_freq_factor", 1.0);
    rs.high_freq_factor = r.number_or("high_freq_factor", 4.0);
    rs.original_max_position_embeddings = r.int_or("original_max_position_embeddings", 8192);
    if (rs.high_freq_factor <= rs.low_freq_factor || rs.factor <= 0)
      throw FormatError(
          fmt::format("{}: rope_scaling (llama3) needs factor > 0 and high_freq_factor > "
                      "low_freq_factor",
                      origin));
    return rs;
  }
  throw FormatError(fmt::format("{}: rope_scaling type '{}' is not supported; expected default, linear or llama3",
                                origin, rs.rope_type));
}

void validate(const ModelConfig& c, const std::string& origin) {
  auto positive = [&](const char* key, int64_t v) {
    if (v <= 0) throw FormatError(fmt::format("{}: key '{}'; expected a positive integer, got {}", origin, key, v));
  };
  positive("vocab_size", c.vocab_size);
  positive("hidden_size", c.hidden_size);
  positive("intermediate_size", c.intermediate_size);
  positive("num_hidden_layers", c.num_hidden_layers);
  positive("num_attention_heads", c.num_attention_heads);
  positive("num_key_value_heads", c.num_key_value_heads);
  positive("head_dim", c.head_dim);
  positive("max_position_embeddings", c.max_position_embeddings);
  if (c.num_attention_heads % c.num_key_value_heads != 0)
    throw FormatError(fmt::format("{}: num_attention_heads ({}) must be a multiple of num_key_value_heads ({})", origin,
                                  c.num_attention_heads, c.num_key_value_heads));
  if (c.head_dim % 2 != 0)
    throw FormatError(fmt::format("{}: head_dim must be even for RoPE, got {}", origin, c.head_dim));
  if (c.hidden_act != "silu")
    throw FormatError(fmt::format("{}: key 'hidden_act'; expected silu, got '{}'", origin, c.hidden_act));
  // Values that load but make every output garbage: RoPE needs a base > 0 (a non-positive one gives NaN or
  // constant angles), RMSNorm an epsilon ≥ 0 (a negative one can take the square root of a negative number).
  if (!(c.rope_theta > 0) || !std::isfinite(c.rope_theta))
    throw FormatError(fmt::format("{}: key 'rope_theta'; expected a positive number, got {}", origin, c.rope_theta));
  if (!(c.rms_norm_eps >= 0) || !std::isfinite(c.rms_norm_eps))
    throw FormatError(
        fmt::format("{}: key 'rms_norm_eps'; expected a number >= 0, got {}", origin, c.rms_norm_eps));
  if (c.bos_token_id && (*c.bos_token_id < 0 || *c.bos_token_id >= c.vocab_size))
    throw FormatError(fmt::format("{}: key 'bos_token_id'; {} is outside the vocabulary of {}", origin,
                                  *c.bos_token_id, c.vocab_size));
  for (int64_t id : c.eos_token_id)
    if (id < 0 || id >= c.vocab_size)
      throw FormatError(
          fmt::format("{}: key 'eos_token_id'; {} is outside the vocabulary of {}", origin, id, c.vocab_size));
}

}  // namespace

int64_t ModelConfig::parameter_count() const {
  int64_t q = num_attention_heads * head_dim, kv = num_key_value_heads * head_dim;
  int64_t attn = hidden_size * (q + 2 * kv) + q * hidden_size;
  if (qkv_bias) attn += q + 2 * kv;
  if (o_bias) attn += hidden_size;
  if (qk_norm) attn += 2 * head_dim;
  int64_t mlp = 3 * hidden_size * intermediate_size + (mlp_bias ? 2 * intermediate_size + hidden_size : 0);
  int64_t layer = attn + mlp + 2 * hidden_size;
  int64_t embed = vocab_size * hidden_size;
  return embed + num_hidden_layers * layer + hidden_size + (tie_word_embeddings ? 0 : embed);
}

ModelConfig config_parse(const json& j, const std::string& origin) {
  if (!j.is_object()) throw FormatError(fmt::format("{}: expected a JSON object", origin));
  Reader r(j, origin);
  ModelConfig c;
  c.model_type = r.string_or("model_type", "");
  const FamilyTraits* family = family_find(c.model_type);
  if (!family)
    throw FormatError(fmt::format("{}: model_type '{}' is not supported; expected one of: {}", origin, c.model_type,
                                  supported_list()));
  if (auto a = j.find("architectures"); a != j.end() && a->is_array())
    for (const auto& s : *a)
      if (s.is_string()) c.architectures.push_back(s.get<std::string>());
  c.vocab_size = r.int_required("vocab_size");
  c.hidden_size = r.int_required("hidden_size");
  c.intermediate_size = r.int_required("intermediate_size");
  c.num_hidden_layers = r.int_required("num_hidden_layers");
  c.num_attention_heads = r.int_required("num_attention_heads");
  c.num_key_value_heads = r.int_or("num_key_value_heads", c.num_attention_heads);
  c.head_dim = r.int_or("head_dim", c.num_attention_heads > 0 ? c.hidden_size / c.num_attention_heads : 0);
  c.max_position_embeddings = r.int_or("max_position_embeddings", 2048);
  c.rms_norm_eps = r.number_or("rms_norm_eps", 1e-6);
  c.rope_theta = r.number_or("rope_theta", 10000.0);
  c.rope_scaling = parse_rope_scaling(j, origin);
  c.hidden_act = r.string_or("hidden_act", "silu");
  c.tie_word_embeddings = r.bool_or("tie_word_embeddings", false);
  c.mlp_bias = r.bool_or("mlp_bias", false);
  c.torch_dtype = r.string_or("torch_dtype", "float32");
  c.bos_token_id = j.contains("bos_token_id") && j["bos_token_id"].is_number_integer()
                       ? std::optional<int64_t>(j["bos_token_id"].get<int64_t>())
                       : std::nullopt;
  c.eos_token_id = r.ids("eos_token_id");
  bool attention_bias = family->honors_attention_bias && r.bool_or("attention_bias", false);
  c.attention_bias = attention_bias || family->qkv_bias_always;
  c.qkv_bias = attention_bias || family->qkv_bias_always;
  c.o_bias = attention_bias;
  c.qk_norm = family->qk_norm;
  // Sliding window: Mistral applies it when set; Qwen2/3 only with use_sliding_window.
  int64_t window = r.int_or("sliding_window", 0);
  bool use_window = c.model_type == "mistral" ? true : r.bool_or("use_sliding_window", false);
  if (window > 0 && use_window) c.sliding_window = window;
  validate(c, origin);
  return c;
}

ModelConfig config_load(const std::filesystem::path& dir) {
  auto path = dir / "config.json";
  ModelConfig c = config_parse(io::json_read(path), path.string());
  auto gen_path = dir / "generation_config.json";
  if (std::filesystem::exists(gen_path)) {
    auto gen = io::json_read(gen_path);
    Reader r(gen, gen_path.string());
    for (int64_t id : r.ids("eos_token_id"))
      if (std::find(c.eos_token_id.begin(), c.eos_token_id.end(), id) == c.eos_token_id.end())
        c.eos_token_id.push_back(id);
    if (!c.bos_token_id && gen.contains("bos_token_id") && gen["bos_token_id"].is_number_integer())
      c.bos_token_id = gen["bos_token_id"].get<int64_t>();
  }
  for (int64_t id : c.eos_token_id)
    if (id < 0 || id >= c.vocab_size)
      throw FormatError(
          fmt::format("{}: eos_token_id {} outside the vocabulary of {}", gen_path.string(), id, c.vocab_size));
  if (c.bos_token_id && (*c.bos_token_id < 0 || *c.bos_token_id >= c.vocab_size))
    throw FormatError(fmt::format("{}: bos_token_id {} outside the vocabulary of {}", gen_path.string(),
                                  *c.bos_token_id, c.vocab_size));
  return c;
}

}  // namespace hearth::model
