#include "recipe/lora_recipe.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <map>
#include <set>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <yaml-cpp/yaml.h>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/hf_cache.h"
#include "tokenizer/regex.h"
#include "tokenizer/unicode.h"

namespace hearth::recipe {
namespace fs = std::filesystem;

namespace {

// Offset of the first byte of `s` that is not part of well-formed UTF-8 (RFC 3629: no overlong forms, no
// surrogates, nothing above U+10FFFF), or npos. yaml-cpp takes any bytes, but the resolved recipe is saved as
// JSON, which must be UTF-8 (nlohmann's dump throws on anything else).
size_t utf8_invalid_at(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    const size_t n = (c & 0xE0) == 0xC0 ? 1 : (c & 0xF0) == 0xE0 ? 2 : (c & 0xF8) == 0xF0 ? 3 : 0;
    if (n == 0 || i + n >= s.size()) return i;  // not a lead byte, or cut short
    uint32_t cp = c & (0x3F >> n);
    for (size_t k = 1; k <= n; ++k) {
      const auto b = static_cast<unsigned char>(s[i + k]);
      if ((b & 0xC0) != 0x80) return i;
      cp = (cp << 6) | (b & 0x3F);
    }
    const uint32_t min = n == 1 ? 0x80 : n == 2 ? 0x800 : 0x10000;
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
    i += n + 1;
  }
  return std::string_view::npos;
}

// Reads typed values from the YAML tree; every error names the file, line and dotted key.
class Reader {
 public:
  // `overrides`: the command line's "key.path=value" specs, so that an error in a value they set names the
  // override rather than a line of the file (their nodes come from parsing the value alone: line 1).
  Reader(std::string origin, fs::path base, const std::vector<std::string>& overrides = {})
      : origin_(std::move(origin)), base_(std::move(base)) {
    for (const auto& o : overrides)
      if (auto eq = o.find('='); eq != std::string::npos) overrides_[o.substr(0, eq)] = o;
  }

  ConfigError error(const YAML::Node& node, const std::string& key, const std::string& what) const {
    for (const auto& [k, spec] : overrides_)
      if (key == k || key.rfind(k + ".", 0) == 0 || key.rfind(k + "[", 0) == 0)
        return ConfigError(fmt::format("override '{}': {}: {}", spec, key, what));
    std::string where = origin_;
    if (node.IsDefined() && !node.Mark().is_null()) where += fmt::format(":{}", node.Mark().line + 1);
    return ConfigError(fmt::format("{}: {}: {}", where, key, what));
  }

  // Fails on keys of `map` not in `known`, listing the valid ones.
  void keys_check(const YAML::Node& map, const std::string& prefix, const std::vector<std::string>& known) const {
    if (!map.IsDefined() || map.IsNull()) return;
    if (!map.IsMap()) throw error(map, prefix.empty() ? "(top level)" : prefix, "expected a mapping of keys");
    for (const auto& kv : map) {
      if (!kv.first.IsScalar())  // YAML allows "? [a, b]" or "{a: 1}: x"; as<std::string>() would throw
        throw error(kv.first, prefix.empty() ? "(top level)" : prefix,
                    fmt::format("keys must be plain words, got a {}", kv.first.IsMap() ? "mapping" : "list"));
      auto key = kv.first.Scalar();
      if (std::find(known.begin(), known.end(), key) == known.end())
        throw error(kv.first, prefix.empty() ? key : prefix + "." + key,
                    fmt::format("unknown key; valid keys here are: {}", fmt::join(known, ", ")));
    }
  }

  template <typename T>
  T get(const YAML::Node& map, const std::string& key, const std::string& path, T fallback, const char* type) const {
    if (!map.IsDefined() || !map.IsMap()) return fallback;
    YAML::Node n = map[key];
    if (!n.IsDefined() || n.IsNull()) return fallback;
    if (!n.IsScalar()) throw error(n, path, fmt::format("expected {}, got a {}", type, n.IsMap() ? "mapping" : "list"));
    try {
      return n.as<T>();
    } catch (const YAML::Exception&) {
      throw error(n, path, fmt::format("expected {}, got '{}'", type, n.Scalar()));
    }
  }

