#include "model/lora.h"

#include <algorithm>
#include <cmath>
#include <map>

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/csrc/autograd/custom_function.h>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/json_file.h"
#include "model/checkpoint.h"

namespace hearth::model {
namespace {

constexpr const char* kTargetNames[kLoraTargetCount] = {"q_proj",    "k_proj",  "v_proj",   "o_proj",
                                                        "gate_proj", "up_proj", "down_proj"};

std::string module_path(int64_t layer, LoraTarget t) {
  bool attn = t == LoraTarget::kQ || t == LoraTarget::kK || t == LoraTarget::kV || t == LoraTarget::kO;
  return fmt::format("base_model.model.model.layers.{}.{}.{}", layer, attn ? "self_attn" : "mlp",
                     kTargetNames[static_cast<int>(t)]);
}

// h = x·Aᵀ with x dropped out (probability p, survivors scaled by 1/(1 − p); p = 0: none), x of any float dtype
// multiplied in float32. What it keeps for backward is x itself — one tensor shared by every projection that reads
// it (q/k/v, gate/up) — and a byte mask; libtorch's ops would keep, per projection, a float32 copy of x (for a
// bfloat16 x), the dropped float32 input, and a float32 mask (on the CPU).
class LoraDown : public torch::autograd::Function<LoraDown> {
 public:
  // x [..., in], a [r, in] float32 -> [..., r] float32
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& a,
                               double p) {
    torch::Tensor keep;  // [..., in] bool
    if (p > 0) keep = torch::empty(x.sizes(), x.options().dtype(torch::kBool)).bernoulli_(1.0 - p);
    ctx->save_for_backward({x, keep, a});
    ctx->saved_data["p"] = p;
    return torch::linear(dropped(x.to(torch::kFloat32), keep, p), a);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto &x = saved[0], &keep = saved[1], &a = saved[2];
    const double p = ctx->saved_data["p"].toDouble();
    const auto& g = grads[0];  // [..., r]
    const int64_t r = a.size(0), in = a.size(1);
    torch::Tensor dx, da;
    if (ctx->needs_input_grad(1))
      da = g.reshape({-1, r}).t().mm(dropped(x.to(torch::kFloat32), keep, p).reshape({-1, in}));
    if (ctx->needs_input_grad(0)) dx = dropped(g.matmul(a), keep, p).to(x.scalar_type());
    return {dx, da, torch::Tensor()};
  }

