#include "model/checkpoint.h"

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

#include "core/error.h"
#include "core/sha256.h"
#include "core/signals.h"
#include "io/gguf.h"
#include "quant/codec.h"

namespace hearth::model {

torch::ScalarType dtype_to_torch(io::Dtype dtype, const std::string& where) {
  switch (dtype) {
    case io::Dtype::kF32: return torch::kFloat32;
    case io::Dtype::kF16: return torch::kHalf;
    case io::Dtype::kBF16: return torch::kBFloat16;
    case io::Dtype::kF64: return torch::kFloat64;
    case io::Dtype::kI8: return torch::kInt8;
    case io::Dtype::kU8: return torch::kUInt8;
    case io::Dtype::kI16: return torch::kInt16;
    case io::Dtype::kI32: return torch::kInt32;
    case io::Dtype::kI64: return torch::kInt64;
    case io::Dtype::kBool: return torch::kBool;
    default:
      throw FormatError(
          fmt::format("{}: dtype {} is not supported here; expected F32, F16, BF16, F64, I8, U8, I16, "
                      "I32, I64 or BOOL",
                      where, io::dtype_name(dtype)));
  }
}

io::Dtype dtype_from_torch(torch::ScalarType dtype, const std::string& where) {
  switch (dtype) {
    case torch::kFloat32: return io::Dtype::kF32;
    case torch::kHalf: return io::Dtype::kF16;
    case torch::kBFloat16: return io::Dtype::kBF16;
    case torch::kFloat64: return io::Dtype::kF64;
    case torch::kInt8: return io::Dtype::kI8;
    case torch::kUInt8: return io::Dtype::kU8;
    case torch::kInt16: return io::Dtype::kI16;
    case torch::kInt32: return io::Dtype::kI32;
    case torch::kInt64: return io::Dtype::kI64;
    case torch::kBool: return io::Dtype::kBool;
    default: throw Error(fmt::format("{}: cannot store torch dtype {} in safetensors", where, c10::toString(dtype)));
  }
}

torch::Tensor view_to_tensor(const io::TensorView& view, const std::shared_ptr<io::SafetensorsFile>& file) {
  auto dtype = dtype_to_torch(view.dtype, fmt::format("{}: tensor '{}'", file->path().string(), view.name));
  auto options = torch::TensorOptions().dtype(dtype);
  if (view.nbytes == 0) return torch::empty(view.shape, options);
  auto addr = reinterpret_cast<uintptr_t>(view.data);
  if (addr % io::dtype_size(view.dtype) != 0) {  // misaligned data: copy instead of mapping
    auto t = torch::empty(view.shape, options);
    std::memcpy(t.data_ptr(), view.data, view.nbytes);
    return t;
  }
  std::shared_ptr<io::SafetensorsFile> keep = file;
  return torch::from_blob(
      const_cast<void*>(view.data), view.shape, [keep](void*) mutable { keep.reset(); }, options);
}

std::map<std::string, torch::Tensor> checkpoint_tensors(const std::filesystem::path& dir) {
  auto archive = io::SafetensorsArchive::open(dir);
  std::map<std::string, torch::Tensor> out;
  for (const auto& file : archive.files())
    for (const auto& view : file->tensors()) out[view.name] = view_to_tensor(view, file);
  return out;
}

std::string model_sha256(const std::filesystem::path& model) {
  Sha256 h;
  if (!std::filesystem::is_directory(model)) {
    h.update_file(model);
    return digest_hex(h.digest());
  }
  h.update_file(model / "config.json");
  std::vector<std::filesystem::path> weights;
  for (const auto& e : std::filesystem::directory_iterator(model))
    if (e.is_regular_file() && e.path().extension() == ".safetensors") weights.push_back(e.path());
  std::sort(weights.begin(), weights.end());
  for (const auto& w : weights) h.update_file(w);
  return digest_hex(h.digest());
}

std::vector<NonFiniteTensor> weights_non_finite(const std::filesystem::path& model,
                                                const std::function<void(size_t, size_t)>& progress) {
  std::vector<NonFiniteTensor> out;
  auto check = [&out](const std::string& name, const torch::Tensor& t) {
    const int64_t bad = t.numel() - torch::isfinite(t).sum().item<int64_t>();
    if (bad > 0) out.push_back({name, bad, t.numel()});
  };
  if (!std::filesystem::is_directory(model)) {
    auto file = io::GgufFile::open(model);
    const size_t total = file->tensors().size();
    size_t done = 0;
    for (const auto& t : file->tensors()) {
      interrupt_check("verify");
      if (!quant::can_dequantize(t.type))
        throw FormatError(fmt::format("{}: tensor '{}' has type {}, which hearth cannot decode", model.string(),
                                      io::gguf_printable(t.name), quant::ggml_type_name(t.type)));
      torch::Tensor values = torch::empty({t.numel()}, torch::kFloat32);
      quant::dequantize(t.type, t.data, values.data_ptr<float>(), t.numel());
      check(t.name, values);
      if (progress) progress(++done, total);
    }
    return out;
  }
  auto archive = io::SafetensorsArchive::open(model);
  const auto names = archive.names();
  size_t done = 0;
  for (const auto& file : archive.files())
    for (const auto& view : file->tensors()) {
      interrupt_check("verify");
      torch::Tensor t = view_to_tensor(view, file);
      if (t.is_floating_point()) check(view.name, t.to(torch::kFloat32));
      file->mapping()->release(view.data, view.nbytes);
      if (progress) progress(++done, names.size());
    }
  return out;
}

std::map<std::string, torch::Tensor> safetensors_tensors(const std::filesystem::path& path) {
  auto file = io::SafetensorsFile::open(path);
  std::map<std::string, torch::Tensor> out;
  for (const auto& view : file->tensors()) out[view.name] = view_to_tensor(view, file);
  return out;
}

void safetensors_save(const std::filesystem::path& path, const std::map<std::string, torch::Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  std::vector<torch::Tensor> keep;
  std::vector<io::TensorView> views;
  for (const auto& [name, t] : tensors) {
    keep.push_back(t.detach().to(torch::kCPU).contiguous());
    const auto& c = keep.back();
    io::TensorView v;
    v.name = name;
    v.dtype = dtype_from_torch(c.scalar_type(), fmt::format("{}: tensor '{}'", path.string(), name));
    v.shape = c.sizes().vec();
    v.data = c.data_ptr();
    v.nbytes = c.nbytes();
    views.push_back(std::move(v));
  }
  io::safetensors_write(path, views, metadata);
}

}  // namespace hearth::model
