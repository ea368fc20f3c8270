#include "model/attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "model/parallel_rows.h"
#include "quant/matvec.h"

namespace hearth::model {

// Float32 queries on the CPU in inference mode, each (row, KV head)'s keys a block of rows hd floats apart (a KV
// cache's layout, or a prompt's own keys), values with unit stride in hd, the mask [B, 1, T, S] or none.
bool cpu_attention_applies(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                           const torch::Tensor& mask) {
  if (!c10::InferenceMode::is_enabled()) return false;
  for (const auto* t : {&q, &k, &v})
    if (!t->device().is_cpu() || t->scalar_type() != torch::kFloat32 || t->stride(3) != 1) return false;
  if (k.stride(2) != k.size(3)) return false;
  return !mask.defined() || (mask.scalar_type() == torch::kBool && mask.numel() == q.size(0) * q.size(2) * k.size(2));
}

// One task per (row, KV head, block of query positions): the scores of the block's G·n query rows against the keys
// from the first any of them may see to the last (quant::matmul_f32: each key row read once for all of them, the same
// sums whatever the block), softmax in float32 over the keys each row's mask allows, then the values weighted by it.
// The scores stay in a per-thread buffer of (G·n) × S floats: libtorch's path holds [B, KV, G·T, S] several times
// over (3,000 prompt tokens on the 135M shape: 324 MB per copy, prefill at 27 tok/s), and a causal prompt's rows
// skip the keys after them. A decode step (T = 1) takes the exponentials one at a time (std::exp); longer
// blocks exponentiate the whole buffer at once with libtorch's vectorized exp.
torch::Tensor cpu_attention(const torch::Tensor& q_in, const torch::Tensor& k, const torch::Tensor& v,
                            const torch::Tensor& mask_in) {
  const int64_t B = q_in.size(0), H = q_in.size(1), T = q_in.size(2), hd = q_in.size(3);
  const int64_t KV = k.size(1), S = k.size(2), G = H / KV;
  const auto q = q_in.contiguous();  // [B, H, T, hd]
  const auto mask = mask_in.defined() ? mask_in.reshape({B, T, S}).contiguous() : mask_in;
  auto out = torch::empty({B, T, H * hd}, torch::kFloat32);
  const float *qp = q.data_ptr<float>(), *kp = k.data_ptr<float>(), *vp = v.data_ptr<float>();
  const bool* mp = mask.defined() ? mask.data_ptr<bool>() : nullptr;
  float* op = out.data_ptr<float>();
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(hd)));
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  // Query positions per task: as many as fill the float32 kernel's rows with the G heads that share a key.
  const int64_t span = std::max<int64_t>(1, quant::matmul_f32_max_rows() / G), blocks = (T + span - 1) / span;
  // Tasks of at least ~256k multiply-adds: one sequence's decode step over a short context stays on the calling
  // thread, where waking a second one costs more than it saves.
  const int64_t grain = std::max<int64_t>(1, (int64_t(1) << 18) / std::max<int64_t>(1, 2 * G * span * S * hd));
  parallel_rows(0, B * KV * blocks, grain, [&](int64_t t0, int64_t t1) {
    thread_local std::vector<float> scores, queries;
    for (int64_t task = t0; task < t1; ++task) {
      const int64_t b = task / (KV * blocks), kv = task / blocks % KV, p0 = task % blocks * span;
      const int64_t n = std::min(T, p0 + span) - p0, m = n * G;
      // The keys any of the block's queries may see: [lo, hi).
      int64_t lo = mp ? S : 0, hi = mp ? 0 : S;
      for (int64_t j = 0; mp && j < n; ++j) {
        const bool* row = mp + (b * T + p0 + j) * S;
        int64_t first = 0, last = S;
        while (first < S && !row[first]) ++first;
        while (last > first && !row[last - 1]) --last;
        if (first < last) lo = std::min(lo, first), hi = std::max(hi, last);
      }
      const int64_t L = std::max<int64_t>(0, hi - lo);
      // Query row i = j·G + g: position p0 + j of head kv·G + g.
      queries.resize(static_cast<size_t>(m * hd));
      for (int64_t j = 0; j < n; ++j)
        for (int64_t g = 0; g < G; ++g)
          std::copy_n(qp + ((b * H + kv * G + g) * T + p0 + j) * hd, hd, queries.data() + (j * G + g) * hd);
      scores.resize(static_cast<size_t>(std::max<int64_t>(1, m * L)));
      if (L > 0)
        quant::matmul_f32(kp + b * k.stride(0) + kv * k.stride(1) + lo * hd, hd, queries.data(), m, scores.data(), L,
                          0, L);
      for (int64_t i = 0; i < m; ++i) {
        float* sc = scores.data() + i * L;
        const bool* allowed = mp ? mp + (b * T + p0 + i / G) * S + lo : nullptr;
        float top = kNegInf;
        for (int64_t s = 0; s < L; ++s) {
          sc[s] = allowed && !allowed[s] ? kNegInf : sc[s] * scale;
          top = std::max(top, sc[s]);
        }
        for (int64_t s = 0; s < L; ++s) sc[s] -= top;  // masked keys stay -inf (all masked: NaN, as below)
        if (T == 1)
          for (int64_t s = 0; s < L; ++s) sc[s] = std::exp(sc[s]);
      }
      if (T > 1 && m * L > 0) torch::from_blob(scores.data(), {m * L}, torch::kFloat32).exp_();
      const float* vb = vp + b * v.stride(0) + kv * v.stride(1) + lo * v.stride(2);
      for (int64_t i = 0; i < m; ++i) {
        float* sc = scores.data() + i * L;
        float total = 0;
        for (int64_t s = 0; s < L; ++s) total += sc[s];
        for (int64_t s = 0; s < L; ++s) sc[s] /= total;  // masked keys 0 (skipped below); every key masked: NaN
        float* o = op + (b * T + p0 + i / G) * H * hd + (kv * G + i % G) * hd;  // out[b, t, h·hd + j]
        quant::weighted_rows_f32(sc, L, vb, v.stride(2), hd, o);
        if (!(total > 0.0f)) std::fill(o, o + hd, std::numeric_limits<float>::quiet_NaN());  // softmax of all -inf
      }
    }
  });
  return out;
}

torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                        const torch::Tensor& mask) {
  if (cpu_attention_applies(q, k, v, mask)) return cpu_attention(q, k, v, mask);
  const int64_t B = q.size(0), H = q.size(1), T = q.size(2), hd = q.size(3);
  const int64_t KV = k.size(1), S = k.size(2), G = H / KV;
  auto qg = q.reshape({B, KV, G * T, hd});                                               // heads kv·G + g
  auto scores = torch::matmul(qg, k.transpose(-2, -1)) * (1.0 / std::sqrt(double(hd)));  // [B, KV, G·T, S]
  scores = scores.view({B, KV, G, T, S});
  if (mask.defined())
    scores = scores.masked_fill(mask.view({B, 1, 1, T, S}).logical_not(), -std::numeric_limits<float>::infinity());
  auto probs = torch::softmax(scores, -1, torch::kFloat32).to(v.scalar_type());
  auto out = torch::matmul(probs.view({B, KV, G * T, S}), v);  // [B, KV, G·T, hd]
  return out.view({B, H, T, hd}).transpose(1, 2).reshape({B, T, H * hd});
}

torch::Tensor attention_mask(const torch::Tensor& q_slot, const torch::Tensor& key_valid, int64_t n_keys,
                             std::optional<int64_t> window) {
  auto key_slot =
      torch::arange(n_keys, torch::TensorOptions().dtype(torch::kInt64).device(q_slot.device())).view({1, 1, -1});
  auto qs = q_slot.unsqueeze(-1);  // [B, T, 1]
  auto allowed = key_slot <= qs;   // causal by slot
  if (key_valid.defined()) allowed = allowed.logical_and(key_valid.unsqueeze(1));
  if (window) allowed = allowed.logical_and((qs - key_slot) < *window);
  allowed = allowed.logical_or(key_slot == qs);
  return allowed.unsqueeze(1);  // [B, 1, T, n_keys]
}

}  // namespace hearth::model
