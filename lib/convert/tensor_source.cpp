#include "convert/tensor_source.h"

#include <algorithm>
#include <map>

#include <fmt/format.h>

#include "core/error.h"
#include "io/safetensors.h"
#include "model/checkpoint.h"
#include "model/gguf_model.h"
#include "model/gguf_names.h"
#include "quant/codec.h"

namespace hearth::convert {

namespace {

torch::Tensor as_float32(const torch::Tensor& t) { return t.to(torch::kCPU).to(torch::kFloat32).contiguous(); }

TensorSource source_of_map(std::shared_ptr<model::TensorMap> tensors, std::string origin) {
  TensorSource s;
  s.origin = origin;
  for (const auto& [name, t] : *tensors) s.names.push_back(name);
  s.shape = [tensors](const std::string& name) -> std::optional<std::vector<int64_t>> {
    auto it = tensors->find(name);
    if (it == tensors->end()) return std::nullopt;
    return it->second.sizes().vec();
  };
  s.load = [tensors, origin](const std::string& name) {
    auto it = tensors->find(name);
    if (it == tensors->end()) throw FormatError(fmt::format("{}: tensor '{}' missing", origin, name));
    if (!it->second.is_floating_point())
      throw FormatError(fmt::format("{}: tensor '{}' has dtype {}; expected a float type", origin, name,
                                    c10::toString(it->second.scalar_type())));
    return as_float32(it->second);
  };
  return s;
}

}  // namespace

TensorSource tensor_source_checkpoint(const std::filesystem::path& dir) {
  // Zero-copy views into the memory maps: nothing is read until a tensor is converted, and once it is, its pages
  // leave the resident set again, so a pass over a model larger than memory stays at about one tensor.
  auto archive = std::make_shared<io::SafetensorsArchive>(io::SafetensorsArchive::open(dir));
  auto tensors = std::make_shared<model::TensorMap>();
  auto views = std::make_shared<std::map<std::string, std::pair<const io::TensorView*, const io::SafetensorsFile*>>>();
  for (const auto& file : archive->files())
    for (const auto& view : file->tensors()) {
      (*tensors)[view.name] = model::view_to_tensor(view, file);
      (*views)[view.name] = {&view, file.get()};
    }
  TensorSource s = source_of_map(tensors, dir.string());
  // Drops the mapped pages of rows [r0, r1) of `name` from the resident set once they are converted.
  auto release = [views](const std::string& name, int64_t r0, int64_t r1, int64_t rows) {
    auto it = views->find(name);
    if (it == views->end() || rows <= 0) return;
    const io::TensorView& v = *it->second.first;
    const size_t row_bytes = v.nbytes / static_cast<size_t>(rows);
    it->second.second->mapping()->release(static_cast<const unsigned char*>(v.data) + row_bytes * r0,
                                          row_bytes * static_cast<size_t>(r1 - r0));
  };
  auto load = s.load;
  s.load = [load, tensors, release](const std::string& name) {
    torch::Tensor t = load(name);  // float32 (a copy unless stored as float32)
    const int64_t rows = t.dim() > 0 ? t.size(0) : 1;
    release(name, 0, rows, rows);
    return t;
  };
  s.load_rows = [tensors, release, origin = dir.string()](const std::string& name, int64_t r0, int64_t r1) {
    auto it = tensors->find(name);
    if (it == tensors->end()) throw FormatError(fmt::format("{}: tensor '{}' missing", origin, name));
    torch::Tensor t = as_float32(it->second.slice(0, r0, r1));
    release(name, r0, r1, it->second.size(0));
    return t;
  };
  return s;
}

TensorSource tensor_source_map(model::TensorMap tensors, std::string origin) {
  return source_of_map(std::make_shared<model::TensorMap>(std::move(tensors)), std::move(origin));
}

TensorSource tensor_source_gguf(std::shared_ptr<const io::GgufFile> file, const model::ModelConfig& config) {
  const std::string origin = file->path().string();
  for (const auto& t : file->tensors()) {
    if (t.type != quant::GgmlType::kF32 && t.type != quant::GgmlType::kF16 && t.type != quant::GgmlType::kBF16)
      throw FormatError(
          fmt::format("{}: tensor '{}' is already quantized ({}); hearth quantizes only from F32, F16 or "
                      "BF16 weights, since quantizing twice adds the rounding errors of both — use the "
                      "Hugging Face folder or an F16/BF16 GGUF",
                      origin, io::gguf_printable(t.name), quant::ggml_type_name(t.type)));
  }
  // HF name -> where the tensor is in the file.
  auto index = std::make_shared<std::map<std::string, model::GgufTensorName>>();
  for (auto& n : model::gguf_tensor_names(config))
    if (!n.hf.empty() && file->find_tensor(n.gguf)) (*index)[n.hf] = n;
  TensorSource s;
  s.origin = origin;
  for (const auto& [hf, n] : *index) s.names.push_back(hf);
  s.shape = [file, index](const std::string& hf) -> std::optional<std::vector<int64_t>> {
    auto it = index->find(hf);
    if (it == index->end()) return std::nullopt;
    return file->tensor(it->second.gguf).shape();
  };
  s.load = [file, index, origin](const std::string& hf) {
    auto it = index->find(hf);
    if (it == index->end()) throw FormatError(fmt::format("{}: no tensor for '{}'", origin, hf));
    return model::gguf_tensor_decode(*file, it->second);
  };
  return s;
}

torch::Tensor tensor_source_rows(const TensorSource& source, const std::string& hf_name, int64_t r0, int64_t r1) {
  if (source.load_rows) return source.load_rows(hf_name, r0, r1);
  return source.load(hf_name).slice(0, r0, r1).contiguous();
}

int64_t tensor_slice_rows(int64_t rows, int64_t row_elements, int64_t align) {
  constexpr int64_t kSliceElements = int64_t(16) << 20;
  int64_t n = std::max<int64_t>(1, kSliceElements / std::max<int64_t>(1, row_elements));
  n = std::max<int64_t>(align, n / align * align);
  return std::min(n, rows);
}

}  // namespace hearth::convert