  std::string path(const YAML::Node& map, const std::string& key, const std::string& dotted) const {
    std::string p = get<std::string>(map, key, dotted, "", "a path");
    if (p.empty()) return p;
    if (p.rfind("~/", 0) == 0 && std::getenv("HOME")) return (fs::path(std::getenv("HOME")) / p.substr(2)).string();
    fs::path fp(p);
    return (fp.is_absolute() ? fp : base_ / fp).lexically_normal().string();
  }

  // `model`: a folder or file path (relative to the recipe), or a model name in the Hugging Face cache
  // (org/name[@revision], io::model_path_resolve) when no such path exists. Throws IoError for an uncached name.
  std::string model_path(const YAML::Node& map) const {
    const std::string p = path(map, "model", "model");
    const std::string raw = get<std::string>(map, "model", "model", "", "a path or model name");
    std::error_code ec;
    if (p.empty() || fs::exists(p, ec) || !io::hf_repo_ref_parse(raw) || fs::exists(raw, ec)) return p;
    try {
      return io::model_path_resolve(raw).string();
    } catch (const IoError& e) {
      throw IoError(fmt::format("{}: model: {}", origin_, e.what()));
    }
  }

  const std::string& origin() const { return origin_; }

 private:
  std::string origin_;
  fs::path base_;
  std::map<std::string, std::string> overrides_;  // dotted key -> "key=value"
};

// Checks a numeric value against [lo, hi]; `node` locates it.
template <typename T>
void range_check(const Reader& r, const YAML::Node& node, const std::string& key, T value, T lo, T hi,
                 const std::string& expected) {
  if (!(value >= lo && value <= hi)) throw r.error(node, key, fmt::format("expected {}, got {}", expected, value));
}

YAML::Node child(const YAML::Node& n, const char* key) {
  if (!n.IsDefined() || !n.IsMap()) return YAML::Node(YAML::NodeType::Undefined);
  return n[key];
}

void read_lora(const Reader& r, const YAML::Node& n, LoraRecipe::Lora& l) {
  r.keys_check(n, "lora", {"rank", "alpha", "dropout", "target_modules", "use_rslora"});
  l.rank = r.get<int64_t>(n, "rank", "lora.rank", l.rank, "an integer");
  range_check<int64_t>(r, child(n, "rank"), "lora.rank", l.rank, 1, 4096, "1..4096");
  l.alpha = r.get<double>(n, "alpha", "lora.alpha", l.alpha, "a number");
  range_check(r, child(n, "alpha"), "lora.alpha", l.alpha, 1e-6, 1e6, "a positive number");
  l.dropout = r.get<double>(n, "dropout", "lora.dropout", l.dropout, "a number");
  range_check(r, child(n, "dropout"), "lora.dropout", l.dropout, 0.0, 0.9, "0..0.9");
  l.use_rslora = r.get<bool>(n, "use_rslora", "lora.use_rslora", l.use_rslora, "true or false");
  YAML::Node tm = child(n, "target_modules");
  if (tm.IsDefined() && !tm.IsNull()) {
    if (!tm.IsSequence() || tm.size() == 0) throw r.error(tm, "lora.target_modules", "expected a non-empty list");
    static const std::set<std::string> kValid = {"q",      "k",         "v",       "o",        "gate",
                                                 "up",     "down",      "q_proj",  "k_proj",   "v_proj",
                                                 "o_proj", "gate_proj", "up_proj", "down_proj"};
    l.target_modules.clear();
    for (const auto& m : tm) {
      auto name = m.IsScalar() ? m.Scalar() : std::string("?");
      if (!kValid.count(name))
        throw r.error(m, "lora.target_modules",
                      fmt::format("unknown module '{}'; expected q, k, v, o, gate, up, down (or q_proj, ...)", name));
      l.target_modules.push_back(name.size() <= 4 ? name + "_proj" : name);
    }
  }
}

void read_optimizer(const Reader& r, const YAML::Node& n, LoraRecipe::Optimizer& o) {
  r.keys_check(n, "optimizer", {"lr", "betas", "eps", "weight_decay"});
  o.lr = r.get<double>(n, "lr", "optimizer.lr", o.lr, "a number");
  range_check(r, child(n, "lr"), "optimizer.lr", o.lr, 1e-12, 1.0, "a learning rate in (0, 1]");
  o.eps = r.get<double>(n, "eps", "optimizer.eps", o.eps, "a number");
  range_check(r, child(n, "eps"), "optimizer.eps", o.eps, 1e-20, 1.0, "a small positive number");
  o.weight_decay = r.get<double>(n, "weight_decay", "optimizer.weight_decay", o.weight_decay, "a number");
  range_check(r, child(n, "weight_decay"), "optimizer.weight_decay", o.weight_decay, 0.0, 1.0, "0..1");
  YAML::Node b = child(n, "betas");
  if (b.IsDefined() && !b.IsNull()) {
    if (!b.IsSequence() || b.size() != 2) throw r.error(b, "optimizer.betas", "expected a list of two numbers");
    try {
      o.beta1 = b[0].as<double>();
      o.beta2 = b[1].as<double>();
    } catch (const YAML::Exception&) {
      throw r.error(b, "optimizer.betas", "expected a list of two numbers");
    }
    range_check(r, b, "optimizer.betas[0]", o.beta1, 0.0, 0.999999, "0 <= beta < 1");
    range_check(r, b, "optimizer.betas[1]", o.beta2, 0.0, 0.999999, "0 <= beta < 1");
  }
}

void read_schedule(const Reader& r, const YAML::Node& n, LoraRecipe::Schedule& s) {
  r.keys_check(n, "schedule", {"type", "warmup_steps", "warmup_ratio", "min_lr_ratio"});
  s.type = r.get<std::string>(n, "type", "schedule.type", s.type, "constant, linear or cosine");
  if (s.type != "constant" && s.type != "linear" && s.type != "cosine")
    throw r.error(child(n, "type"), "schedule.type",
                  fmt::format("expected constant, linear or cosine, got '{}'", s.type));
  s.warmup_steps = r.get<int64_t>(n, "warmup_steps", "schedule.warmup_steps", s.warmup_steps, "an integer");
  s.warmup_ratio = r.get<double>(n, "warmup_ratio", "schedule.warmup_ratio", s.warmup_ratio, "a number");
  range_check(r, child(n, "warmup_ratio"), "schedule.warmup_ratio", s.warmup_ratio, 0.0, 1.0, "0..1");
  if (child(n, "warmup_steps").IsDefined() && !child(n, "warmup_steps").IsNull() &&
      child(n, "warmup_ratio").IsDefined() && !child(n, "warmup_ratio").IsNull())
    throw r.error(child(n, "warmup_ratio"), "schedule", "give warmup_steps or warmup_ratio, not both");
  if (s.warmup_steps < -1) throw r.error(child(n, "warmup_steps"), "schedule.warmup_steps", "expected >= 0");
  s.min_lr_ratio = r.get<double>(n, "min_lr_ratio", "schedule.min_lr_ratio", s.min_lr_ratio, "a number");
  range_check(r, child(n, "min_lr_ratio"), "schedule.min_lr_ratio", s.min_lr_ratio, 0.0, 1.0, "0..1");
}

void read_training(const Reader& r, const YAML::Node& n, LoraRecipe::Training& t) {
  r.keys_check(n, "training",
               {"micro_batch_size", "gradient_accumulation_steps", "seq_len", "max_steps", "epochs", "max_time",
                "grad_clip", "dtype", "gradient_checkpointing", "seed", "device", "threads", "log_every"});
  auto int_in = [&](const char* key, int64_t& v, int64_t lo, int64_t hi, const char* expected) {
    v = r.get<int64_t>(n, key, std::string("training.") + key, v, "an integer");
    range_check<int64_t>(r, child(n, key), std::string("training.") + key, v, lo, hi, expected);
  };
  int_in("micro_batch_size", t.micro_batch_size, 1, 4096, "1..4096");
  int_in("gradient_accumulation_steps", t.gradient_accumulation_steps, 1, 4096, "1..4096");
  int_in("seq_len", t.seq_len, 0, 1 << 20, "0 (the dataset's) or a positive length");
  int_in("max_steps", t.max_steps, 0, int64_t(1) << 40, ">= 0");
  int_in("threads", t.threads, 0, 4096, ">= 0");
  int_in("log_every", t.log_every, 1, int64_t(1) << 40, ">= 1");
  t.epochs = r.get<double>(n, "epochs", "training.epochs", t.epochs, "a number");
  range_check(r, child(n, "epochs"), "training.epochs", t.epochs, 1e-6, 1e6, "a positive number");
  std::string max_time = r.get<std::string>(n, "max_time", "training.max_time", "", "a duration such as 90m");
  if (!max_time.empty()) {
    try {
      t.max_time = duration_parse(max_time, "training.max_time");
    } catch (const ConfigError& e) {
      throw r.error(child(n, "max_time"), "training.max_time",
                    fmt::format("expected a duration like 45m, 2h, 1h30m or "
                                "seconds, got '{}'",
                                max_time));
    }
  }
  t.grad_clip = r.get<double>(n, "grad_clip", "training.grad_clip", t.grad_clip, "a number");
  range_check(r, child(n, "grad_clip"), "training.grad_clip", t.grad_clip, 0.0, 1e6, ">= 0 (0 = off)");
  t.dtype = r.get<std::string>(n, "dtype", "training.dtype", t.dtype, "float32 or bfloat16");
  if (t.dtype != "float32" && t.dtype != "bfloat16")
    throw r.error(child(n, "dtype"), "training.dtype", fmt::format("expected float32 or bfloat16, got '{}'", t.dtype));
  t.gradient_checkpointing = r.get<bool>(n, "gradient_checkpointing", "training.gradient_checkpointing",
                                         t.gradient_checkpointing, "true or false");
  t.seed = r.get<uint64_t>(n, "seed", "training.seed", t.seed, "a non-negative integer");
  t.device = r.get<std::string>(n, "device", "training.device", t.device, "cpu, cuda or auto");
  if (t.device != "cpu" && t.device != "cuda" && t.device != "auto")
    throw r.error(child(n, "device"), "training.device", fmt::format("expected cpu, cuda or auto, got '{}'", t.device));
}

void read_eval_checkpoint(const Reader& r, const YAML::Node& root, LoraRecipe& rc) {
  YAML::Node e = child(root, "eval"), c = child(root, "checkpoint");
  r.keys_check(e, "eval", {"every", "max_batches", "patience"});
  rc.eval.every = r.get<int64_t>(e, "every", "eval.every", rc.eval.every, "an integer");
  rc.eval.max_batches = r.get<int64_t>(e, "max_batches", "eval.max_batches", rc.eval.max_batches, "an integer");
  rc.eval.patience = r.get<int64_t>(e, "patience", "eval.patience", rc.eval.patience, "an integer");
  for (auto [key, v] :
       {std::pair{"every", rc.eval.every}, {"max_batches", rc.eval.max_batches}, {"patience", rc.eval.patience}})
    range_check<int64_t>(r, child(e, key), std::string("eval.") + key, v, 0, int64_t(1) << 40, ">= 0");
  r.keys_check(c, "checkpoint", {"every", "keep_last"});
  rc.checkpoint.every = r.get<int64_t>(c, "every", "checkpoint.every", rc.checkpoint.every, "an integer");
  range_check<int64_t>(r, child(c, "every"), "checkpoint.every", rc.checkpoint.every, 1, int64_t(1) << 40, ">= 1");
  rc.checkpoint.keep_last = r.get<int64_t>(c, "keep_last", "checkpoint.keep_last", rc.checkpoint.keep_last,
                                           "an integer");
  range_check<int64_t>(r, child(c, "keep_last"), "checkpoint.keep_last", rc.checkpoint.keep_last, 1, 1000, "1..1000");
}

void read_datasets(const Reader& r, const YAML::Node& root, LoraRecipe& rc) {
  YAML::Node d = child(root, "datasets");
  if (!d.IsDefined() || d.IsNull()) throw r.error(root, "datasets", "missing; expected a list of dataset folders");
  auto one = [&](const YAML::Node& item) {
    DatasetSource s;
    if (item.IsScalar()) {
      YAML::Node wrap;
      wrap["path"] = item;
      s.path = r.path(wrap, "path", "datasets[].path");
      return s;
    }
    r.keys_check(item, "datasets[]", {"path", "weight"});
    s.path = r.path(item, "path", "datasets[].path");
    if (s.path.empty()) throw r.error(item, "datasets[].path", "missing");
    s.weight = r.get<double>(item, "weight", "datasets[].weight", 1.0, "a number");
    range_check(r, child(item, "weight"), "datasets[].weight", s.weight, 1e-6, 1e6, "a positive number");
    return s;
  };
  if (d.IsSequence()) {
    for (const auto& item : d) rc.datasets.push_back(one(item));
  } else {
    rc.datasets.push_back(one(d));
  }
  if (rc.datasets.empty()) throw r.error(d, "datasets", "expected at least one dataset");
}

// "a.b.c=value" -> sets root[a][b][c] = YAML(value).
void override_apply(YAML::Node& root, const std::string& spec) {
  auto eq = spec.find('=');
  if (eq == std::string::npos || eq == 0)
    throw ConfigError(fmt::format("override '{}': expected key.path=value", spec));
  std::string key = spec.substr(0, eq);
  YAML::Node value;
  try {
    value = YAML::Load(spec.substr(eq + 1));
  } catch (const YAML::Exception& e) {
    throw ConfigError(fmt::format("override '{}': value is not valid YAML: {}", spec, e.msg));
  }
  std::vector<std::string> parts;
  for (size_t start = 0;;) {
    auto dot = key.find('.', start);
    parts.push_back(key.substr(start, dot - start));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  // yaml-cpp's operator[] throws on a scalar or a list (BadSubscript): check each node before indexing it.
  if (!root.IsMap()) throw ConfigError(fmt::format("override '{}': the recipe's top level is not a mapping", spec));
  std::vector<YAML::Node> chain = {root};
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    YAML::Node next = chain.back()[parts[i]];
    if (next.IsDefined() && !next.IsNull() && !next.IsMap())
      throw ConfigError(fmt::format("override '{}': '{}' is not a mapping", spec, parts[i]));
    chain.push_back(next);
  }
  chain.back()[parts.back()] = value;
}

}  // namespace

