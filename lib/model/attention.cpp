#include "model/attention.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/core/stack.h>
#include <fmt/format.h>
#include <torch/csrc/autograd/custom_function.h>

#include "core/error.h"
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

namespace {

// Softmax(q·kᵀ/√hd) in float32 over the keys the mask allows: q [n, H, T, hd], k [n, KV, S, hd], mask [n, 1, T, S] or
// undefined -> [n, KV, G·T, S] (row kv·G·T + g·T + t: query head kv·G + g at position t).
torch::Tensor attention_probs(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& mask) {
  const int64_t n = q.size(0), H = q.size(1), T = q.size(2), hd = q.size(3);
  const int64_t KV = k.size(1), S = k.size(2), G = H / KV;
  auto qg = q.reshape({n, KV, G * T, hd});                                               // heads kv·G + g
  auto scores = torch::matmul(qg, k.transpose(-2, -1)) * (1.0 / std::sqrt(double(hd)));  // [n, KV, G·T, S]
  scores = scores.view({n, KV, G, T, S});
  if (mask.defined())
    scores = scores.masked_fill(mask.view({n, 1, 1, T, S}).logical_not(), -std::numeric_limits<float>::infinity());
  return torch::softmax(scores, -1, torch::kFloat32).view({n, KV, G * T, S});
}

// Batch rows per chunk of the training path: [KV, G·T, S] float32 scores of about kAttentionChunkBytes at a time.
int64_t attention_rows_per_chunk(int64_t H, int64_t T, int64_t S) {
  return std::max<int64_t>(1, kAttentionChunkBytes / std::max<int64_t>(1, 4 * H * T * S));
}

// attention_probs of batch rows [b0, b0 + rows).
torch::Tensor attention_probs_rows(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& mask,
                                   int64_t b0, int64_t rows) {
  return attention_probs(q.narrow(0, b0, rows), k.narrow(0, b0, rows),
                         mask.defined() ? mask.narrow(0, b0, rows) : mask);
}

// Attention under autograd without keeping the probabilities: the forward pass works through the batch a few rows at
// a time and keeps only q, k, v and the mask; backward computes each chunk's probabilities again, as the forward
// did, and from them dV = Pᵀ·dO, dS = P ∘ (dP − Σ dP∘P) with dP = dO·Vᵀ, dQ = dS·K/√hd, dK = dSᵀ·Q/√hd — the
// formulas libtorch's autograd applies to the ops of attention_probs, in the same dtypes. What it saves: the
// [B, KV, G·T, S] float32 probabilities and their copy in v's dtype per layer (B = 4, T = S = 512 on the 1B shape:
// 192 MiB a layer in bfloat16), at the cost of computing the scores twice.
class RecomputedAttention : public torch::autograd::Function<RecomputedAttention> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& q, const torch::Tensor& k,
                               const torch::Tensor& v, const torch::Tensor& mask) {
    const int64_t B = q.size(0), H = q.size(1), T = q.size(2), hd = q.size(3);
    const int64_t KV = k.size(1), S = k.size(2), G = H / KV, n = attention_rows_per_chunk(H, T, S);
    auto out = torch::empty({B, KV, G * T, hd}, v.options());
    for (int64_t b0 = 0; b0 < B; b0 += n) {
      const int64_t rows = std::min(n, B - b0);
      auto probs = attention_probs_rows(q, k, mask, b0, rows);
      out.narrow(0, b0, rows).copy_(torch::matmul(probs.to(v.scalar_type()), v.narrow(0, b0, rows)));
    }
    ctx->save_for_backward({q, k, v, mask});
    return out.view({B, H, T, hd}).transpose(1, 2).reshape({B, T, H * hd});
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto &q = saved[0], &k = saved[1], &v = saved[2], &mask = saved[3];
    const int64_t B = q.size(0), H = q.size(1), T = q.size(2), hd = q.size(3);
    const int64_t KV = k.size(1), S = k.size(2), G = H / KV, n = attention_rows_per_chunk(H, T, S);
    const double scale = 1.0 / std::sqrt(double(hd));
    // dO [B, T, H·hd] -> [B, KV, G·T, hd], rows as attention_probs orders them
    auto d_out = grads[0].reshape({B, T, H, hd}).transpose(1, 2).reshape({B, KV, G * T, hd});
    auto dq = torch::empty({B, KV, G * T, hd}, q.options()), dk = torch::empty_like(k, k.options()),
         dv = torch::empty_like(v, v.options());
    for (int64_t b0 = 0; b0 < B; b0 += n) {
      const int64_t rows = std::min(n, B - b0);
      auto qc = q.narrow(0, b0, rows), kc = k.narrow(0, b0, rows), vc = v.narrow(0, b0, rows);
      auto probs = attention_probs_rows(q, k, mask, b0, rows);  // float32
      auto doc = d_out.narrow(0, b0, rows);
      dv.narrow(0, b0, rows).copy_(torch::matmul(probs.to(v.scalar_type()).transpose(-2, -1), doc));
      auto dp = torch::matmul(doc, vc.transpose(-2, -1)).to(torch::kFloat32);  // [rows, KV, G·T, S]
      auto ds = (probs * (dp - (dp * probs).sum(-1, /*keepdim=*/true))).to(q.scalar_type()) * scale;
      dq.narrow(0, b0, rows).copy_(torch::matmul(ds, kc));
      dk.narrow(0, b0, rows).copy_(torch::matmul(ds.transpose(-2, -1), qc.reshape({rows, KV, G * T, hd})));
    }
    return {dq.view({B, H, T, hd}), dk, dv, torch::Tensor()};
  }
};

