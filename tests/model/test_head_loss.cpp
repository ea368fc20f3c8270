// head_cross_entropy (model/head_loss.h): the summed cross-entropy at the output head, a chunk of rows at a time,
// against the same loss and gradient worked out in float64 from the definition (−log softmax at the target;
// dL/dx = (softmax − onehot)·W), for a dense head and a q8_0 block head, over uneven chunks and ignored rows.
#include <catch2/catch.hpp>

#include <torch/torch.h>

#include "core/error.h"
#include "model/head_loss.h"
#include "model/linear.h"

using namespace hearth;

namespace {

constexpr int64_t kV = 50, kC = 64, kN = 10;

struct Want {
  double loss;
  torch::Tensor grad;  // [N, C] float64
};

// From the definition, in float64, with the head's weights as a float32 matrix W [V, C].
Want reference(const torch::Tensor& w, const torch::Tensor& x, const torch::Tensor& targets) {
  auto wd = w.to(torch::kFloat64), xd = x.detach().to(torch::kFloat64);
  auto logits = xd.mm(wd.t());
  auto p = logits.softmax(1);
  double loss = 0;
  for (int64_t i = 0; i < x.size(0); ++i) {
    const int64_t t = targets[i].item<int64_t>();
    if (t == -100) {
      p[i].zero_();
      continue;
    }
    loss -= std::log(p[i][t].item<double>());
    p[i][t] -= 1.0;
  }
  return {loss, p.mm(wd)};
}

torch::Tensor targets_with_ignored() {
  auto t = torch::randint(0, kV, {kN}, torch::kInt64);
  t[2] = -100;
  t[7] = -100;
  return t;
}

}  // namespace

TEST_CASE("head_cross_entropy equals the loss and dL/dx from the definition, in chunks, for dense and q8_0 heads",
          "[model]") {
  torch::manual_seed(21);
  auto w = torch::randn({kV, kC}) * 0.3;
  for (bool blocks : {false, true}) {
    const auto head = blocks ? model::Linear({model::Linear::Blocks::quantized(w, quant::GgmlType::kQ8_0)}, {})
                             : model::Linear(w, {});
    for (int64_t chunk : {int64_t(0), int64_t(3), int64_t(1)}) {  // one chunk; 3+3+3+1 rows; a row at a time
      INFO((blocks ? "q8_0" : "float32") << " head, chunk_rows " << chunk);
      auto x = torch::randn({kN, kC}).requires_grad_(true);
      auto targets = targets_with_ignored();
      auto want = reference(head.dense(), x, targets);
      auto loss = model::head_cross_entropy(head, x, targets, -100, chunk);
      CHECK(loss.scalar_type() == torch::kFloat32);
      CHECK(loss.item<double>() == Approx(want.loss).epsilon(1e-6));
      (loss * 0.25).backward();  // backward scales the gradient worked out in the forward pass
      CHECK(torch::allclose(x.grad().to(torch::kFloat64), want.grad * 0.25, 1e-5, 1e-6));
      CHECK(x.grad()[2].abs().max().item<float>() == 0.0f);  // ignored rows: no gradient
      CHECK(x.grad()[7].abs().max().item<float>() == 0.0f);
      // Evaluation: no graph, and the loss of the head's product without autograd (for blocks, lib/quant's kernels
      // with 8-bit activations, as the rest of an evaluation forward).
      torch::NoGradGuard no_grad;
      auto eval = model::head_cross_entropy(head, x, targets, -100, chunk);
      CHECK_FALSE(eval.requires_grad());
      auto plain = at::cross_entropy_loss(head.forward(x), targets, {}, at::Reduction::Sum, -100, 0.0);
      CHECK(eval.item<double>() == Approx(plain.item<double>()).epsilon(1e-6));
      if (!blocks) CHECK(eval.item<double>() == Approx(want.loss).epsilon(1e-6));
    }
  }
}

TEST_CASE("head_cross_entropy refuses a target outside the vocabulary and mismatched shapes", "[model]") {
  const model::Linear head(torch::randn({kV, kC}), {});
  auto x = torch::randn({kN, kC});
  auto targets = torch::zeros({kN}, torch::kInt64);
  targets[4] = kV;
  CHECK_THROWS_WITH(model::head_cross_entropy(head, x, targets), Catch::Matchers::Contains("outside [0, 50)"));
  targets[4] = -3;
  CHECK_THROWS_AS(model::head_cross_entropy(head, x, targets), Error);
  CHECK_THROWS_WITH(model::head_cross_entropy(head, x, torch::zeros({kN - 1}, torch::kInt64)),
                    Catch::Matchers::Contains("expected [N, 64] and [N]"));
  CHECK_THROWS_AS(model::head_cross_entropy(head, torch::randn({kN, kC + 1}), torch::zeros({kN}, torch::kInt64)),
                  Error);
}
