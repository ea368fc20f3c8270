#include "serve/request.h"

#include <set>

#include <fmt/format.h>

#include "constrain/json_schema.h"
#include "io/json_file.h"

namespace hearth::serve {
namespace {

using ojson = nlohmann::ordered_json;

[[noreturn]] void invalid(const std::string& param, const std::string& message) {
  throw ApiError(400, message, "invalid_request_error", param);
}

double number_in(const ojson& v, const std::string& param, double lo, double hi) {
  if (!v.is_number()) invalid(param, fmt::format("'{}' must be a number, got {}", param, v.type_name()));
  double x = v.get<double>();
  if (!(x >= lo && x <= hi)) invalid(param, fmt::format("'{}' must be between {} and {}, got {}", param, lo, hi, x));
  return x;
}

int integer_in(const ojson& v, const std::string& param, long long lo, long long hi) {
  if (!v.is_number_integer()) invalid(param, fmt::format("'{}' must be an integer, got {}", param, v.dump()));
  long long x = v.get<long long>();
  if (x < lo || x > hi) invalid(param, fmt::format("'{}' must be between {} and {}, got {}", param, lo, hi, x));
  return static_cast<int>(x);
}

// A message's content: a string, null, or an array of {"type":"text","text":...} parts (joined).
ojson content_parse(const ojson& c, const std::string& param) {
  if (c.is_string() || c.is_null()) return c;
  if (!c.is_array()) invalid(param, fmt::format("'{}' must be a string or an array of content parts", param));
  std::string text;
  for (size_t i = 0; i < c.size(); ++i) {
    const auto& part = c[i];
    std::string p = fmt::format("{}[{}]", param, i);
    // part["type"] == "text" rather than part.value("type", ""), which throws type_error when "type" is not a string.
    if (!part.is_object() || !part.contains("type") || part["type"] != "text" || !part.contains("text") ||
        !part["text"].is_string())
      invalid(p, fmt::format("'{}': only {{\"type\": \"text\", \"text\": ...}} parts are supported", p));
    text += part["text"].get<std::string>();
  }
  return text;
}

// An assistant message's tool_calls: [{"id", "type": "function", "function": {"name", "arguments"}}], the
// arguments a JSON object encoded as a string (OpenAI) or an object. Templates read the arguments as an object
// (they write it with tojson), so the result holds them parsed, as vLLM passes them.
ojson tool_calls_parse(const ojson& calls, const std::string& p) {
  if (!calls.is_array()) invalid(p, fmt::format("'{}' must be an array", p));
  ojson out = ojson::array();
  for (size_t i = 0; i < calls.size(); ++i) {
    const std::string q = fmt::format("{}[{}]", p, i);
    const ojson& c = calls[i];
    if (!c.is_object() || !c.contains("function") || !c["function"].is_object())
      invalid(q, fmt::format("'{}' must be an object with a 'function'", q));
    const ojson& f = c["function"];
    if (!f.contains("name") || !f["name"].is_string())
      invalid(q + ".function.name", fmt::format("'{}.function.name' must be a string", q));
    ojson args = f.value("arguments", ojson::object());
    if (args.is_string()) {
      try {
        args = ojson::parse(args.get<std::string>());
      } catch (const ojson::exception&) {
        args = nullptr;
      }
    }
    if (!args.is_object())
      invalid(q + ".function.arguments",
              fmt::format("'{}.function.arguments' must be a JSON object (or a string holding one)", q));
    ojson call = {{"id", c.value("id", "")}, {"type", "function"},
                  {"function", {{"name", f["name"]}, {"arguments", std::move(args)}}}};
    out.push_back(std::move(call));
  }
  return out;
}

ojson messages_parse(const ojson& body) {
  if (!body.contains("messages")) invalid("messages", "'messages' is required");
  const auto& m = body["messages"];
  if (!m.is_array() || m.empty()) invalid("messages", "'messages' must be a non-empty array");
  ojson out = ojson::array();
  for (size_t i = 0; i < m.size(); ++i) {
    std::string p = fmt::format("messages[{}]", i);
    if (!m[i].is_object()) invalid(p, fmt::format("'{}' must be an object", p));
    ojson msg = m[i];
    if (!msg.contains("role") || !msg["role"].is_string())
      invalid(p + ".role", fmt::format("'{}.role' must be a string", p));
    static const std::vector<std::string> roles = {"system", "developer", "user", "assistant", "tool"};
    auto role = msg["role"].get<std::string>();
    if (std::find(roles.begin(), roles.end(), role) == roles.end())
      invalid(p + ".role",
              fmt::format("'{}.role' must be one of system, developer, user, assistant, tool; got '{}'", p, role));
    if (!msg.contains("content") && role != "assistant")
      invalid(p + ".content", fmt::format("'{}.content' is required", p));
    if (msg.contains("content")) msg["content"] = content_parse(msg["content"], p + ".content");
    if (role == "assistant" && msg.contains("tool_calls") && !msg["tool_calls"].is_null())
      msg["tool_calls"] = tool_calls_parse(msg["tool_calls"], p + ".tool_calls");
    if (role == "tool" && (!msg.contains("tool_call_id") || !msg["tool_call_id"].is_string()))
      invalid(p + ".tool_call_id", fmt::format("'{}.tool_call_id' is required and must be a string", p));
    out.push_back(std::move(msg));
  }
  return out;
}

void prompt_parse(const ojson& body, CompletionRequest& r) {
  if (!body.contains("prompt")) invalid("prompt", "'prompt' is required");
  const auto& p = body["prompt"];
  auto bad = [] { invalid("prompt", "'prompt' must be a string, an array of strings, or an array of token ids"); };
  if (p.is_string()) {
    r.prompts.push_back(p.get<std::string>());
  } else if (p.is_array() && !p.empty() && p[0].is_string()) {
    for (const auto& s : p) s.is_string() ? r.prompts.push_back(s.get<std::string>()) : bad();
  } else if (p.is_array() && !p.empty() && p[0].is_number_integer()) {
    std::vector<int32_t> ids;
    for (const auto& t : p) ids.push_back(integer_in(t, "prompt", 0, 1LL << 30));
    r.prompt_ids.push_back(std::move(ids));
  } else {
    bad();
  }
}

void stop_parse(const ojson& s, CompletionRequest& r) {
  if (s.is_null()) return;
  if (s.is_string()) {
    if (!s.get<std::string>().empty()) r.stop.push_back(s.get<std::string>());
    return;
  }
  if (!s.is_array() || s.size() > 4) invalid("stop", "'stop' must be a string or an array of at most 4 strings");
  for (const auto& x : s) {
    if (!x.is_string()) invalid("stop", "'stop' must be a string or an array of at most 4 strings");
    if (!x.get<std::string>().empty()) r.stop.push_back(x.get<std::string>());
  }
}

void sampling_parse(const ojson& b, CompletionRequest& r) {
  auto& s = r.sampling;
  s.temperature = 1.0f;  // OpenAI defaults
  s.top_p = 1.0f;
  s.top_k = 0;
  s.min_p = 0.0f;
  auto has = [&](const char* k) { return b.contains(k) && !b[k].is_null(); };
  if (has("temperature")) s.temperature = static_cast<float>(number_in(b["temperature"], "temperature", 0, 2));
  if (has("top_p")) s.top_p = static_cast<float>(number_in(b["top_p"], "top_p", 0, 1));
  if (s.top_p <= 0) invalid("top_p", "'top_p' must be greater than 0");
  if (has("top_k")) s.top_k = integer_in(b["top_k"], "top_k", 0, 1 << 20);  // extension (llama.cpp, vLLM)
  if (has("min_p")) s.min_p = static_cast<float>(number_in(b["min_p"], "min_p", 0, 1));
  if (has("presence_penalty"))
    s.presence_penalty = static_cast<float>(number_in(b["presence_penalty"], "presence_penalty", -2, 2));
  if (has("frequency_penalty"))
    s.frequency_penalty = static_cast<float>(number_in(b["frequency_penalty"], "frequency_penalty", -2, 2));
  if (has("seed")) {
    if (!b["seed"].is_number_integer()) invalid("seed", "'seed' must be an integer");
    s.seed = static_cast<uint64_t>(b["seed"].get<int64_t>());
    r.seed_given = true;
  }
}

// Chat: `logprobs` (boolean) and `top_logprobs` (0..20, only with logprobs true). Completions: `logprobs`, the
// number of most likely tokens (0..5); false asks for nothing, as null does.
void logprobs_parse(const ojson& b, CompletionRequest& r) {
  auto has = [&](const char* k) { return b.contains(k) && !b[k].is_null(); };
  if (r.endpoint == Endpoint::kCompletions) {
    if (!has("logprobs") || b["logprobs"] == ojson(false)) return;
    r.logprobs = integer_in(b["logprobs"], "logprobs", 0, 5);
    return;
  }
  bool on = false;
  if (has("logprobs")) {
    if (!b["logprobs"].is_boolean()) invalid("logprobs", "'logprobs' must be a boolean");
    on = b["logprobs"].get<bool>();
  }
  if (has("top_logprobs")) {
    const int k = integer_in(b["top_logprobs"], "top_logprobs", 0, 20);
    if (!on) invalid("top_logprobs", "'top_logprobs' is only allowed when 'logprobs' is true");
    r.logprobs = k;
  } else if (on) {
    r.logprobs = 0;
  }
}

// tools (function tools only), tool_choice ("none", "auto", "required", {"type":"function","function":{"name"}})
// and parallel_tool_calls.
void tools_parse(const ojson& b, CompletionRequest& r) {
  const bool has_tools = b.contains("tools") && !b["tools"].is_null();
  if (has_tools) {
    const ojson& tools = b["tools"];
    if (!tools.is_array()) invalid("tools", "'tools' must be an array");
    std::set<std::string> names;
    for (size_t i = 0; i < tools.size(); ++i) {
      const std::string p = fmt::format("tools[{}]", i);
      const ojson& t = tools[i];
      if (!t.is_object() || t.value("type", ojson()) != ojson("function") || !t.contains("function") ||
          !t["function"].is_object())
        invalid(p, fmt::format("'{}' must be {{\"type\": \"function\", \"function\": {{...}}}}", p));
      const ojson& f = t["function"];
      if (!f.contains("name") || !f["name"].is_string() || f["name"].get<std::string>().empty())
        invalid(p + ".function.name", fmt::format("'{}.function.name' must be a non-empty string", p));
      if (!names.insert(f["name"].get<std::string>()).second)
        invalid(p + ".function.name", fmt::format("'{}.function.name': two tools are named '{}'", p,
                                                 f["name"].get<std::string>()));
      if (f.contains("parameters") && !f["parameters"].is_null() && !f["parameters"].is_object())
        invalid(p + ".function.parameters", fmt::format("'{}.function.parameters' must be an object", p));
    }
    r.tools = tools;
    if (!tools.empty()) r.tool_choice = "auto";
  }
  if (b.contains("tool_choice") && !b["tool_choice"].is_null()) {
    const ojson& c = b["tool_choice"];
    if (c.is_string() && (c == "none" || c == "auto" || c == "required")) {
      r.tool_choice = c.get<std::string>();
    } else if (c.is_object() && c.value("type", ojson()) == ojson("function") && c.contains("function") &&
               c["function"].is_object() && c["function"].contains("name") && c["function"]["name"].is_string()) {
      r.tool_choice = "function";
      r.tool_name = c["function"]["name"].get<std::string>();
    } else {
      invalid("tool_choice", "'tool_choice' must be \"none\", \"auto\", \"required\" or {\"type\": \"function\", "
                             "\"function\": {\"name\": ...}}");
    }
    if (r.tool_choice != "none" && (!has_tools || r.tools.empty()))
      invalid("tool_choice", "'tool_choice' other than \"none\" needs 'tools'");
    if (r.tool_choice == "function") {
      bool found = false;
      for (const auto& t : r.tools) found = found || t["function"]["name"] == r.tool_name;
      if (!found) invalid("tool_choice", fmt::format("'tool_choice' names '{}', which is not in 'tools'", r.tool_name));
    }
  }
  if (b.contains("parallel_tool_calls") && !b["parallel_tool_calls"].is_null()) {
    if (!b["parallel_tool_calls"].is_boolean()) invalid("parallel_tool_calls", "'parallel_tool_calls' must be a boolean");
    r.parallel_tool_calls = b["parallel_tool_calls"].get<bool>();
  }
}

// response_format: {"type":"text"} (free text), {"type":"json_object"}, or {"type":"json_schema","json_schema":
// {"name","schema","strict","description"}}. A schema hearth cannot enforce is a 400 naming the keyword.
void response_format_parse(const ojson& f, CompletionRequest& r) {
  if (f.is_null()) return;
  const std::string p = "response_format";
  if (!f.is_object() || !f.contains("type") || !f["type"].is_string())
    invalid(p, "'response_format' must be an object with a string 'type'");
  const std::string type = f["type"].get<std::string>();
  for (const auto& [key, v] : f.items()) {
    if (key != "type" && !(type == "json_schema" && key == "json_schema"))
      invalid(p + "." + key, fmt::format("'response_format' of type '{}' has no field '{}'", type, key));
  }
  if (type == "text") return;
  if (type == "json_object") {
    r.grammar = std::make_shared<const constrain::Grammar>(constrain::json_object_grammar());
    return;
  }
  if (type != "json_schema")
    invalid(p + ".type", fmt::format("'response_format.type' must be text, json_object or json_schema; got '{}'", type));
  if (!f.contains("json_schema") || !f["json_schema"].is_object())
    invalid(p + ".json_schema", "'response_format.json_schema' is required and must be an object");
  const ojson& js = f["json_schema"];
  for (const auto& [key, v] : js.items()) {
    if (key != "name" && key != "schema" && key != "strict" && key != "description")
      invalid(p + ".json_schema." + key, fmt::format("'response_format.json_schema' has no field '{}'", key));
  }
  if (!js.contains("name") || !js["name"].is_string())
    invalid(p + ".json_schema.name", "'response_format.json_schema.name' is required and must be a string");
  if (js.contains("strict") && !js["strict"].is_null() && !js["strict"].is_boolean())
    invalid(p + ".json_schema.strict", "'response_format.json_schema.strict' must be a boolean");
  // Without a schema OpenAI accepts any JSON; hearth then asks for an object, as json_object does.
  const ojson schema = js.value("schema", ojson::object());
  try {
    r.grammar = std::make_shared<const constrain::Grammar>(constrain::json_schema_grammar(schema));
  } catch (const constrain::SchemaError& e) {
    invalid(p + ".json_schema.schema" + (e.where == "/" ? "" : e.where), e.what());
  }
}

// Fields neither endpoint implements yet, but which a request may carry with a value that asks for nothing
// (what OpenAI does by default): those are accepted. Any other value is a 400 naming the field — an app that asked
// for JSON output or token biases must not receive a reply that silently lacks them.
bool neutral(const std::string& key, const ojson& v) {
  if (v.is_null()) return true;
  if (key == "echo") return v.is_boolean() && !v.get<bool>();
  if (key == "logit_bias") return v.is_object() && v.empty();
  if (key == "best_of") return v.is_number_integer() && v.get<long long>() == 1;
  if (key == "suffix") return v.is_string() && v.get<std::string>().empty();
  return false;
}

// Every field of `b` is one this endpoint implements, or carries a neutral value; else a 400 naming it.
void fields_check(const ojson& b, Endpoint endpoint) {
  static const std::set<std::string> common = {"model", "max_tokens", "temperature", "top_p", "top_k", "min_p",
                                               "presence_penalty", "frequency_penalty", "seed", "stop", "n",
                                               "stream", "stream_options", "response_format",
                                               "user"};  // an end-user id for abuse tracking: nothing to do locally
  static const std::set<std::string> chat = {"messages", "max_completion_tokens", "tools", "tool_choice",
                                             "parallel_tool_calls", "logprobs", "top_logprobs"};
  static const std::set<std::string> completions = {"prompt", "logprobs", "echo"};
  static const std::set<std::string> later = {"echo", "logit_bias", "best_of", "suffix"};
  for (const auto& [key, value] : b.items()) {
    if (common.count(key) || (endpoint == Endpoint::kChat ? chat : completions).count(key)) continue;
    if (later.count(key)) {
      if (neutral(key, value)) continue;
      throw ApiError(400, fmt::format("'{}' is not supported by hearth serve yet; leave it out (docs/serve.md lists "
                                      "the supported fields)",
                                      key),
                     "invalid_request_error", key, "unsupported_parameter");
    }
    throw ApiError(400, fmt::format("Unrecognized request field '{}' (docs/serve.md lists the supported fields)", key),
                   "invalid_request_error", key, "unknown_parameter");
  }
}

}  // namespace

std::string api_error_type(int status) {
  switch (status) {
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 429: return "rate_limit_error";
    case 503: return "service_unavailable";
    default: return status >= 500 ? "server_error" : "invalid_request_error";
  }
}

nlohmann::json api_error_body(const ApiError& e) {
  nlohmann::json err = {{"message", e.what()}, {"type", e.type}, {"param", nullptr}, {"code", nullptr}};
  if (!e.param.empty()) err["param"] = e.param;
  if (!e.code.empty()) err["code"] = e.code;
  return {{"error", err}};
}

CompletionRequest request_parse(const std::string& text, Endpoint endpoint, int max_tokens_limit, int max_n) {
  ojson b;
  try {
    b = io::json_parse_bounded<ojson>(text);
  } catch (const io::JsonTooDeep& e) {  // copying such a body overflowed the stack: the server crashed
    throw ApiError(400, fmt::format("The request body is {}", e.what()));
  } catch (const ojson::exception& e) {  // syntax errors, and numbers out of range such as 1e400
    throw ApiError(400, fmt::format("The request body is not valid JSON: {}", e.what()));
  }
  if (!b.is_object()) throw ApiError(400, "The request body must be a JSON object");
  fields_check(b, endpoint);
  CompletionRequest r;
  r.endpoint = endpoint;
  if (!b.contains("model") || !b["model"].is_string()) invalid("model", "'model' is required and must be a string");
  r.model = b["model"].get<std::string>();
  if (endpoint == Endpoint::kChat) {
    r.messages = messages_parse(b);
    tools_parse(b, r);
  } else {
    prompt_parse(b, r);
  }
  if (endpoint == Endpoint::kCompletions && b.contains("echo") && !b["echo"].is_null()) {
    if (!b["echo"].is_boolean()) invalid("echo", "'echo' must be a boolean");
    r.echo = b["echo"].get<bool>();
  }
  // OpenAI lets an echo ask for no new tokens at all (the prompt's log-probabilities alone, for scoring).
  for (const char* k : {"max_tokens", "max_completion_tokens"})
    if (b.contains(k) && !b[k].is_null()) r.max_tokens = integer_in(b[k], k, r.echo ? 0 : 1, max_tokens_limit);
  sampling_parse(b, r);
  logprobs_parse(b, r);
  if (b.contains("response_format")) response_format_parse(b["response_format"], r);
  if (r.tool_choice != "none" && r.grammar)
    invalid("response_format", "'response_format' with tools is not supported; send tool_choice \"none\" for a JSON reply");
  if (r.tool_choice != "none" && r.logprobs >= 0)
    invalid("logprobs", "'logprobs' with tool calls is not supported; send tool_choice \"none\" or leave logprobs out");
  if (b.contains("stop")) stop_parse(b["stop"], r);
  if (b.contains("n") && !b["n"].is_null()) r.n = integer_in(b["n"], "n", 1, max_n);
  if (b.contains("stream") && !b["stream"].is_null()) {
    if (!b["stream"].is_boolean()) invalid("stream", "'stream' must be a boolean");
    r.stream = b["stream"].get<bool>();
  }
  if (b.contains("stream_options") && !b["stream_options"].is_null()) {
    const auto& so = b["stream_options"];
    if (!so.is_object()) invalid("stream_options", "'stream_options' must be an object");
    if (!r.stream) invalid("stream_options", "'stream_options' is only allowed when 'stream' is true");
    if (so.contains("include_usage")) {
      if (!so["include_usage"].is_boolean())
        invalid("stream_options.include_usage", "'include_usage' must be a boolean");
      r.include_usage = so["include_usage"].get<bool>();
    }
  }
  return r;
}

}  // namespace hearth::serve