constexpr const char* kFusedOp = "aten::scaled_dot_product_attention";
std::atomic<bool> fused_enabled{true};

// The registered operator `name`, or nothing when this libtorch has none.
c10::optional<c10::OperatorHandle> op_find(const char* name) {
  return c10::Dispatcher::singleton().findSchema({name, ""});
}

// Calls `op` with the arguments named in `args` and every other one at its schema default (through the dispatcher:
// autograd records it as it would the typed call); its first result.
torch::Tensor op_call(const c10::OperatorHandle& op, const std::map<std::string, c10::IValue>& args) {
  const auto& schema = op.schema();
  for (const auto& [name, value] : args)
    if (!schema.argumentIndexWithName(name))
      throw Error(fmt::format("{}: takes no argument '{}'", schema.name(), name));
  torch::jit::Stack stack;
  for (const auto& a : schema.arguments()) {
    auto it = args.find(a.name());
    if (it != args.end()) stack.push_back(it->second);
    else if (a.default_value()) stack.push_back(*a.default_value());
    else throw Error(fmt::format("{}: no value for its argument '{}'", schema.name(), a.name()));
  }
  op.callBoxed(&stack);
  return stack.front().toTensor();
}

// fused_attention's call through `op`.
torch::Tensor fused_call(const c10::OperatorHandle& op, const torch::Tensor& q, const torch::Tensor& k,
                         const torch::Tensor& v, const torch::Tensor& mask, bool causal) {
  const int64_t B = q.size(0), H = q.size(1), T = q.size(2), hd = q.size(3);
  const int64_t KV = k.size(1), S = k.size(2), G = H / KV;
  // [B, KV, S, hd] -> [B, H, S, hd], head h reading KV head h / G (the kernels want one key head per query head)
  auto heads = [&](const torch::Tensor& t) {
    return G == 1 ? t : t.unsqueeze(2).expand({B, KV, G, S, hd}).reshape({B, H, S, hd});
  };
  std::map<std::string, c10::IValue> args{
      {"query", q}, {"key", heads(k.to(q.scalar_type()))}, {"value", heads(v.to(q.scalar_type()))}};
  if (causal) args["is_causal"] = true;
  else if (mask.defined()) args["attn_mask"] = mask;
  auto out = op_call(op, args);  // [B, H, T, hd]
  return out.transpose(1, 2).reshape({B, T, H * hd}).to(v.scalar_type());
}

const c10::optional<c10::OperatorHandle>& fused_op() {
  static const auto op = op_find(kFusedOp);
  return op;
}

}  // namespace

bool fused_attention_available() { return fused_op().has_value() && fused_enabled; }

void fused_attention_enable(bool on) { fused_enabled = on; }

torch::Tensor fused_attention(const char* op_name, const torch::Tensor& q, const torch::Tensor& k,
                              const torch::Tensor& v, const torch::Tensor& mask, bool causal) {
  const auto op = op_find(op_name);
  if (!op) throw Error(fmt::format("attention: this libtorch has no operator {}", op_name));
  return fused_call(*op, q, k, v, mask, causal);
}

torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                        const torch::Tensor& mask, bool causal) {
  if (cpu_attention_applies(q, k, v, mask)) return cpu_attention(q, k, v, mask);
  // Not for decode steps: repeating the cache's K/V heads for one query would copy the whole cache every token.
  if (q.is_cuda() && q.size(2) > 1 && fused_attention_available())
    return fused_call(*fused_op(), q, k, v, mask, causal);
  if (torch::GradMode::is_enabled() && (q.requires_grad() || k.requires_grad() || v.requires_grad()))
    return RecomputedAttention::apply(q, k, v, mask);
  const int64_t B = q.size(0), H = q.size(1), T = q.size(2), hd = q.size(3);
  auto probs = attention_probs(q, k, mask).to(v.scalar_type());  // [B, KV, G·T, S]
  auto out = torch::matmul(probs, v);                            // [B, KV, G·T, hd]
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