 private:
  // t with the mask applied: zero where !keep, the rest scaled by 1/(1 − p); t itself when p = 0.
  static torch::Tensor dropped(const torch::Tensor& t, const torch::Tensor& keep, double p) {
    return p > 0 ? t * keep * (1.0 / (1.0 - p)) : t;
  }
};

LoraConfig config_from_peft(const nlohmann::json& j, const std::string& origin) {
  auto fail = [&](const std::string& what) { return FormatError(fmt::format("{}: {}", origin, what)); };
  if (!j.is_object()) throw fail("expected a JSON object");
  // No j.value(key, fallback) here: it throws nlohmann's type_error when the key holds another type (a null
  // base_model_name_or_path, "use_rslora": "yes"), which escaped as an internal error.
  auto flag = [&](const char* key) {
    if (!j.contains(key) || j[key].is_null()) return false;
    if (!j[key].is_boolean()) throw fail(fmt::format("key '{}'; expected true or false, got {}", key, j[key].dump()));
    return j[key].get<bool>();
  };
  if (!j.contains("peft_type") || j["peft_type"] != "LORA")
    throw fail(fmt::format("key 'peft_type'; expected \"LORA\", got {}",
                           j.contains("peft_type") ? j["peft_type"].dump() : "nothing"));
  LoraConfig c;
  if (!j.contains("r") || !j["r"].is_number_integer() || j["r"].get<int64_t>() <= 0)
    throw fail("key 'r'; expected a positive integer");
  c.r = j["r"].get<int64_t>();
  c.alpha = j.contains("lora_alpha") && j["lora_alpha"].is_number() ? j["lora_alpha"].get<double>() : 8.0;
  c.dropout = j.contains("lora_dropout") && j["lora_dropout"].is_number() ? j["lora_dropout"].get<double>() : 0.0;
  c.use_rslora = flag("use_rslora");
  if (flag("fan_in_fan_out")) throw fail("key 'fan_in_fan_out' = true is not supported");
  if (flag("use_dora")) throw fail("key 'use_dora' = true (DoRA) is not supported");
  for (const char* key : {"rank_pattern", "alpha_pattern"})
    if (j.contains(key) && j[key].is_object() && !j[key].empty())
      throw fail(fmt::format("key '{}' (per-module ranks) is not supported", key));
  c.targets.clear();
  auto tm = j.find("target_modules");
  if (tm == j.end() || !tm->is_array()) throw fail("key 'target_modules'; expected a list of module names");
  for (const auto& m : *tm) {
    auto t = m.is_string() ? lora_target_parse(m.get<std::string>()) : std::nullopt;
    if (!t)
      throw fail(
          fmt::format("target_modules: {} is not supported; expected q_proj, k_proj, v_proj, o_proj, "
                      "gate_proj, up_proj, down_proj",
                      m.dump()));
    c.targets.push_back(*t);
  }
  const auto base = j.find("base_model_name_or_path");  // a string, null or absent
  c.base_model = base != j.end() && base->is_string() ? base->get<std::string>() : std::string();
  return c;
}

}  // namespace

const char* lora_target_name(LoraTarget t) { return kTargetNames[static_cast<int>(t)]; }

std::optional<LoraTarget> lora_target_parse(const std::string& name) {
  std::string n = name;
  if (auto dot = n.rfind('.'); dot != std::string::npos) n = n.substr(dot + 1);
  for (size_t i = 0; i < kLoraTargetCount; ++i) {
    std::string full = kTargetNames[i];
    if (n == full || n == full.substr(0, full.size() - 5)) return static_cast<LoraTarget>(i);
  }
  return std::nullopt;
}

std::pair<int64_t, int64_t> lora_target_shape(const ModelConfig& c, LoraTarget t) {
  const int64_t C = c.hidden_size, q = c.num_attention_heads * c.head_dim, kv = c.num_key_value_heads * c.head_dim;
  switch (t) {
    case LoraTarget::kQ: return {q, C};
    case LoraTarget::kK:
    case LoraTarget::kV: return {kv, C};
    case LoraTarget::kO: return {C, q};
    case LoraTarget::kGate:
    case LoraTarget::kUp: return {c.intermediate_size, C};
    case LoraTarget::kDown: return {C, c.intermediate_size};
  }
  return {0, 0};
}

double LoraConfig::scale() const { return use_rslora ? alpha / std::sqrt(double(r)) : alpha / double(r); }

LoraAdapter LoraAdapter::create(const ModelConfig& model, const LoraConfig& config, uint64_t seed,
                                torch::Device device) {
  if (config.r <= 0) throw ConfigError(fmt::format("lora.rank: expected a positive integer, got {}", config.r));
  if (config.targets.empty()) throw ConfigError("lora.target_modules: expected at least one module");
  LoraAdapter a;
  a.config_ = config;
  a.n_layers_ = model.num_hidden_layers;
  a.layers_.resize(model.num_hidden_layers);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  for (int64_t l = 0; l < model.num_hidden_layers; ++l)
    for (LoraTarget t : config.targets) {
      auto [out, in] = lora_target_shape(model, t);
      double bound = 1.0 / std::sqrt(double(in));
      auto A = at::empty({config.r, in}, torch::kFloat32).uniform_(-bound, bound, gen);
      auto B = torch::zeros({out, config.r}, torch::kFloat32);
      a.layers_[l][static_cast<int>(t)] = LoraPair{A.to(device), B.to(device)};
    }
  return a;
}

