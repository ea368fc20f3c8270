#include "io/model_summary.h"

#include <algorithm>
#include <map>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/error.h"
#include "io/gguf.h"
#include "io/json_file.h"
#include "io/safetensors.h"

namespace hearth::io {

namespace fs = std::filesystem;

namespace {

// The key with the largest value ("" for an empty map).
template <class Map>
std::string largest(const Map& m) {
  auto it = std::max_element(m.begin(), m.end(), [](const auto& a, const auto& b) { return a.second < b.second; });
  return it == m.end() ? "" : std::string(it->first);
}

uint64_t folder_bytes(const fs::path& dir) {
  uint64_t bytes = 0;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    std::error_code e2;
    if (fs::is_regular_file(it->path(), e2)) bytes += fs::file_size(it->path(), e2);
  }
  return bytes;
}

ModelSummary gguf_summary(const fs::path& path) {
  auto file = GgufFile::open(path);
  ModelSummary s;
  s.format = "gguf";
  if (file->find("general.architecture")) s.model_type = file->get_string("general.architecture");
  std::map<std::string, uint64_t> bytes_by_type;
  for (const auto& t : file->tensors()) {
    s.parameters += t.numel();
    if (t.dims.size() >= 2) bytes_by_type[std::string(quant::ggml_type_name(t.type))] += t.nbytes;
  }
  if (file->find("general.file_type")) s.dtype = gguf_file_type_name(file->get_uint("general.file_type"));
  if (s.dtype.empty()) s.dtype = largest(bytes_by_type);  // no file type, or one llama.cpp does not name
  s.bytes = fs::file_size(path);
  return s;
}

ModelSummary hf_summary(const fs::path& dir) {
  ModelSummary s;
  s.format = "hf";
  const nlohmann::json config = json_read(dir / "config.json");
  if (config.is_object() && config.contains("model_type") && config["model_type"].is_string())
    s.model_type = config["model_type"].get<std::string>();
  auto archive = SafetensorsArchive::open(dir);
  std::map<std::string_view, int64_t> params_by_dtype;
  for (const auto& name : archive.names()) {
    const auto* t = archive.find(name);
    params_by_dtype[dtype_name(t->dtype)] += t->numel();
    s.parameters += t->numel();
  }
  s.dtype = largest(params_by_dtype);
  s.bytes = folder_bytes(dir);
  return s;
}

}  // namespace

std::string gguf_file_type_name(uint64_t file_type) {
  static const std::map<uint64_t, const char*> kNames = {
      {0, "F32"},     {1, "F16"},     {2, "Q4_0"},      {3, "Q4_1"},    {7, "Q8_0"},     {8, "Q5_0"},
      {9, "Q5_1"},    {10, "Q2_K"},   {11, "Q3_K_S"},   {12, "Q3_K_M"}, {13, "Q3_K_L"},  {14, "Q4_K_S"},
      {15, "Q4_K_M"}, {16, "Q5_K_S"}, {17, "Q5_K_M"},   {18, "Q6_K"},   {19, "IQ2_XXS"}, {20, "IQ2_XS"},
      {21, "Q2_K_S"}, {22, "IQ3_XS"}, {23, "IQ3_XXS"},  {24, "IQ1_S"},  {25, "IQ4_NL"},  {26, "IQ3_S"},
      {27, "IQ3_M"},  {28, "IQ2_S"},  {29, "IQ2_M"},    {30, "IQ4_XS"}, {31, "IQ1_M"},   {32, "BF16"},
      {36, "TQ1_0"},  {37, "TQ2_0"},  {38, "MXFP4_MOE"}};
  auto it = kNames.find(file_type);
  return it == kNames.end() ? "" : it->second;
}

ModelSummary model_summary_read(const fs::path& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw IoError(fmt::format("{}: no such file or folder", path.string()));
  if (!fs::is_directory(path, ec)) return gguf_summary(path);
  if (fs::exists(path / "config.json", ec)) return hf_summary(path);
  std::vector<fs::path> ggufs;
  for (const auto& e : fs::directory_iterator(path, ec))
    if (e.path().extension() == ".gguf") ggufs.push_back(e.path());
  if (ggufs.empty())
    throw IoError(
        fmt::format("{}: holds neither config.json nor a .gguf file; expected a model folder", path.string()));
  std::sort(ggufs.begin(), ggufs.end());
  ModelSummary all;
  all.format = "gguf";
  std::vector<std::string> types;
  for (const auto& g : ggufs) {
    ModelSummary s = gguf_summary(g);
    if (all.model_type.empty()) all.model_type = s.model_type;
    if (std::find(types.begin(), types.end(), s.dtype) == types.end()) types.push_back(s.dtype);
    all.parameters = std::max(all.parameters, s.parameters);
  }
  all.dtype = fmt::format("{}", fmt::join(types, ", "));
  all.bytes = folder_bytes(path);
  return all;
}

}  // namespace hearth::io
