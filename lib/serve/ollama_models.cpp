#include "serve/ollama_models.h"

#include <algorithm>
#include <filesystem>
#include <system_error>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "chat/ollama.h"
#include "core/error.h"
#include "core/sha256.h"
#include "serve/ollama_api.h"
#include "serve/ollama_request.h"

namespace hearth::serve {
namespace {

using json = nlohmann::ordered_json;  // keys in the order Ollama writes them
namespace fs = std::filesystem;

// What /api/tags says of a model's files: their bytes, newest modification time, and a digest of both.
struct FilesInfo {
  uint64_t size = 0;
  std::chrono::system_clock::time_point modified{};
  std::string digest;
};

std::chrono::system_clock::time_point system_time(fs::file_time_type t) {
  // C++17 has no clock_cast: shift by the two clocks' current offset.
  return std::chrono::time_point_cast<std::chrono::system_clock::duration>(t - fs::file_time_type::clock::now() +
                                                                           std::chrono::system_clock::now());
}

// The regular files of `path` (itself when it is a file), in name order: their sizes, newest time, and a SHA-256
// of `name` and every file's name, size and modification time. Unreadable entries are skipped.
FilesInfo files_info(const std::string& name, const fs::path& path) {
  std::vector<fs::path> files;
  std::error_code ec;
  if (fs::is_regular_file(path, ec)) {
    files.push_back(path);
  } else {
    for (fs::directory_iterator it(path, ec), end; !ec && it != end; it.increment(ec))
      if (it->is_regular_file(ec)) files.push_back(it->path());
  }
  std::sort(files.begin(), files.end());
  FilesInfo info;
  Sha256 h;
  h.update(name + "\n");
  for (const auto& f : files) {
    const auto size = fs::file_size(f, ec);
    if (ec) continue;
    const auto time = fs::last_write_time(f, ec);
    if (ec) continue;
    info.size += size;
    info.modified = std::max(info.modified, system_time(time));
    h.update(fmt::format("{}\t{}\t{}\n", f.filename().string(), size, time.time_since_epoch().count()));
  }
  info.digest = digest_hex(h.digest());
  return info;
}

std::string quantization_level(const ServeState& s) {
  const auto linears = s.model.linears();
  if (linears.empty()) return "unknown";
  const auto types = linears.front()->storage_types();
  if (types.empty()) return "unknown";
  // Dense weights are named by their torch type, quantized ones by their ggml type ("Q4_K"): Ollama writes both
  // the ggml way.
  if (types.front() == "Float") return "F32";
  if (types.front() == "BFloat16") return "BF16";
  if (types.front() == "Half") return "F16";
  return types.front();
}

json details_json(const ServeState& s, const std::string& parent) {
  const auto& c = s.model.config();
  const bool gguf = fs::path(s.model_dir).extension() == ".gguf";
  return {{"parent_model", parent},
          {"format", gguf ? "gguf" : "safetensors"},
          {"family", c.model_type},
          {"families", json::array({c.model_type})},
          {"parameter_size", ollama_parameter_size(c.parameter_count())},
          {"quantization_level", quantization_level(s)}};
}

json model_json(const ServeState& s, const std::string& name, const FilesInfo& files, const std::string& parent) {
  const std::string tagged = name + ":latest";
  return {{"name", tagged},     {"model", tagged},        {"modified_at", ollama_timestamp(files.modified)},
          {"size", files.size}, {"digest", files.digest}, {"details", details_json(s, parent)}};
}

// The adapter's own files added to the base's: its size, its load time, a digest of both.
FilesInfo adapter_files(const FilesInfo& base, const AdapterInfo& a) {
  FilesInfo own = files_info(a.name, a.resolved);
  own.size += base.size;
  own.modified = std::chrono::system_clock::time_point(std::chrono::seconds(a.loaded_at));
  own.digest = sha256_hex(own.digest + base.digest);
  return own;
}

// The models `scope` may use, as /api/tags lists them.
json models_json(ServeState& s, const KeyScope& scope) {
  json out = json::array();
  const FilesInfo base = files_info(s.model_name, s.model_dir);
  if (scope.allows(s.model_name)) out.push_back(model_json(s, s.model_name, base, ""));
  for (const auto& a : s.adapters.list())
    if (scope.allows(a.name)) out.push_back(model_json(s, a.name, adapter_files(base, a), s.model_name));
  return out;
}

json model_info_json(const ServeState& s) {
  const auto& c = s.model.config();
  const std::string arch = c.model_type;
  return {{"general.architecture", arch},
          {"general.parameter_count", c.parameter_count()},
          {arch + ".context_length", s.scheduler.ctx()},
          {arch + ".embedding_length", c.hidden_size},
          {arch + ".feed_forward_length", c.intermediate_size},
          {arch + ".block_count", c.num_hidden_layers},
          {arch + ".attention.head_count", c.num_attention_heads},
          {arch + ".attention.head_count_kv", c.num_key_value_heads},
          {arch + ".attention.layer_norm_rms_epsilon", c.rms_norm_eps},
          {arch + ".rope.freq_base", c.rope_theta},
          {arch + ".vocab_size", c.vocab_size}};
}

// The Ollama TEMPLATE, stop strings and Modelfile equivalent to the model's chat template, when hearth knows its
// family (chat/ollama.h; a tokenizer without chat_template is served with ChatML); empty strings otherwise.
struct TemplateInfo {
  std::string template_text, parameters, modelfile;
};

TemplateInfo template_info(const ServeState& s, const std::string& name) {
  TemplateInfo t;
  std::optional<chat::ChatFamily> family;
  const auto& config = s.tokenizer.config();
  const json source = config.is_object() ? config.value("chat_template", json()) : json();
  try {
    if (source.is_null()) family = chat::ChatFamily::kChatML;
    else if (source.is_string()) family = chat::chat_family_detect(source.get<std::string>());
  } catch (const Error&) {
  }
  std::vector<std::string> stops;
  if (family) {
    t.template_text = chat::ollama_template(*family);
    stops = chat::ollama_stops(*family);
  }
  const std::string ctx = std::to_string(s.scheduler.ctx());
  t.parameters = fmt::format("{:<30} {}\n", "num_ctx", ctx);
  for (const auto& stop : stops) t.parameters += fmt::format("{:<30} {}\n", "stop", json(stop).dump());
  chat::Modelfile m;
  m.from = name;
  m.template_text = t.template_text;
  m.stops = stops;
  m.parameters = {{"num_ctx", ctx}};
  try {
    t.modelfile = chat::modelfile_render(m);
  } catch (const Error&) {
    t.modelfile = fmt::format("FROM {}\n", name);
  }
  return t;
}

}  // namespace

std::string ollama_parameter_size(int64_t n) {
  const double x = static_cast<double>(n);
  auto unit = [&](double scale, const char* suffix) {
    const double v = x / scale;
    return v < 10 ? fmt::format("{:.1f}{}", v, suffix) : fmt::format("{:.0f}{}", v, suffix);
  };
  if (n >= 1000000000) return fmt::format("{:.1f}B", x / 1e9);
  if (n >= 1000000) return unit(1e6, "M");
  if (n >= 1000) return unit(1e3, "K");
  return std::to_string(n);
}

void ollama_tags_handle(ServeState& s, httplib::Response& res, const KeyScope& scope) {
  res.set_content(json{{"models", models_json(s, scope)}}.dump(), "application/json; charset=utf-8");
}

void ollama_show_handle(ServeState& s, const httplib::Request& req, httplib::Response& res, const KeyScope& scope) {
  const std::string written = ollama_show_parse(req.body);
  const auto adapter = ollama_model_resolve(s, written, scope);
  const std::string name = ollama_model_name(written);
  FilesInfo files = files_info(s.model_name, s.model_dir);
  if (adapter)
    for (const auto& a : s.adapters.list())
      if (a.name == name) files = adapter_files(files, a);
  const TemplateInfo t = template_info(s, name);
  json body = {{"license", ""},
               {"modelfile", t.modelfile},
               {"parameters", t.parameters},
               {"template", t.template_text},
               {"details", details_json(s, adapter ? s.model_name : "")},
               {"model_info", model_info_json(s)},
               {"capabilities", json::array({"completion", "embedding"})},
               {"modified_at", ollama_timestamp(files.modified)}};
  res.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace), "application/json; charset=utf-8");
}

void ollama_version_handle(httplib::Response& res) {
  res.set_content(json{{"version", kOllamaApiVersion}}.dump(), "application/json; charset=utf-8");
}

}  // namespace hearth::serve
