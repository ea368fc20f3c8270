#include "serve/embeddings.h"

#include <cstring>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "io/mapped_file.h"
#include "serve/request.h"
#include "serve/scheduler.h"

namespace hearth::serve {
namespace {

using ojson = nlohmann::ordered_json;

constexpr size_t kMaxInputs = 2048;  // OpenAI's limit per request

[[noreturn]] void invalid(const std::string& param, const std::string& message,
                          const std::string& code = "") {
  throw ApiError(400, message, "invalid_request_error", param, code);
}

// Standard base64 (RFC 4648, with padding) of raw bytes.
std::string base64(const unsigned char* p, size_t n) {
  static const char* digits = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((n + 2) / 3 * 4);
  for (size_t i = 0; i < n; i += 3) {
    const uint32_t v = (uint32_t{p[i]} << 16) | (i + 1 < n ? uint32_t{p[i + 1]} << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
    out += digits[(v >> 18) & 63];
    out += digits[(v >> 12) & 63];
    out += i + 1 < n ? digits[(v >> 6) & 63] : '=';
    out += i + 2 < n ? digits[v & 63] : '=';
  }
  return out;
}

struct EmbeddingRequest {
  std::string model;
  std::vector<std::vector<infer::TokenId>> inputs;
  bool base64 = false;
};

EmbeddingRequest request_read(ServeState& s, const std::string& body) {
  ojson b;
  try {
    b = ojson::parse(body);
  } catch (const ojson::exception& e) {
    throw ApiError(400, fmt::format("The request body is not valid JSON: {}", e.what()));
  }
  if (!b.is_object()) throw ApiError(400, "The request body must be a JSON object");
  const int64_t hidden = s.model.config().hidden_size;
  for (const auto& [key, value] : b.items()) {
    if (key == "model" || key == "input" || key == "encoding_format" || key == "user") continue;
    if (key == "dimensions") {  // only the model's own size: hearth does not truncate embeddings
      if (value.is_null() || (value.is_number_integer() && value.get<int64_t>() == hidden)) continue;
      invalid(key, fmt::format("'dimensions': this model's embeddings have {} dimensions; other sizes are not "
                               "supported",
                               hidden),
              "unsupported_parameter");
    }
    invalid(key, fmt::format("Unrecognized request field '{}' (docs/serve.md lists the supported fields)", key),
            "unknown_parameter");
  }
  EmbeddingRequest r;
  if (!b.contains("model") || !b["model"].is_string()) invalid("model", "'model' is required and must be a string");
  r.model = b["model"].get<std::string>();
  if (b.contains("encoding_format") && !b["encoding_format"].is_null()) {
    const auto& f = b["encoding_format"];
    if (!f.is_string() || (f != "float" && f != "base64"))
      invalid("encoding_format", "'encoding_format' must be \"float\" or \"base64\"");
    r.base64 = f == "base64";
  }
  if (!b.contains("input")) invalid("input", "'input' is required");
  const auto& in = b["input"];
  const int64_t vocab = s.model.config().vocab_size;
  auto ids_of = [&](const ojson& arr) {
    std::vector<infer::TokenId> ids;
    for (const auto& t : arr) {
      if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() >= vocab)
        invalid("input", fmt::format("'input' token ids must be integers in 0..{}", vocab - 1));
      ids.push_back(static_cast<infer::TokenId>(t.get<int64_t>()));
    }
    return ids;
  };
  auto text = [&](const ojson& t) {
    if (t.get_ref<const std::string&>().empty()) invalid("input", "'input' may not contain an empty string");
    return s.tokenizer.encode(t.get<std::string>());
  };
  if (in.is_string()) {
    r.inputs.push_back(text(in));
  } else if (in.is_array() && !in.empty() && in[0].is_string()) {
    for (const auto& t : in) {
      if (!t.is_string()) invalid("input", "'input' must be a string, an array of strings, or token id arrays");
      r.inputs.push_back(text(t));
    }
  } else if (in.is_array() && !in.empty() && in[0].is_number_integer()) {
    r.inputs.push_back(ids_of(in));
  } else if (in.is_array() && !in.empty() && in[0].is_array()) {
    for (const auto& a : in) {
      if (!a.is_array() || a.empty()) invalid("input", "'input' token id arrays must be non-empty arrays");
      r.inputs.push_back(ids_of(a));
    }
  } else {
    invalid("input", "'input' must be a non-empty string, an array of strings, or token id arrays");
  }
  if (r.inputs.size() > kMaxInputs)
    invalid("input", fmt::format("'input' has {} items; at most {} per request", r.inputs.size(), kMaxInputs));
  for (const auto& ids : r.inputs)
    if (ids.empty() || static_cast<int>(ids.size()) > s.scheduler.ctx())
      invalid("input",
              fmt::format("An input of {} tokens; this server's context is {} tokens (--ctx)", ids.size(),
                          s.scheduler.ctx()),
              "context_length_exceeded");
  return r;
}

// The mean of the final hidden states over every token of `ids`, L2-normalised.
std::vector<float> embedding(const model::CausalLM& m, const std::vector<infer::TokenId>& ids,
                             const model::LoraAdapter* adapter) {
  c10::InferenceMode guard;
  auto h = prompt_forward(m, ids, adapter, /*hidden_states=*/true).mean(0);  // [C]
  h = (h / h.norm().clamp_min(1e-12)).to(torch::kCPU).contiguous();
  return {h.data_ptr<float>(), h.data_ptr<float>() + h.numel()};
}

}  // namespace

std::vector<std::vector<float>> embeddings_compute(ServeState& s, const std::vector<std::vector<infer::TokenId>>& inputs,
                                                  const model::LoraAdapter* adapter) {
  if (!io::mapped_files_check().empty())
    throw ApiError(503, kModelFilesChanged, "service_unavailable", "", "model_files_changed");
  std::vector<std::vector<float>> out;
  out.reserve(inputs.size());
  for (const auto& ids : inputs) {
    out.push_back(embedding(s.model, ids, adapter));
    if (io::mapped_files_damaged())
      throw ApiError(503, kModelFilesChanged, "service_unavailable", "", "model_files_changed");
  }
  return out;
}

void embeddings_handle(ServeState& s, const httplib::Request& req, httplib::Response& res, const KeyScope& scope) {
  if (s.draining) throw ApiError(503, "The server is shutting down", "service_unavailable", "", "shutting_down");
  auto r = request_read(s, req.body);
  auto adapter = model_resolve(s, r.model, scope);
  auto vectors = embeddings_compute(s, r.inputs, adapter.get());
  nlohmann::json data = nlohmann::json::array();
  size_t tokens = 0;
  for (size_t i = 0; i < r.inputs.size(); ++i) {
    const auto& v = vectors[i];
    tokens += r.inputs[i].size();
    nlohmann::json item = {{"object", "embedding"}, {"index", i}};
    if (r.base64) item["embedding"] = base64(reinterpret_cast<const unsigned char*>(v.data()), v.size() * sizeof(float));
    else item["embedding"] = v;
    data.push_back(std::move(item));
  }
  nlohmann::json body = {{"object", "list"},
                         {"data", std::move(data)},
                         {"model", r.model},
                         {"usage", {{"prompt_tokens", tokens}, {"total_tokens", tokens}}}};
  res.set_content(body.dump(), "application/json");
}

}  // namespace hearth::serve
