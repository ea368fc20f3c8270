#include "model/rope.h"

#include <array>
#include <cmath>

#include "model/cpu_ops.h"

namespace hearth::model {

torch::Tensor rope_inv_freq(const ModelConfig& c) {
  const int64_t dim = c.head_dim;
  // As transformers: 1 / base^(arange(0, dim, 2) / dim), in float32.
  auto exponents = torch::arange(0, dim, 2, torch::kInt64).to(torch::kFloat32) / static_cast<float>(dim);
  auto inv_freq = 1.0 / torch::pow(torch::tensor(static_cast<float>(c.rope_theta)), exponents);
  const RopeScaling& rs = c.rope_scaling;
  if (rs.rope_type == "linear") return inv_freq / rs.factor;
  if (rs.rope_type != "llama3") return inv_freq;
  // Llama 3.1: long wavelengths are divided by `factor`, short ones kept, the band between interpolated.
  const double old_ctx = static_cast<double>(rs.original_max_position_embeddings);
  const double low_wavelen = old_ctx / rs.low_freq_factor;
  const double high_wavelen = old_ctx / rs.high_freq_factor;
  auto wavelen = 2 * M_PI / inv_freq;
  auto scaled = torch::where(wavelen > low_wavelen, inv_freq / rs.factor, inv_freq);
  auto smooth = (old_ctx / wavelen - rs.low_freq_factor) / (rs.high_freq_factor - rs.low_freq_factor);
  auto smoothed = (1 - smooth) * scaled / rs.factor + smooth * scaled;
  auto is_medium = (wavelen >= high_wavelen).logical_and(wavelen <= low_wavelen);
  return torch::where(is_medium, smoothed, scaled);
}

std::pair<torch::Tensor, torch::Tensor> rope_cos_sin(const torch::Tensor& inv_freq, const torch::Tensor& positions,
                                                     torch::ScalarType dtype) {
  // freqs: [B, T, dim/2] = positions[b, t] * inv_freq[i]; emb = [freqs, freqs] -> [B, T, dim]
  auto freqs = positions.to(torch::kFloat32).unsqueeze(-1) * inv_freq.to(positions.device()).view({1, 1, -1});
  auto emb = torch::cat({freqs, freqs}, -1).unsqueeze(1);  // [B, 1, T, dim]
  return {emb.cos().to(dtype), emb.sin().to(dtype)};
}

torch::Tensor rope_apply(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin) {
  const std::array<int64_t, 4> shape = {x.size(0), 1, x.size(2), x.size(3)};
  const c10::IntArrayRef table(shape.data(), shape.size());
  if (cpu_ops_apply({&x, &cos, &sin}) && x.stride(3) == 1 && cos.sizes() == table && sin.sizes() == table)
    return rope_rows(x, cos, sin);
  const int64_t half = x.size(-1) / 2;
  auto x1 = x.narrow(-1, 0, half);
  auto x2 = x.narrow(-1, half, half);
  auto rotated = torch::cat({-x2, x1}, -1);
  return x * cos + rotated * sin;
}

}  // namespace hearth::model
