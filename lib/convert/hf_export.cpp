#include "convert/hf_export.h"

#include <cctype>
#include <cmath>
#include <map>

#include <fmt/format.h>
#include <torch/torch.h>

#include "core/error.h"
#include "core/signals.h"
#include "io/atomic_file.h"
#include "io/json_file.h"

namespace hearth::convert {
namespace {

namespace fs = std::filesystem;

torch::ScalarType torch_type(io::Dtype d) {
  switch (d) {
    case io::Dtype::kF16: return torch::kFloat16;
    case io::Dtype::kBF16: return torch::kBFloat16;
    default: return torch::kFloat32;
  }
}

bool is_weight_file(const fs::path& p) {
  const std::string name = p.filename().string(), ext = p.extension().string();
  return ext == ".safetensors" || ext == ".bin" || ext == ".pt" || ext == ".pth" || ext == ".gguf" ||
         name == "model.safetensors.index.json" || name == "pytorch_model.bin.index.json";
}

}  // namespace

std::optional<uint64_t> shard_size_parse(const std::string& text) {
  size_t i = 0;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
  if (i == 0 || i > 15) return std::nullopt;
  const uint64_t n = std::stoull(text.substr(0, i));
  std::string unit = text.substr(i);
  for (auto& c : unit) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  static const std::map<std::string, uint64_t> units = {
      {"", 1},          {"B", 1},         {"KB", 1000},        {"MB", 1000'000},        {"GB", 1000'000'000},
      {"KIB", 1 << 10}, {"MIB", 1 << 20}, {"GIB", 1ull << 30}, {"TB", 1000'000'000'000}};
  auto it = units.find(unit);
  if (it == units.end() || n == 0) return std::nullopt;
  return n * it->second;
}

std::optional<io::Dtype> hf_dtype_parse(const std::string& text) {
  if (text == "bf16" || text == "bfloat16") return io::Dtype::kBF16;
  if (text == "f16" || text == "float16" || text == "fp16") return io::Dtype::kF16;
  if (text == "f32" || text == "float32" || text == "fp32") return io::Dtype::kF32;
  return std::nullopt;
}

std::string hf_torch_dtype(io::Dtype dtype) {
  switch (dtype) {
    case io::Dtype::kF16: return "float16";
    case io::Dtype::kBF16: return "bfloat16";
    default: return "float32";
  }
}

HfExportSummary hf_weights_write(const fs::path& dir, const TensorSource& source, const HfExportOptions& options,
                                 const std::function<void(size_t, size_t)>& progress) {
  if (options.dtype != io::Dtype::kF32 && options.dtype != io::Dtype::kF16 && options.dtype != io::Dtype::kBF16)
    throw ConfigError("hf export: dtype must be F32, F16 or BF16");
  // Shards as transformers cuts them: tensors in name order, a new shard when the next would overflow this one.
  std::vector<std::vector<io::TensorSpec>> shards(1);
  uint64_t shard_bytes = 0, total = 0;
  for (const auto& name : source.names) {
    auto shape = source.shape(name);
    if (!shape) throw FormatError(fmt::format("{}: tensor '{}' listed but missing", source.origin, name));
    io::TensorSpec spec{name, options.dtype, *shape};
    if (!shards.back().empty() && shard_bytes + spec.nbytes() > options.max_shard_bytes) {
      shards.emplace_back();
      shard_bytes = 0;
    }
    shard_bytes += spec.nbytes();
    total += spec.nbytes();
    shards.back().push_back(std::move(spec));
  }
  HfExportSummary summary;
  const size_t count = source.names.size();
  nlohmann::json weight_map = nlohmann::json::object();
  for (size_t i = 0; i < shards.size(); ++i) {
    const std::string file = shards.size() == 1
                                 ? "model.safetensors"
                                 : fmt::format("model-{:05d}-of-{:05d}.safetensors", i + 1, shards.size());
    io::safetensors_write_streamed(
        dir / file, shards[i], {{"format", "pt"}}, [&](const io::TensorSpec& spec, const io::SafetensorsEmit& emit) {
          interrupt_check("export");
          auto write = [&](const torch::Tensor& w) {
            if (!torch::isfinite(w).all().item<bool>())
              throw FormatError(fmt::format("{}: tensor '{}' has non-finite values", source.origin, spec.name));
            torch::Tensor out = w.to(torch_type(spec.dtype)).contiguous();
            if (spec.dtype == io::Dtype::kF16 && !torch::isfinite(out).all().item<bool>())
              throw FormatError(fmt::format("{}: tensor '{}' overflows float16; export as bf16 or f32", source.origin,
                                            spec.name));
            emit(out.data_ptr(), out.numel() * out.element_size());
          };
          // A slice of rows at a time: a large embedding is never held in float32 whole.
          if (spec.shape.size() < 2 || spec.shape[0] == 0) {
            write(source.load(spec.name));
          } else {
            const int64_t rows = spec.shape[0];
            const int64_t step = tensor_slice_rows(rows, io::TensorSpec{spec.name, io::Dtype::kU8, spec.shape}.nbytes() / rows);
            for (int64_t r0 = 0; r0 < rows; r0 += step) write(tensor_source_rows(source, spec.name, r0, std::min(rows, r0 + step)));
          }
          summary.bytes += spec.nbytes();
          ++summary.tensors;
          if (progress) progress(summary.tensors, count);
        });
    summary.files.push_back(file);
    for (const auto& spec : shards[i]) weight_map[spec.name] = file;
  }
  if (shards.size() > 1) {
    nlohmann::json index = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
    io::atomic_write(dir / "model.safetensors.index.json", index.dump(2) + "\n");
  }
  return summary;
}

std::vector<std::string> hf_files_copy(const fs::path& base, const fs::path& dir, io::Dtype dtype) {
  std::vector<std::string> copied;
  for (const auto& e : fs::directory_iterator(base)) {
    if (!e.is_regular_file()) continue;
    const std::string name = e.path().filename().string();
    if (is_weight_file(e.path()) || name == "config.json" || name == "README.md" || name[0] == '.') continue;
    std::error_code ec;
    fs::copy_file(e.path(), dir / name, fs::copy_options::overwrite_existing, ec);
    if (ec) throw IoError(fmt::format("{}: cannot copy to {}: {}", e.path().string(), dir.string(), ec.message()));
    copied.push_back(name);
  }
  std::sort(copied.begin(), copied.end());
  nlohmann::ordered_json config;
  try {  // bounded depth: the config is dumped recursively
    config = io::json_parse_bounded<nlohmann::ordered_json>(io::file_read(base / "config.json"), false);
  } catch (const io::JsonTooDeep& e) {
    throw FormatError(fmt::format("{}: {}", (base / "config.json").string(), e.what()));
  }
  if (config.is_discarded() || !config.is_object())
    throw FormatError(fmt::format("{}: not a JSON object", (base / "config.json").string()));
  config["torch_dtype"] = hf_torch_dtype(dtype);
  io::atomic_write(dir / "config.json", config.dump(2) + "\n");
  return copied;
}

}  // namespace hearth::convert
