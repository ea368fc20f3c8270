#include "convert/model_input.h"

#include <fmt/format.h>

#include "core/error.h"
#include "core/log.h"
#include "io/hf_cache.h"
#include "io/json_file.h"
#include "model/gguf_model.h"
#include "tokenizer/gguf_vocab.h"
#include "tokenizer/tokenizer.h"

namespace hearth::convert {
namespace {

namespace fs = std::filesystem;

// The folder's tokenizer (and chat template) as tokenizer.ggml.* metadata, so that a GGUF runs on its own in
// hearth, llama.cpp and Ollama.
std::vector<io::GgufKv> tokenizer_metadata(const fs::path& dir) {
  if (fs::exists(dir / "tokenizer.json")) return tokenizer::tokenizer_gguf_metadata(tokenizer::Tokenizer::load(dir));
  log::warn(
      "{} has no tokenizer.json, so a GGUF made from it carries no tokenizer (tokenizer.ggml.*): weights only, "
      "which llama.cpp will not load",
      dir.string());
  return {};
}

std::string folder_name(const fs::path& dir) {
  if (auto repo = io::hf_repo_of_path(fs::absolute(dir))) return repo->substr(repo->find('/') + 1);  // not the commit
  fs::path p = fs::absolute(dir).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();
  return p.filename().string();
}

// tokenizer_config.json's chat_template when it is one string ("" otherwise).
std::string folder_chat_template(const fs::path& dir) {
  const fs::path path = dir / "tokenizer_config.json";
  if (!fs::exists(path)) return "";
  nlohmann::json j = io::json_read(path);
  auto it = j.find("chat_template");
  if (it != j.end() && it->is_string()) return it->get<std::string>();
  if (it != j.end() && it->is_array())
    for (const auto& t : *it)
      if (t.is_object() && t.contains("name") && t["name"] == "default" && t.contains("template") &&
          t["template"].is_string())
        return t["template"].get<std::string>();
  return "";
}

}  // namespace

ModelInput model_input_open(const fs::path& path) {
  ModelInput in;
  in.path = path;
  if (fs::is_directory(path)) {
    in.config = model::config_load(path);
    in.source = tensor_source_checkpoint(path);
    in.tokenizer = tokenizer_metadata(path);
    in.name = folder_name(path);
    in.kind = "hf";
    in.chat_template = folder_chat_template(path);
    return in;
  }
  if (!fs::exists(path))
    throw IoError(fmt::format("--model: '{}' does not exist; expected a Hugging Face model folder or a .gguf file",
                              path.string()));
  std::shared_ptr<const io::GgufFile> file = io::GgufFile::open(path);
  in.config = model::gguf_config(*file);
  in.source = tensor_source_gguf(file, in.config);  // refuses quantized tensors
  // As llama-quantize does, keep the source's tokenizer.
  for (const auto& kv : file->metadata())
    if (kv.key.rfind("tokenizer.", 0) == 0) in.tokenizer.push_back(kv);
  const io::GgufValue* name = file->find("general.name");
  in.name = name && name->as_string() ? *name->as_string() : path.stem().string();
  in.kind = "gguf";
  const io::GgufValue* tmpl = file->find("tokenizer.chat_template");
  if (tmpl && tmpl->as_string()) in.chat_template = *tmpl->as_string();
  return in;
}

}  // namespace hearth::convert
