// AdamW and the learning-rate schedules against the published update rules, computed by hand in double.
#include <catch2/catch.hpp>

#include <cmath>

#include <torch/torch.h>

#include "train/adamw.h"
#include "train/schedule.h"

using namespace hearth;

TEST_CASE("AdamW follows torch.optim.AdamW's update", "[train]") {
  const double lr = 0.1, b1 = 0.9, b2 = 0.999, eps = 1e-8, wd = 0.01;
  // Two parameters of different shapes, held elsewhere too (as a LoRA adapter holds its weights).
  auto p = torch::tensor({1.0f, -2.0f, 0.5f}).set_requires_grad(true);
  auto q = torch::tensor({{0.25f}, {-4.0f}}).set_requires_grad(true);
  const std::vector<torch::Tensor> holder{p, q};
  train::AdamW opt({p, q}, {b1, b2, eps, wd});
  std::vector<double> want = {1.0, -2.0, 0.5, 0.25, -4.0}, m(5, 0), v(5, 0);
  const std::vector<std::vector<double>> grads = {
      {0.5, -1.0, 0.0, 1.5, -0.5}, {0.25, 2.0, -0.125, 0.0, 3.0}, {-0.5, 0.0, 1.0, -1.0, 0.0625}};
  for (int step = 1; step <= 3; ++step) {
    const auto& gs = grads[step - 1];
    p.mutable_grad() = torch::tensor(std::vector<float>(gs.begin(), gs.begin() + 3));
    q.mutable_grad() = torch::tensor(std::vector<float>(gs.begin() + 3, gs.end())).view({2, 1});
    if (step < 3) opt.step(lr);
    else opt.step(lr, train::grads_flat({p, q}));  // the flat gradient given, as finetune-lora gives it
    for (int i = 0; i < 5; ++i) {
      double g = gs[i];
      want[i] *= 1 - lr * wd;
      m[i] = b1 * m[i] + (1 - b1) * g;
      v[i] = b2 * v[i] + (1 - b2) * g * g;
      double mhat = m[i] / (1 - std::pow(b1, step));
      double denom = std::sqrt(v[i]) / std::sqrt(1 - std::pow(b2, step)) + eps;
      want[i] -= lr * mhat / denom;
    }
    const auto got = torch::cat({holder[0].reshape({-1}), holder[1].reshape({-1})});
    for (int i = 0; i < 5; ++i) CHECK(got[i].item<double>() == Approx(want[i]).epsilon(1e-6));
    CHECK(opt.exp_avg()[1][1][0].item<double>() == Approx(m[4]).epsilon(1e-6));
    CHECK(opt.exp_avg_sq()[0][1].item<double>() == Approx(v[1]).epsilon(1e-6));
  }
  CHECK(opt.steps() == 3);
  CHECK(q.sizes() == torch::IntArrayRef({2, 1}));
  opt.step(lr, torch::Tensor());  // no gradient: counted, nothing changes
  CHECK(opt.steps() == 4);
  CHECK(holder[1][1][0].item<double>() == Approx(want[4]).epsilon(1e-6));
  CHECK_THROWS_WITH(opt.step(lr, torch::zeros({4})), Catch::Contains("4 values for 5 parameters"));
  CHECK_THROWS_WITH(train::AdamW({torch::zeros({2}, torch::kFloat64)}, {}), Catch::Contains("float32"));
}

TEST_CASE("grads_flat: the params' gradients in order, zeros for one without", "[train]") {
  auto a = torch::zeros({2}).set_requires_grad(true), b = torch::zeros({1}).set_requires_grad(true);
  auto c = torch::zeros({2, 2}).set_requires_grad(true);
  CHECK_FALSE(train::grads_flat({a, b, c}).defined());
  a.mutable_grad() = torch::tensor({3.0f, 1.0f});
  c.mutable_grad() = torch::tensor({{4.0f, 5.0f}, {6.0f, 7.0f}});
  CHECK(torch::equal(train::grads_flat({a, b, c}), torch::tensor({3.0f, 1.0f, 0.0f, 4.0f, 5.0f, 6.0f, 7.0f})));
}

TEST_CASE("grad_clip scales to the max global norm and reports the norm before", "[train]") {
  auto g = torch::tensor({3.0f, 0.0f, 4.0f});
  CHECK(train::grad_clip(g, 1.0) == Approx(5.0));
  CHECK(g[0].item<double>() == Approx(0.6).epsilon(1e-5));
  CHECK(g[2].item<double>() == Approx(0.8).epsilon(1e-5));
  CHECK(train::grad_clip(g, 0.0) == Approx(1.0).epsilon(1e-5));  // 0 = report only
  CHECK(train::grad_clip(torch::Tensor(), 1.0) == 0.0);          // no gradient this step
}

TEST_CASE("schedules: warmup, then constant / linear / cosine to the floor", "[train]") {
  train::ScheduleSpec s{"cosine", 10, 0.1};
  CHECK(train::lr_at(s, 1.0, 0, 110) == Approx(0.1));  // warmup step 1 of 10
  CHECK(train::lr_at(s, 1.0, 9, 110) == Approx(1.0));
  CHECK(train::lr_at(s, 1.0, 10, 110) == Approx(1.0));              // decay starts at full lr
  CHECK(train::lr_at(s, 1.0, 60, 110) == Approx(0.1 + 0.9 * 0.5));  // halfway: cos(pi/2) = 0
  CHECK(train::lr_at(s, 1.0, 110, 110) == Approx(0.1));
  s.type = "linear";
  CHECK(train::lr_at(s, 1.0, 35, 110) == Approx(0.1 + 0.9 * 0.75));
  s.type = "constant";
  CHECK(train::lr_at(s, 2.0, 100, 110) == Approx(2.0));
}