LoraAdapter LoraAdapter::load(const std::filesystem::path& dir, const ModelConfig& model, torch::Device device) {
  auto cfg_path = dir / "adapter_config.json";
  LoraAdapter a;
  a.config_ = config_from_peft(io::json_read(cfg_path), cfg_path.string());
  a.n_layers_ = model.num_hidden_layers;
  a.layers_.resize(model.num_hidden_layers);
  auto weights_path = dir / "adapter_model.safetensors";
  auto tensors = safetensors_tensors(weights_path);
  for (auto& [name, t] : tensors) {
    // base_model.model.model.layers.N.<block>.<module>.lora_{A,B}[.default].weight
    int64_t layer = -1;
    char module[64] = {0}, which = 0;
    if (std::sscanf(name.c_str(), "base_model.model.model.layers.%ld.%*[a-z_].%63[a-z_].lora_%c", &layer, module,
                    &which) != 3 ||
        layer < 0 || layer >= model.num_hidden_layers || (which != 'A' && which != 'B'))
      throw FormatError(fmt::format("{}: tensor '{}' is not a LoRA weight of this model's {} layers",
                                    weights_path.string(), name, model.num_hidden_layers));
    auto target = lora_target_parse(module);
    if (!target)
      throw FormatError(fmt::format("{}: tensor '{}': unsupported module '{}'", weights_path.string(), name, module));
    auto [out, in] = lora_target_shape(model, *target);
    std::vector<int64_t> want = which == 'A' ? std::vector<int64_t>{a.config_.r, in}
                                             : std::vector<int64_t>{out, a.config_.r};
    if (t.sizes().vec() != want)
      throw FormatError(fmt::format("{}: tensor '{}' has shape [{}]; expected [{}] for r={} and this model",
                                    weights_path.string(), name, fmt::join(t.sizes().vec(), ", "),
                                    fmt::join(want, ", "), a.config_.r));
    auto& slot = a.layers_[layer][static_cast<int>(*target)];
    if (!slot) slot = LoraPair{};
    (which == 'A' ? slot->A : slot->B) = t.to(device, torch::kFloat32).clone();
  }
  for (int64_t l = 0; l < a.n_layers_; ++l)
    for (auto& slot : a.layers_[l])
      if (slot && (!slot->A.defined() || !slot->B.defined()))
        throw FormatError(
            fmt::format("{}: layer {} has lora_A without lora_B or the reverse", weights_path.string(), l));
  return a;
}

const LoraPair* LoraAdapter::find(int64_t layer, LoraTarget t) const {
  const auto& slot = layers_[layer][static_cast<int>(t)];
  return slot ? &*slot : nullptr;
}

LoraPair* LoraAdapter::find(int64_t layer, LoraTarget t) {
  auto& slot = layers_[layer][static_cast<int>(t)];
  return slot ? &*slot : nullptr;
}

std::vector<torch::Tensor> LoraAdapter::parameters() const {
  std::vector<torch::Tensor> out;
  for (const auto& layer : layers_)
    for (const auto& slot : layer)
      if (slot) {
        out.push_back(slot->A);
        out.push_back(slot->B);
      }
  return out;
}

int64_t LoraAdapter::parameter_count() const {
  int64_t n = 0;
  for (const auto& p : parameters()) n += p.numel();
  return n;
}

std::map<std::string, torch::Tensor> LoraAdapter::named_tensors() const {
  std::map<std::string, torch::Tensor> out;
  for (int64_t l = 0; l < n_layers_; ++l)
    for (size_t t = 0; t < kLoraTargetCount; ++t)
      if (const auto& slot = layers_[l][t]) {
        std::string base = module_path(l, static_cast<LoraTarget>(t));
        out[base + ".lora_A.weight"] = slot->A;
        out[base + ".lora_B.weight"] = slot->B;
      }
  return out;
}

