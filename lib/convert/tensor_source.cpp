#include "convert/tensor_source.h"

#include <map>

#include <fmt/format.h>

#include "core/error.h"
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
  // Zero-copy views into the memory map: nothing is read until a tensor is converted.
  auto tensors = std::make_shared<model::TensorMap>(model::checkpoint_tensors(dir));
  return source_of_map(std::move(tensors), dir.string());
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

}  // namespace hearth::convert
