#include "model/head_loss.h"

#include <algorithm>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/custom_function.h>

#include "core/error.h"

namespace hearth::model {
namespace {

int64_t rows_per_chunk(const Linear& head, int64_t chunk_rows) {
  return chunk_rows > 0 ? chunk_rows : std::max<int64_t>(1, kHeadLossChunkBytes / (4 * head.out_features()));
}

// One chunk: logits [n, V] float32 (consumed), targets [n]. Returns the chunk's summed loss; with `grad`, turns the
// logits into dL/dlogits = softmax − onehot (zero on ignored rows) in place.
torch::Tensor chunk_loss(torch::Tensor& logits, const torch::Tensor& targets, int64_t ignore_index, bool grad) {
  auto keep = targets != ignore_index;  // [n]
  auto safe = torch::where(keep, targets, torch::zeros_like(targets)).unsqueeze(1);
  auto lse = logits.logsumexp(1, /*keepdim=*/true);  // [n, 1]
  auto picked = logits.gather(1, safe);              // [n, 1]
  auto loss = ((lse - picked).squeeze(1) * keep).sum();
  if (grad) {
    logits.sub_(lse).exp_();
    logits.scatter_add_(1, safe, -torch::ones_like(picked));
    logits.mul_(keep.unsqueeze(1));
  }
  return loss;
}

// Σ loss of x's rows against `targets`, a chunk of `chunk_rows` rows at a time. With `dx`, also each chunk's dL/dx
// into it ([N, C], x's dtype), through autograd on the head's own product; without, no graph.
torch::Tensor chunked_loss(const Linear& head, const torch::Tensor& x, const torch::Tensor& targets,
                           int64_t ignore_index, int64_t chunk_rows, torch::Tensor* dx) {
  const int64_t N = x.size(0), n = rows_per_chunk(head, chunk_rows);
  auto loss = torch::zeros({}, x.options().dtype(torch::kFloat32));
  for (int64_t r0 = 0; r0 < N; r0 += n) {
    const int64_t rows = std::min(n, N - r0);
    const auto chunk_targets = targets.narrow(0, r0, rows);
    if (!dx) {
      auto logits = head.forward(x.narrow(0, r0, rows)).to(torch::kFloat32);
      loss += chunk_loss(logits, chunk_targets, ignore_index, /*grad=*/false);
      continue;
    }
    torch::AutoGradMode on(true);
    auto xc = x.narrow(0, r0, rows).detach().requires_grad_(true);
    auto logits = head.forward(xc).to(torch::kFloat32);  // [rows, V]
    // dL/dlogits overwrites the logits: no node of the head's graph saved its own output, so grad() below needs
    // only their shape (one chunk of N × V floats, not two).
    auto dlogits = logits.detach();
    {
      torch::NoGradGuard off;
      loss += chunk_loss(dlogits, chunk_targets, ignore_index, /*grad=*/true);
    }
    auto g = torch::autograd::grad({logits}, {xc}, {dlogits});
    dx->narrow(0, r0, rows).copy_(g[0]);
  }
  return loss;
}

class HeadCrossEntropy : public torch::autograd::Function<HeadCrossEntropy> {
 public:
  // x [N, C], targets [N] -> loss []; saves dL/dx [N, C] (worked out here, a chunk at a time).
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& targets, const Linear* head, int64_t ignore_index,
                               int64_t chunk_rows) {
    auto dx = torch::empty_like(x);
    auto loss = chunked_loss(*head, x, targets, ignore_index, chunk_rows, &dx);
    ctx->save_for_backward({dx});
    return loss;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto dx = ctx->get_saved_variables()[0];
    return {dx * grads[0].to(dx.scalar_type()), torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor head_cross_entropy(const Linear& head, const torch::Tensor& x, const torch::Tensor& targets,
                                 int64_t ignore_index, int64_t chunk_rows) {
  if (x.dim() != 2 || x.size(1) != head.in_features() || targets.dim() != 1 || targets.size(0) != x.size(0))
    throw Error(fmt::format("head_cross_entropy: x [{}] and targets [{}]; expected [N, {}] and [N]",
                            fmt::join(x.sizes().vec(), ", "), fmt::join(targets.sizes().vec(), ", "),
                            head.in_features()));
  const int64_t V = head.out_features();
  auto bad = (targets != ignore_index).logical_and(targets.lt(0).logical_or(targets.ge(V)));
  if (bad.any().item<bool>())
    throw Error(fmt::format("head_cross_entropy: a target id outside [0, {}) (and not {})", V, ignore_index));
  if (torch::GradMode::is_enabled() && x.requires_grad())
    return HeadCrossEntropy::apply(x, targets, &head, ignore_index, chunk_rows);
  return chunked_loss(head, x, targets, ignore_index, chunk_rows, nullptr);
}

}  // namespace hearth::model
