#include "convert/gguf_model_write.h"

#include <chrono>
#include <cmath>
#include <exception>
#include <set>
#include <thread>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/error.h"
#include "core/signals.h"
#include "model/gguf_names.h"
#include "quant/codec.h"

namespace hearth::convert {

using io::GgufKv;
using io::GgufValue;
using quant::GgmlType;

namespace {

constexpr uint32_t kQuantizationVersion = 2;  // GGML_QNT_VERSION

uint32_t u32_of(int64_t v, const char* what) {
  if (v < 0 || v > int64_t(UINT32_MAX)) throw FormatError(fmt::format("config: {} = {} does not fit u32", what, v));
  return static_cast<uint32_t>(v);
}

}  // namespace

std::vector<GgufKv> gguf_model_metadata(const model::ModelConfig& c, const QuantizeOptions& options) {
  const std::string arch = model::gguf_arch(c);
  const std::string p = arch + ".";
  std::vector<GgufKv> kv;
  auto u32 = [&](const std::string& key, int64_t v) { kv.push_back({key, GgufValue::u32(u32_of(v, key.c_str()))}); };
  auto f32 = [&](const std::string& key, double v) { kv.push_back({key, GgufValue::f32(static_cast<float>(v))}); };
  kv.push_back({"general.architecture", GgufValue::string(arch)});
  kv.push_back({"general.type", GgufValue::string("model")});
  if (!options.name.empty()) kv.push_back({"general.name", GgufValue::string(options.name)});
  u32(p + "block_count", c.num_hidden_layers);
  u32(p + "context_length", c.max_position_embeddings);
  u32(p + "embedding_length", c.hidden_size);
  u32(p + "feed_forward_length", c.intermediate_size);
  u32(p + "attention.head_count", c.num_attention_heads);
  u32(p + "attention.head_count_kv", c.num_key_value_heads);
  f32(p + "rope.freq_base", c.rope_theta);
  f32(p + "attention.layer_norm_rms_epsilon", c.rms_norm_eps);
  u32(p + "attention.key_length", c.head_dim);
  u32(p + "attention.value_length", c.head_dim);
  u32("general.file_type", quant_type_info(options.type).llama_ftype);
  u32(p + "vocab_size", c.vocab_size);
  u32(p + "rope.dimension_count", c.head_dim);
  if (c.rope_scaling.rope_type == "linear") {
    kv.push_back({p + "rope.scaling.type", GgufValue::string("linear")});
    f32(p + "rope.scaling.factor", c.rope_scaling.factor);
  }
  if (c.sliding_window) u32(p + "attention.sliding_window", *c.sliding_window);
  return kv;
}

torch::Tensor gguf_rope_freqs(const model::ModelConfig& c) {
  // Mirrors the Python expression by expression (torch float32 tensors, Python scalars), so that libtorch runs
  // the same kernels: `x / t` with a scalar x is t.reciprocal() * x in torch, `1 - t` is rsub.
  const auto& rs = c.rope_scaling;
  const int64_t dim = c.head_dim;
  auto freqs = torch::pow(c.rope_theta, torch::arange(0, dim, 2, torch::kFloat32) / dim).reciprocal() * 1.0;
  const double old_ctx = static_cast<double>(rs.original_max_position_embeddings);
  const double low_wavelen = old_ctx / rs.low_freq_factor, high_wavelen = old_ctx / rs.high_freq_factor;
  std::vector<float> factors;
  for (int64_t i = 0; i < freqs.size(0); ++i) {
    auto wavelen = freqs[i].reciprocal() * (2 * M_PI);
    if ((wavelen < high_wavelen).item<bool>()) {
      factors.push_back(1.0f);
    } else if ((wavelen > low_wavelen).item<bool>()) {
      factors.push_back(static_cast<float>(rs.factor));
    } else {
      auto smooth = (wavelen.reciprocal() * old_ctx - rs.low_freq_factor) / (rs.high_freq_factor - rs.low_freq_factor);
      auto denom = torch::rsub(smooth, 1) / rs.factor + smooth;
      factors.push_back((denom.reciprocal() * 1).item<float>());
    }
  }
  return torch::tensor(factors, torch::kFloat32);
}

namespace {

// Encodes w (contiguous float32, rows of `row` elements) as `type`, rows split over `threads` threads.
std::vector<uint8_t> encode(GgmlType type, const torch::Tensor& w, int64_t row, int threads) {
  const int64_t n = w.numel(), rows = n / row;
  const size_t row_bytes = quant::ggml_type_nbytes(type, row);
  std::vector<uint8_t> out(row_bytes * static_cast<size_t>(rows));
  const float* src = w.data_ptr<float>();
  const int64_t workers = std::max<int64_t>(1, std::min<int64_t>(threads, rows));
  std::vector<std::exception_ptr> errors(static_cast<size_t>(workers));
  auto work = [&](int64_t t) {
    try {
      const int64_t r0 = rows * t / workers, r1 = rows * (t + 1) / workers;
      quant::quantize(type, src + r0 * row, out.data() + r0 * row_bytes, (r1 - r0) * row);
    } catch (...) {
      errors[static_cast<size_t>(t)] = std::current_exception();
    }
  };
  std::vector<std::thread> pool;
  for (int64_t t = 1; t < workers; ++t) pool.emplace_back(work, t);
  work(0);
  for (auto& th : pool) th.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
  return out;
}

std::string shape_text(const std::vector<int64_t>& s) { return fmt::format("[{}]", fmt::join(s, ", ")); }

// Every tensor the plan reads must be in the source with its shape.
void source_check(const TensorSource& source, const std::vector<PlannedTensor>& plan) {
  for (const auto& p : plan) {
    if (p.name.hf.empty()) continue;
    auto shape = source.shape(p.name.hf);
    if (!shape)
      throw FormatError(fmt::format("{}: tensor '{}' missing; the config implies it (GGUF '{}', shape {})",
                                    source.origin, p.name.hf, p.name.gguf, shape_text(p.name.shape)));
    if (*shape != p.name.shape)
      throw FormatError(fmt::format("{}: tensor '{}' has shape {}; expected {} from the config", source.origin,
                                    p.name.hf, shape_text(*shape), shape_text(p.name.shape)));
  }
}

void extra_check(const std::vector<GgufKv>& metadata, const std::vector<GgufKv>& extra) {
  std::set<std::string> keys{"general.quantization_version", "general.alignment"};
  for (const auto& kv : metadata) keys.insert(kv.key);
  for (const auto& kv : extra)
    if (keys.count(kv.key))
      throw ConfigError(fmt::format("gguf_model_write: extra metadata key '{}' is one the writer sets itself", kv.key));
}

// Slices of planned tensor `p`'s float32 weights in GGUF row order, handed to `sink` one at a time: rows
// [r0, r1) of the tensor, whole heads where q/k rows are interleaved per head, ~64 MiB of float32 each — so a
// large tensor (an embedding) is never held whole in float32.
void tensor_slices(const PlannedTensor& p, const model::ModelConfig& config, const TensorSource& source,
                   const std::function<void(const torch::Tensor&)>& sink) {
  if (p.name.hf.empty()) return sink(gguf_rope_freqs(config));
  const std::vector<int64_t>& shape = p.name.shape;
  auto check = [&](const torch::Tensor& w, std::vector<int64_t> want) {
    if (w.sizes().vec() != want || w.scalar_type() != torch::kFloat32 || !w.is_contiguous())
      throw FormatError(fmt::format("{}: tensor '{}' loaded as {} {}; expected contiguous float32 {}", source.origin,
                                    p.name.hf, c10::toString(w.scalar_type()), shape_text(w.sizes().vec()),
                                    shape_text(want)));
  };
  if (shape.size() < 2) {
    torch::Tensor w = source.load(p.name.hf);
    check(w, shape);
    return sink(p.name.qk_heads > 0 ? model::qk_rows_to_gguf(w, p.name.qk_heads) : w);
  }
  const int64_t rows = shape[0], row_elements = shape.back() * (shape.size() > 2 ? shape[1] : 1);
  const int64_t head_rows = p.name.qk_heads > 0 ? rows / p.name.qk_heads : 1;
  const int64_t step = tensor_slice_rows(rows, row_elements, head_rows);
  for (int64_t r0 = 0; r0 < rows; r0 += step) {
    const int64_t r1 = std::min(rows, r0 + step);
    torch::Tensor w = tensor_source_rows(source, p.name.hf, r0, r1);
    std::vector<int64_t> want = shape;
    want[0] = r1 - r0;
    check(w, want);
    sink(p.name.qk_heads > 0 ? model::qk_rows_to_gguf(w, (r1 - r0) / head_rows) : w);
  }
}

}  // namespace

QuantizeSummary gguf_model_write(const std::filesystem::path& path, const model::ModelConfig& config,
                                 const TensorSource& source, const QuantizeOptions& options,
                                 const std::vector<GgufKv>& extra_metadata, const QuantizeProgressFn& progress) {
  const auto start = std::chrono::steady_clock::now();
  const std::vector<PlannedTensor> plan = gguf_model_plan(config, options.type);
  std::vector<GgufKv> metadata = gguf_model_metadata(config, options);
  extra_check(metadata, extra_metadata);
  source_check(source, plan);
  metadata.insert(metadata.end(), extra_metadata.begin(), extra_metadata.end());
  metadata.push_back({"general.quantization_version", GgufValue::u32(kQuantizationVersion)});

  const int threads = options.threads > 0 ? options.threads : std::max(1u, std::thread::hardware_concurrency());
  QuantizeSummary s;
  s.path = path;
  s.architecture = model::gguf_arch(config);
  s.type = options.type;
  std::vector<io::GgufTensorSource> tensors;
  for (const auto& p : plan) {
    io::GgufTensorSource t{p.name.gguf, p.dims(), p.type, nullptr, {}};
    t.produce = [&p, &config, &source, &s, &plan, &progress, threads](const io::GgufEmit& emit) {
      interrupt_check("quantize");
      tensor_slices(p, config, source, [&](const torch::Tensor& w) {
        std::vector<uint8_t> bytes;
        try {
          bytes = encode(p.type, w, p.name.shape.back(), threads);
        } catch (const ConfigError& e) {  // non-finite weight, scale beyond F16: the model's fault, not the user's
          throw FormatError(fmt::format("{}: tensor '{}': {}", source.origin, p.name.gguf, e.what()));
        }
        emit(bytes.data(), bytes.size());
        s.parameters += w.numel();
        s.tensor_bytes += bytes.size();
      });
      ++s.tensors;
      if (progress) progress({s.tensors, plan.size(), &p});
    };
    tensors.push_back(std::move(t));
    s.tensors_per_type[std::string(quant::ggml_type_name(p.type))]++;
    if (p.wanted) s.fallbacks.push_back({p.name.gguf, *p.wanted, p.type});
  }
  io::gguf_write(path, metadata, tensors);
  s.file_bytes = std::filesystem::file_size(path);
  s.bits_per_weight = s.parameters > 0 ? 8.0 * double(s.tensor_bytes) / double(s.parameters) : 0.0;
  s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return s;
}

}  // namespace hearth::convert
