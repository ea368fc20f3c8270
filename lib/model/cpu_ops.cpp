#include "model/cpu_ops.h"

#include <algorithm>
#include <cmath>

#include "model/parallel_rows.h"

namespace hearth::model {
namespace {

// Rows per task: ≥ task_elements (64 Ki by default), so a decode step's few rows stay on the calling thread (a
// parallel region costs more than they do) and a prompt's thousands are shared.
int64_t task_rows(int64_t row_elements, int64_t task_elements = int64_t(1) << 16) {
  return std::max<int64_t>(1, task_elements / std::max<int64_t>(1, row_elements));
}

}  // namespace

bool cpu_ops_apply(std::initializer_list<const torch::Tensor*> tensors) {
  if (!c10::InferenceMode::is_enabled()) return false;
  for (const auto* t : tensors)
    if (!t->defined() || !t->device().is_cpu() || t->scalar_type() != torch::kFloat32) return false;
  return true;
}

torch::Tensor rms_norm_rows(const torch::Tensor& x_in, const torch::Tensor& weight_in, double eps) {
  const auto x = x_in.contiguous();
  const auto weight = weight_in.contiguous();
  const int64_t C = x.size(-1), rows = C > 0 ? x.numel() / C : 0;
  auto out = torch::empty(x.sizes(), x.options());
  const float *xp = x.data_ptr<float>(), *wp = weight.data_ptr<float>();
  float* op = out.data_ptr<float>();
  const float feps = static_cast<float>(eps);
  parallel_rows(0, rows, task_rows(C), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = xp + r * C;
      float* o = op + r * C;
      double squares = 0;
      for (int64_t i = 0; i < C; ++i) squares += static_cast<double>(xr[i]) * xr[i];
      // as libtorch: mean in float32, + eps, rsqrt (a square root, then a division), x·r, then weight·(x·r)
      const float inv = 1.0f / std::sqrt(static_cast<float>(squares / static_cast<double>(C)) + feps);
      for (int64_t i = 0; i < C; ++i) o[i] = wp[i] * (xr[i] * inv);
    }
  });
  return out;
}

torch::Tensor rope_rows(const torch::Tensor& x, const torch::Tensor& cos_in, const torch::Tensor& sin_in) {
  const int64_t B = x.size(0), H = x.size(1), T = x.size(2), hd = x.size(3), half = hd / 2;
  const auto cos = cos_in.contiguous(), sin = sin_in.contiguous();
  auto out = torch::empty({B, H, T, hd}, x.options());
  const float *xp = x.data_ptr<float>(), *cp = cos.data_ptr<float>(), *sp = sin.data_ptr<float>();
  float* op = out.data_ptr<float>();
  const int64_t s0 = x.stride(0), s1 = x.stride(1), s2 = x.stride(2);
  parallel_rows(0, B * H * T, task_rows(hd), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t b = r / (H * T), h = (r / T) % H, t = r % T;
      const float* xr = xp + b * s0 + h * s1 + t * s2;
      const float *c = cp + (b * T + t) * hd, *s = sp + (b * T + t) * hd;
      float* o = op + r * hd;
      // rotate_half(x) = [-x2, x1]; each product rounded, then the sum, as x·cos + rotated·sin
      for (int64_t i = 0; i < half; ++i) o[i] = xr[i] * c[i] + (-xr[i + half]) * s[i];
      for (int64_t i = half; i < hd; ++i) o[i] = xr[i] * c[i] + xr[i - half] * s[i];
    }
  });
  return out;
}

torch::Tensor swiglu_rows(const torch::Tensor& gate_up_in) {
  const auto gate_up = gate_up_in.contiguous();
  const int64_t F = gate_up.size(-1) / 2, rows = F > 0 ? gate_up.numel() / (2 * F) : 0;
  auto shape = gate_up.sizes().vec();
  shape.back() = F;
  auto out = torch::empty(shape, gate_up.options());
  const float* gp = gate_up.data_ptr<float>();
  float* op = out.data_ptr<float>();
  // An exponential costs a few dozen multiply-adds: tasks of ≥ 8 Ki gates, so a 16-stream decode step of a small
  // model (16 rows of 1536 on the 135M shape) is shared, where 64 Ki elements kept it on the calling thread.
  parallel_rows(0, rows, task_rows(F, int64_t(1) << 13), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float *g = gp + r * 2 * F, *u = g + F;
      float* o = op + r * F;
      for (int64_t i = 0; i < F; ++i) o[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];  // silu(g) = g / (1 + e^-g)
    }
  });
  return out;
}

}  // namespace hearth::model
