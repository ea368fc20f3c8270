#include "model/attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "model/parallel_rows.h"
#include "quant/matvec.h"

namespace hearth::model {

// A decode step on the CPU: one float32 query per row (T = 1) in inference mode, each (row, KV head)'s keys a block of
// rows hd floats apart (a KV cache's layout), values with unit stride in hd, the mask [B, 1, 1, S] or none.
bool decode_attention_applies(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                              const torch::Tensor& mask) {
  if (!c10::InferenceMode::is_enabled() || q.size(2) != 1) return false;
  for (const auto* t : {&q, &k, &v})
    if (!t->device().is_cpu() || t->scalar_type() != torch::kFloat32 || t->stride(3) != 1) return false;
  if (k.stride(2) != k.size(3)) return false;
  return !mask.defined() || (mask.scalar_type() == torch::kBool && mask.numel() == q.size(0) * k.size(2));
}

// That step one (row, KV head) at a time: the scores of its G query heads against the S keys with the float32 row
// kernel (quant::matmul_f32: each key row read once for the G queries, the same sums whatever the batch), softmax in
// float32 over the keys the mask allows, then the values weighted by it. libtorch's matmul, masked_fill and softmax
// for these small shapes were a quarter of a 135M q4_0 decode step (dispatch and allocation, six ops per layer).
torch::Tensor decode_attention(const torch::Tensor& q_in, const torch::Tensor& k, const torch::Tensor& v,
                               const torch::Tensor& mask_in) {
  const int64_t B = q_in.size(0), H = q_in.size(1), hd = q_in.size(3);
  const int64_t KV = k.size(1), S = k.size(2), G = H / KV;
  const auto q = q_in.contiguous();  // [B, H, 1, hd]: the G query heads of a KV head are G rows in a row
  const auto mask = mask_in.defined() ? mask_in.reshape({B, S}).contiguous() : mask_in;
  auto out = torch::empty({B, 1, H * hd}, torch::kFloat32);
  const float *qp = q.data_ptr<float>(), *kp = k.data_ptr<float>(), *vp = v.data_ptr<float>();
  const bool* mp = mask.defined() ? mask.data_ptr<bool>() : nullptr;
  float* op = out.data_ptr<float>();
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(hd)));
  // Tasks of at least ~256k multiply-adds: one sequence's step over a short context stays on the calling thread, where
  // waking a second one costs more than it saves.
  const int64_t grain = std::max<int64_t>(1, (int64_t(1) << 18) / std::max<int64_t>(1, 2 * G * S * hd));
  parallel_rows(0, B * KV, grain, [&](int64_t t0, int64_t t1) {
    thread_local std::vector<float> scores;
    scores.resize(static_cast<size_t>(G * S));
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t b = t / KV, kv = t % KV;
      const float* vb = vp + b * v.stride(0) + kv * v.stride(1);
      const bool* allowed = mp ? mp + b * S : nullptr;
      quant::matmul_f32(kp + b * k.stride(0) + kv * k.stride(1), hd, qp + (b * H + kv * G) * hd, G, scores.data(), S,
                        0, S);
      for (int64_t g = 0; g < G; ++g) {
        float* sc = scores.data() + g * S;
        float top = -std::numeric_limits<float>::infinity();
        for (int64_t s = 0; s < S; ++s) {
          sc[s] = allowed && !allowed[s] ? -std::numeric_limits<float>::infinity() : sc[s] * scale;
          top = std::max(top, sc[s]);
        }
        float total = 0;
        for (int64_t s = 0; s < S; ++s) {
          sc[s] = std::exp(sc[s] - top);  // masked keys: 0
          total += sc[s];
        }
        float* o = op + (b * H + kv * G + g) * hd;  // out[b, 0, h·hd + j]
        std::fill(o, o + hd, 0.0f);
        for (int64_t s = 0; s < S; ++s) {
          if (sc[s] == 0.0f) continue;
          const float p = sc[s] / total;
          const float* vr = vb + s * v.stride(2);
          for (int64_t j = 0; j < hd; ++j) o[j] += p * vr[j];
        }
        if (!(total > 0.0f)) std::fill(o, o + hd, std::numeric_limits<float>::quiet_NaN());  // softmax of all -inf
      }
    }
  });
  return out;
}

torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                        const torch::Tensor& mask) {
  if (decode_attention_applies(q, k, v, mask)) return decode_attention(q, k, v, mask);
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