double duration_parse(const std::string& text, const std::string& key) {
  static const tokenizer::Regex kPlain(R"(^\s*([0-9]+(\.[0-9]+)?)\s*\z)", tokenizer::Where{"recipe", "duration"});
  static const tokenizer::Regex kUnits(
      R"(^\s*(([0-9]+(\.[0-9]+)?)h)?\s*(([0-9]+(\.[0-9]+)?)m)?\s*(([0-9]+(\.[0-9]+)?)s)?\s*\z)",
      tokenizer::Where{"recipe", "duration"});
  std::vector<tokenizer::Span> m;
  auto matched = [&](size_t i) { return i < m.size() && m[i].first != std::string::npos; };
  auto number = [&](size_t i) {  // digits only; so many that they overflow a double are still a bad duration
    double v = std::strtod(text.substr(m[i].first, m[i].second - m[i].first).c_str(), nullptr);
    if (!std::isfinite(v))
      throw ConfigError(fmt::format("{}: expected a duration like 45m, 2h, 1h30m or seconds, got '{}'", key, text));
    return v;
  };
  if (tokenizer::utf8_is_valid(text)) {  // PCRE2 is compiled for UTF-8 and reads only valid UTF-8
    if (kPlain.search(text, &m)) return number(1);
    if (!text.empty() && kUnits.search(text, &m) && (matched(1) || matched(4) || matched(7))) {
      double s = 0;
      if (matched(2)) s += 3600 * number(2);
      if (matched(5)) s += 60 * number(5);
      if (matched(8)) s += number(8);
      return s;
    }
  }
  throw ConfigError(fmt::format("{}: expected a duration like 45m, 2h, 1h30m or seconds, got '{}'", key, text));
}