nlohmann::json LoraAdapter::peft_config() const {
  std::vector<std::string> targets;
  for (auto t : config_.targets) targets.push_back(lora_target_name(t));
  return {{"peft_type", "LORA"},
          {"task_type", "CAUSAL_LM"},
          {"r", config_.r},
          {"lora_alpha", config_.alpha},
          {"lora_dropout", config_.dropout},
          {"use_rslora", config_.use_rslora},
          {"target_modules", targets},
          {"base_model_name_or_path", config_.base_model},
          {"bias", "none"},
          {"fan_in_fan_out", false},
          {"inference_mode", true},
          {"init_lora_weights", true},
          {"modules_to_save", nullptr},
          {"layers_to_transform", nullptr},
          {"rank_pattern", nlohmann::json::object()},
          {"alpha_pattern", nlohmann::json::object()},
          {"use_dora", false}};
}

void LoraAdapter::save(const std::filesystem::path& dir) const {
  std::filesystem::create_directories(dir);
  safetensors_save(dir / "adapter_model.safetensors", named_tensors(), {{"format", "pt"}});
  io::atomic_write(dir / "adapter_config.json", peft_config().dump(2) + "\n");
}

torch::Tensor lora_delta(const torch::Tensor& x, const std::vector<const LoraAdapter*>& rows, int64_t layer,
                         LoraTarget target, bool training) {
  auto one = [&](const LoraAdapter& a, const torch::Tensor& xs) -> torch::Tensor {
    const LoraPair* p = a.find(layer, target);
    if (!p) return {};
    // x [b, T, in] -> [b, T, r] -> [b, T, out]. Dropout always through LoraDown (a checkpointed layer's first pass,
    // without autograd, must draw the masks its recomputation draws); without dropout, under autograd only when x is
    // not float32 (a float32 x is what libtorch's product keeps anyway).
    const double p_drop = training ? a.config().dropout : 0.0;
    auto h = p_drop > 0 || (torch::GradMode::is_enabled() && xs.scalar_type() != torch::kFloat32)
                 ? LoraDown::apply(xs, p->A, p_drop)
                 : torch::linear(xs.to(torch::kFloat32), p->A);
    return (torch::linear(h, p->B) * a.config().scale()).to(x.scalar_type());
  };
  if (rows.empty()) return {};
  if (rows.size() == 1) return rows[0] ? one(*rows[0], x) : torch::Tensor();
  // Group rows by adapter; each group is one pair of small matmuls.
  std::map<const LoraAdapter*, std::vector<int64_t>> groups;
  for (size_t b = 0; b < rows.size(); ++b)
    if (rows[b]) groups[rows[b]].push_back(static_cast<int64_t>(b));
  torch::Tensor delta;
  for (const auto& [adapter, idx] : groups) {
    auto index = torch::tensor(idx, torch::kInt64).to(x.device());
    auto d = one(*adapter, idx.size() == rows.size() ? x : x.index_select(0, index));
    if (!d.defined()) continue;
    if (idx.size() == rows.size()) return d;
    if (!delta.defined()) delta = torch::zeros({x.size(0), x.size(1), d.size(2)}, d.options());
    delta = delta.index_add(0, index, d);
  }
  return delta;
}

std::vector<torch::Tensor> lora_trainable(const std::vector<const LoraAdapter*>& rows, int64_t layer) {
  std::vector<torch::Tensor> out;
  std::vector<const LoraAdapter*> seen;
  for (const auto* adapter : rows) {
    if (!adapter || std::find(seen.begin(), seen.end(), adapter) != seen.end()) continue;
    seen.push_back(adapter);
    for (size_t t = 0; t < kLoraTargetCount; ++t)
      if (const auto* p = adapter->find(layer, static_cast<LoraTarget>(t)))
        for (const auto& w : {p->A, p->B})
          if (w.requires_grad()) out.push_back(w);
  }
  return out;
}

}  // namespace hearth::model
