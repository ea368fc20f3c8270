#include "serve/ollama_request.h"


#include <cmath>
#include <limits>
#include <set>

#include <fmt/format.h>

#include "constrain/json_schema.h"
#include "io/json_file.h"

namespace hearth::serve {
namespace {

using ojson = nlohmann::ordered_json;

constexpr size_t kMaxStops = 16;
constexpr int kMaxTopLogprobs = 20;

[[noreturn]] void invalid(const std::string& param, const std::string& message) {
  throw ApiError(400, message, "invalid_request_error", param);
}

// A field hearth does not implement, sent with a value that asks for something.
[[noreturn]] void unsupported(const std::string& param, const std::string& why) {
  throw ApiError(400, fmt::format("'{}' is not supported by hearth serve: {}", param, why), "invalid_request_error",
                 param, "unsupported_parameter");
}

[[noreturn]] void unknown(const std::string& param) {
  throw ApiError(
      400, fmt::format("Unrecognized field '{}' (docs/serve.md, \"Ollama API\", lists the supported ones)", param),
      "invalid_request_error", param, "unknown_parameter");
}

double number_in(const ojson& v, const std::string& param, double lo, double hi) {
  if (!v.is_number()) invalid(param, fmt::format("'{}' must be a number, got {}", param, v.dump()));
  const double x = v.get<double>();
  if (!(x >= lo && x <= hi)) invalid(param, fmt::format("'{}' must be between {} and {}, got {}", param, lo, hi, x));
  return x;
}

long long integer_in(const ojson& v, const std::string& param, long long lo, long long hi) {
  if (!v.is_number_integer()) invalid(param, fmt::format("'{}' must be an integer, got {}", param, v.dump()));
  auto out_of_range = [&] {
    invalid(param, fmt::format("'{}' must be between {} and {}, got {}", param, lo, hi, v.dump()));
  };
  if (v.is_number_unsigned() && v.get<unsigned long long>() > static_cast<unsigned long long>(hi)) out_of_range();
  const long long x = v.get<long long>();
  if (x < lo || x > hi) out_of_range();
  return x;
}

bool boolean(const ojson& v, const std::string& param) {
  if (!v.is_boolean()) invalid(param, fmt::format("'{}' must be a boolean, got {}", param, v.dump()));
  return v.get<bool>();
}

std::string string(const ojson& v, const std::string& param) {
  if (!v.is_string()) invalid(param, fmt::format("'{}' must be a string, got {}", param, v.dump()));
  return v.get<std::string>();
}

ojson body_parse(const std::string& text) {
  ojson b;
  try {
    b = io::json_parse_bounded<ojson>(text);
  } catch (const io::JsonTooDeep& e) {
    throw ApiError(400, fmt::format("The request body is {}", e.what()));
  } catch (const ojson::exception& e) {  // syntax errors, and numbers out of range such as 1e400
    throw ApiError(400, fmt::format("The request body is not valid JSON: {}", e.what()));
  }
  if (!b.is_object()) throw ApiError(400, "The request body must be a JSON object");
  return b;
}

// Every key of `b` is in `known`; else a 400 naming it (prefixed with `where`).
void keys_check(const ojson& b, const std::set<std::string>& known, const std::string& where = "") {
  for (const auto& [key, value] : b.items())
    if (!known.count(key)) unknown(where + key);
}

bool has(const ojson& b, const char* key) { return b.contains(key) && !b[key].is_null(); }

// An array field hearth does not implement: absent, null or [] only.
void empty_array_only(const ojson& b, const std::string& key, const std::string& param, const std::string& why) {
  if (!b.contains(key) || b[key].is_null()) return;
  if (!b[key].is_array()) invalid(param, fmt::format("'{}' must be an array", param));
  if (!b[key].empty()) unsupported(param, why);
}

// A string field hearth does not implement: absent, null or "" only.
void empty_string_only(const ojson& b, const std::string& key, const std::string& why) {
  if (!has(b, key.c_str())) return;
  if (!string(b[key], key).empty()) unsupported(key, why);
}

void stop_apply(const ojson& v, CompletionRequest& r) {
  const std::string param = "options.stop";
  std::vector<std::string> stops;
  if (v.is_string()) {
    stops.push_back(v.get<std::string>());
  } else if (v.is_array() && v.size() <= kMaxStops) {
    for (const auto& s : v) stops.push_back(string(s, param));
  } else {
    invalid(param, fmt::format("'{}' must be a string or an array of at most {} strings", param, kMaxStops));
  }
  r.stop.clear();
  for (auto& s : stops)
    if (!s.empty()) r.stop.push_back(std::move(s));
}

// num_predict: -1 (no limit) and -2 (fill the context) both leave max_tokens to the context; else 1..limit.
void num_predict_apply(const ojson& v, int max_tokens_limit, CompletionRequest& r) {
  const long long n = integer_in(v, "options.num_predict", -2, max_tokens_limit);
  if (n == 0)
    invalid("options.num_predict", "'options.num_predict' must be -1 (no limit), -2 (fill the context) or 1.." +
                                       std::to_string(max_tokens_limit) + ", got 0");
  if (n > 0) r.max_tokens = static_cast<int>(n);
  else r.max_tokens.reset();
}

// `keep_alive`: a duration ("5m", "0") or a number of seconds. Accepted, with no effect: the model stays loaded.
void keep_alive_check(const ojson& b) {
  if (has(b, "keep_alive") && !b["keep_alive"].is_string() && !b["keep_alive"].is_number())
    invalid("keep_alive", "'keep_alive' must be a duration string (\"5m\") or a number of seconds");
}

// `think`: false only (hearth does not separate a model's thinking from its reply).
void think_check(const ojson& b) {
  if (!has(b, "think")) return;
  if (b["think"] == ojson(false)) return;
  if (!b["think"].is_boolean() && !b["think"].is_string())
    invalid("think", "'think' must be a boolean or \"high\", \"medium\", \"low\"");
  unsupported("think", "hearth does not separate thinking from the reply; leave it out or send false");
}

// `logprobs` (boolean) and `top_logprobs` (0..20, only with logprobs true), as the OpenAI chat endpoint takes them.
void logprobs_apply(const ojson& b, CompletionRequest& r) {
  const bool on = has(b, "logprobs") && boolean(b["logprobs"], "logprobs");
  if (has(b, "top_logprobs")) {
    const int k = static_cast<int>(integer_in(b["top_logprobs"], "top_logprobs", 0, kMaxTopLogprobs));
    if (!on) invalid("top_logprobs", "'top_logprobs' is only allowed when 'logprobs' is true");
    r.logprobs = k;
  } else if (on) {
    r.logprobs = 0;
  }
}

// What /api/chat and /api/generate share: model, stream, options, format, keep_alive, think, logprobs.
OllamaGeneration common_parse(const ojson& b, Endpoint endpoint, int max_tokens_limit) {
  OllamaGeneration g;
  if (!b.contains("model") || !b["model"].is_string() || b["model"].get<std::string>().empty())
    invalid("model", "'model' is required and must be a non-empty string");
  g.model = b["model"].get<std::string>();
  auto& r = g.request;
  r.endpoint = endpoint;
  r.model = ollama_model_name(g.model);
  r.sampling = ollama_sampling_default();
  if (has(b, "stream")) g.stream = boolean(b["stream"], "stream");
  if (has(b, "options")) ollama_options_apply(b["options"], max_tokens_limit, r);
  if (b.contains("format")) ollama_format_constraint(b["format"], r);
  keep_alive_check(b);
  think_check(b);
  logprobs_apply(b, r);
  return g;
}

ojson message_parse(const ojson& m, const std::string& p) {
  if (!m.is_object()) invalid(p, fmt::format("'{}' must be an object", p));
  keys_check(m, {"role", "content", "images", "tool_calls", "tool_name", "thinking"}, p + ".");
  if (!m.contains("role")) invalid(p + ".role", fmt::format("'{}.role' is required", p));
  const std::string role = string(m["role"], p + ".role");
  if (role != "system" && role != "user" && role != "assistant" && role != "tool")
    invalid(p + ".role", fmt::format("'{}.role' must be one of system, user, assistant, tool; got '{}'", p, role));
  std::string content;
  if (has(m, "content")) content = string(m["content"], p + ".content");
  empty_array_only(m, "images", p + ".images", "this server runs text-only models");
  empty_array_only(m, "tool_calls", p + ".tool_calls", "tool calls are not parsed from replies yet");
  if (has(m, "tool_name") && !string(m["tool_name"], p + ".tool_name").empty())
    unsupported(p + ".tool_name", "tool calls are not parsed from replies yet");
  if (has(m, "thinking") && !string(m["thinking"], p + ".thinking").empty())
    unsupported(p + ".thinking", "hearth does not separate thinking from the reply");
  return ojson{{"role", role}, {"content", content}};
}

}  // namespace

infer::SamplingParams ollama_sampling_default() {
  infer::SamplingParams p;
  p.temperature = 0.8f;
  p.top_k = 40;
  p.top_p = 0.9f;
  p.min_p = 0.0f;
  p.repeat_penalty = 1.1f;
  p.repeat_last_n = 64;
  p.presence_penalty = 0.0f;
  p.frequency_penalty = 0.0f;
  return p;
}

void ollama_options_apply(const ojson& o, int max_tokens_limit, CompletionRequest& r) {
  if (!o.is_object()) invalid("options", "'options' must be an object");
  auto& s = r.sampling;
  for (const auto& [key, v] : o.items()) {
    if (v.is_null()) continue;
    const std::string p = "options." + key;
    if (key == "temperature") s.temperature = static_cast<float>(number_in(v, p, 0, 100));
    else if (key == "top_p") s.top_p = static_cast<float>(number_in(v, p, 0, 1));
    else if (key == "top_k") s.top_k = static_cast<int>(integer_in(v, p, 0, 1 << 20));
    else if (key == "min_p") s.min_p = static_cast<float>(number_in(v, p, 0, 1));
    else if (key == "repeat_penalty") s.repeat_penalty = static_cast<float>(number_in(v, p, 0, 100));
    else if (key == "presence_penalty") s.presence_penalty = static_cast<float>(number_in(v, p, -2, 2));
    else if (key == "frequency_penalty") s.frequency_penalty = static_cast<float>(number_in(v, p, -2, 2));
    else if (key == "num_predict") num_predict_apply(v, max_tokens_limit, r);
    else if (key == "stop") stop_apply(v, r);
    else if (key == "num_ctx") r.ctx = static_cast<int>(integer_in(v, p, 1, std::numeric_limits<int>::max()));
    else if (key == "repeat_last_n") {
      const long long n = integer_in(v, p, -1, std::numeric_limits<int>::max());
      s.repeat_last_n = n < 0 ? std::numeric_limits<int>::max() : static_cast<int>(n);  // -1: the whole context
    } else if (key == "seed") {
      const long long seed = integer_in(v, p, std::numeric_limits<long long>::min(),
                                        std::numeric_limits<long long>::max());
      r.seed_given = seed >= 0;  // -1 (Ollama's "random")
      if (r.seed_given) s.seed = static_cast<uint64_t>(seed);
    } else {
      throw ApiError(400,
                     fmt::format("'{}' is not an option hearth serve supports (docs/serve.md, \"Ollama API\", lists "
                                 "them); leave it out",
                                 p),
                     "invalid_request_error", p, "unsupported_parameter");
    }
  }
  if (s.top_p <= 0) invalid("options.top_p", "'options.top_p' must be greater than 0");
  if (s.repeat_penalty <= 0) invalid("options.repeat_penalty", "'options.repeat_penalty' must be greater than 0");
}

OllamaGeneration ollama_chat_parse(const std::string& body, int max_tokens_limit) {
  const ojson b = body_parse(body);
  keys_check(b, {"model", "messages", "stream", "options", "format", "keep_alive", "tools", "think", "logprobs",
                 "top_logprobs"});
  OllamaGeneration g = common_parse(b, Endpoint::kChat, max_tokens_limit);
  g.chat = true;
  empty_array_only(b, "tools", "tools", "tool calls are not parsed from replies yet");
  g.request.messages = ojson::array();
  if (has(b, "messages")) {
    const auto& m = b["messages"];
    if (!m.is_array()) invalid("messages", "'messages' must be an array");
    for (size_t i = 0; i < m.size(); ++i)
      g.request.messages.push_back(message_parse(m[i], fmt::format("messages[{}]", i)));
  }
  g.load_only = g.request.messages.empty();
  return g;
}

OllamaGeneration ollama_generate_parse(const std::string& body, int max_tokens_limit) {
  const ojson b = body_parse(body);
  keys_check(b, {"model", "prompt", "suffix", "system", "template", "context", "stream", "raw", "format", "images",
                 "keep_alive", "think", "options", "logprobs", "top_logprobs"});
  const bool raw = has(b, "raw") && boolean(b["raw"], "raw");
  OllamaGeneration g = common_parse(b, raw ? Endpoint::kCompletions : Endpoint::kChat, max_tokens_limit);
  empty_array_only(b, "images", "images", "this server runs text-only models");
  empty_array_only(b, "context", "context", "send the conversation to /api/chat instead");
  empty_string_only(b, "suffix", "fill-in-the-middle is not implemented");
  empty_string_only(b, "template", "the model's own chat template is used (or none, with \"raw\": true)");
  const std::string prompt = has(b, "prompt") ? string(b["prompt"], "prompt") : "";
  const std::string system = has(b, "system") ? string(b["system"], "system") : "";
  g.load_only = prompt.empty() && system.empty();
  auto& r = g.request;
  if (raw) {
    if (!system.empty()) invalid("system", "'system' needs the chat template, which \"raw\": true leaves out");
    r.prompts.push_back(prompt);
    return g;
  }
  r.messages = ojson::array();
  if (!system.empty()) r.messages.push_back({{"role", "system"}, {"content", system}});
  r.messages.push_back({{"role", "user"}, {"content", prompt}});
  return g;
}

OllamaEmbedRequest ollama_embed_parse(const std::string& body) {
  const ojson b = body_parse(body);
  keys_check(b, {"model", "input", "truncate", "options", "keep_alive", "dimensions"});
  OllamaEmbedRequest e;
  if (!b.contains("model") || !b["model"].is_string() || b["model"].get<std::string>().empty())
    invalid("model", "'model' is required and must be a non-empty string");
  e.model = b["model"].get<std::string>();
  e.name = ollama_model_name(e.model);
  const ojson in = b.value("input", ojson());
  auto text = [](const ojson& t) {
    if (!t.is_string()) invalid("input", "'input' must be a string or an array of strings");
    if (t.get_ref<const std::string&>().empty()) invalid("input", "'input' may not contain an empty string");
    return t.get<std::string>();
  };
  if (in.is_string()) {
    e.inputs.push_back(text(in));
  } else if (in.is_array()) {
    for (const auto& t : in) e.inputs.push_back(text(t));
  } else if (!in.is_null()) {
    invalid("input", "'input' must be a string or an array of strings");
  }
  if (has(b, "truncate")) e.truncate = boolean(b["truncate"], "truncate");
  if (has(b, "dimensions")) e.dimensions = integer_in(b["dimensions"], "dimensions", 1, 1 << 30);
  keep_alive_check(b);
  if (has(b, "options")) {
    if (!b["options"].is_object()) invalid("options", "'options' must be an object");
    for (const auto& [key, v] : b["options"].items()) {
      if (v.is_null()) continue;
      if (key != "num_ctx")
        throw ApiError(400, fmt::format("'options.{}' has no effect on embeddings; leave it out", key),
                       "invalid_request_error", "options." + key, "unsupported_parameter");
      e.ctx = static_cast<int>(integer_in(v, "options.num_ctx", 1, std::numeric_limits<int>::max()));
    }
  }
  return e;
}

std::string ollama_show_parse(const std::string& body) {
  const ojson b = body_parse(body);
  keys_check(b, {"model", "name", "verbose"});
  if (has(b, "verbose")) boolean(b["verbose"], "verbose");
  const char* key = has(b, "model") ? "model" : "name";
  if (!has(b, key) || !b[key].is_string() || b[key].get<std::string>().empty())
    invalid("model", "'model' is required and must be a non-empty string");
  return b[key].get<std::string>();
}

std::string ollama_model_name(const std::string& name) {
  static const std::string kLatest = ":latest";
  if (name.size() > kLatest.size() && name.compare(name.size() - kLatest.size(), kLatest.size(), kLatest) == 0)
    return name.substr(0, name.size() - kLatest.size());
  return name;
}

void ollama_format_constraint(const ojson& format, CompletionRequest& r) {
  if (format.is_null() || format == ojson("")) return;
  if (format == ojson("json")) {
    r.grammar = std::make_shared<const constrain::Grammar>(constrain::json_object_grammar());
    return;
  }
  if (!format.is_object()) invalid("format", "'format' must be \"json\" or a JSON schema object");
  try {
    r.grammar = std::make_shared<const constrain::Grammar>(constrain::json_schema_grammar(format));
  } catch (const constrain::SchemaError& e) {
    invalid("format", fmt::format("'format': {}", e.what()));
  }
}

nlohmann::json ollama_error_body(const ApiError& e) { return {{"error", e.what()}}; }

}  // namespace hearth::serve