// yaml-cpp keeps both entries of a key written twice and lookups see only the first, so the second would be
// silently ignored: refuse it, naming both lines.
void duplicate_keys_check(const YAML::Node& node, const std::string& origin, const std::string& path) {
  if (node.IsSequence()) {
    for (size_t i = 0; i < node.size(); ++i) duplicate_keys_check(node[i], origin, fmt::format("{}[{}]", path, i));
    return;
  }
  if (!node.IsMap()) return;
  std::map<std::string, int> seen;  // key -> line (1-based)
  for (auto it = node.begin(); it != node.end(); ++it) {
    const std::string key = it->first.IsScalar() ? it->first.Scalar() : "";
    const std::string where = path.empty() ? key : path + "." + key;
    const int line = it->first.Mark().line + 1;
    if (auto [prev, fresh] = seen.emplace(key, line); !fresh)
      throw ConfigError(
          fmt::format("{}:{}: key '{}' appears twice (first on line {}); keep one", origin, line, where, prev->second));
    duplicate_keys_check(it->second, origin, where);
  }
}

namespace {

LoraRecipe recipe_read(YAML::Node& root, const std::string& origin, const fs::path& base_dir,
                       const std::vector<std::string>& overrides) {
  duplicate_keys_check(root, origin, "");
  for (const auto& o : overrides) override_apply(root, o);
  Reader r(origin, base_dir, overrides);
  r.keys_check(root, "",
               {"model", "datasets", "output_dir", "init_adapter", "quantize_base", "lora", "optimizer", "schedule",
                "training", "eval", "checkpoint"});
  LoraRecipe rc;
  rc.model = r.model_path(root);
  if (rc.model.empty()) throw r.error(root, "model", "missing; expected a Hugging Face model folder");
  rc.output_dir = r.path(root, "output_dir", "output_dir");
  if (rc.output_dir.empty()) throw r.error(root, "output_dir", "missing; expected the run directory");
  rc.init_adapter = r.path(root, "init_adapter", "init_adapter");
  rc.quantize_base = r.get<std::string>(root, "quantize_base", "quantize_base", "", "q8_0, q4_0 or q4_k");
  std::transform(rc.quantize_base.begin(), rc.quantize_base.end(), rc.quantize_base.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (!rc.quantize_base.empty() && rc.quantize_base != "q8_0" && rc.quantize_base != "q4_0" &&
      rc.quantize_base != "q4_k")
    throw r.error(child(root, "quantize_base"), "quantize_base",
                  fmt::format("expected q8_0, q4_0 or q4_k, got '{}'", rc.quantize_base));
  read_datasets(r, root, rc);
  read_lora(r, child(root, "lora"), rc.lora);
  read_optimizer(r, child(root, "optimizer"), rc.optimizer);
  read_schedule(r, child(root, "schedule"), rc.schedule);
  read_training(r, child(root, "training"), rc.training);
  read_eval_checkpoint(r, root, rc);
  return rc;
}

}  // namespace

LoraRecipe recipe_parse(const std::string& yaml, const std::string& origin, const fs::path& base_dir,
                        const std::vector<std::string>& overrides) {
  if (const size_t bad = utf8_invalid_at(yaml); bad != std::string_view::npos)
    throw ConfigError(fmt::format("{}:{}: not UTF-8 text (byte 0x{:02X}); expected a UTF-8 recipe", origin,
                                  1 + std::count(yaml.begin(), yaml.begin() + static_cast<std::ptrdiff_t>(bad), '\n'),
                                  static_cast<unsigned char>(yaml[bad])));
  for (size_t i = 0; i < overrides.size(); ++i)  // the override itself is left out of the message: not UTF-8
    if (utf8_invalid_at(overrides[i]) != std::string_view::npos)
      throw ConfigError(fmt::format("override {} of {}: not UTF-8 text", i + 1, overrides.size()));
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::ParserException& e) {
    throw ConfigError(fmt::format("{}:{}: invalid YAML: {}", origin, e.mark.line + 1, e.msg));
  }
  if (root.IsNull()) root = YAML::Node(YAML::NodeType::Map);
  try {
    return recipe_read(root, origin, base_dir, overrides);
  } catch (const YAML::Exception& e) {
    // The readers check each node's kind before converting it; should one be missed, yaml-cpp's own error
    // (BadConversion, BadSubscript, ...) is still the recipe's fault: exit 2 with the line, not an internal error.
    if (e.mark.is_null()) throw ConfigError(fmt::format("{}: {}", origin, e.msg));
    throw ConfigError(fmt::format("{}:{}: {}", origin, e.mark.line + 1, e.msg));
  }
}

LoraRecipe recipe_load(const fs::path& file, const std::vector<std::string>& overrides) {
  std::string text = io::file_read(file);
  return recipe_parse(text, file.string(), fs::absolute(file).parent_path(), overrides);
}

nlohmann::json LoraRecipe::to_json() const {
  nlohmann::json ds = nlohmann::json::array();
  for (const auto& d : datasets) ds.push_back({{"path", d.path}, {"weight", d.weight}});
  nlohmann::json j = {
      {"model", model},
      {"datasets", ds},
      {"output_dir", output_dir},
      {"init_adapter", init_adapter},
      {"lora",
       {{"rank", lora.rank},
        {"alpha", lora.alpha},
        {"dropout", lora.dropout},
        {"target_modules", lora.target_modules},
        {"use_rslora", lora.use_rslora}}},
      {"optimizer",
       {{"lr", optimizer.lr},
        {"betas", {optimizer.beta1, optimizer.beta2}},
        {"eps", optimizer.eps},
        {"weight_decay", optimizer.weight_decay}}},
      {"schedule",
       {{"type", schedule.type},
        {"warmup_steps", schedule.warmup_steps},
        {"warmup_ratio", schedule.warmup_ratio},
        {"min_lr_ratio", schedule.min_lr_ratio}}},
      {"training",
       {{"micro_batch_size", training.micro_batch_size},
        {"gradient_accumulation_steps", training.gradient_accumulation_steps},
        {"seq_len", training.seq_len},
        {"max_steps", training.max_steps},
        {"epochs", training.epochs},
        {"max_time", training.max_time},
        {"grad_clip", training.grad_clip},
        {"dtype", training.dtype},
        {"gradient_checkpointing", training.gradient_checkpointing},
        {"seed", training.seed},
        {"device", training.device},
        {"threads", training.threads},
        {"log_every", training.log_every}}},
      {"eval", {{"every", eval.every}, {"max_batches", eval.max_batches}, {"patience", eval.patience}}},
      {"checkpoint", {{"every", checkpoint.every}, {"keep_last", checkpoint.keep_last}}},
  };
  // Only when set: the runs made before the key existed keep their identity (and resume).
  if (!quantize_base.empty()) j["quantize_base"] = quantize_base;
  return j;
}

nlohmann::json LoraRecipe::training_identity() const {
  auto j = to_json();
  // What may change between runs without changing the result: where checkpoints go and how often,
  // the time budget, logging, threads (results are per-thread-count anyway), eval cadence.
  j.erase("output_dir");
  j["training"].erase("max_time");
  j["training"].erase("log_every");
  j["training"].erase("threads");
  j.erase("checkpoint");
  j["eval"].erase("max_batches");
  return j;
}

}  // namespace hearth::recipe
