// AdamW and the learning-rate schedules against the published update rules, computed by hand in double.
#include <catch2/catch.hpp>

#include <cmath>

#include <torch/torch.h>

#include "train/adamw.h"
#include "train/schedule.h"

using namespace hearth;

TEST_CASE("AdamW follows torch.optim.AdamW's update", "[train]") {
  const double lr = 0.1, b1 = 0.9, b2 = 0.999, eps = 1e-8, wd = 0.01;
  auto p = torch::tensor({1.0f, -2.0f, 0.5f}).set_requires_grad(true);
  train::AdamW opt({p}, {b1, b2, eps, wd});
  std::vector<double> want = {1.0, -2.0, 0.5}, m(3, 0), v(3, 0);
  const std::vector<std::vector<double>> grads = {{0.5, -1.0, 0.0}, {0.25, 2.0, -0.125}, {-0.5, 0.0, 1.0}};
  for (int step = 1; step <= 3; ++step) {
    p.mutable_grad() = torch::tensor(std::vector<float>(grads[step - 1].begin(), grads[step - 1].end()));
    opt.step(lr);
    for (int i = 0; i < 3; ++i) {
      double g = grads[step - 1][i];
      want[i] *= 1 - lr * wd;
      m[i] = b1 * m[i] + (1 - b1) * g;
      v[i] = b2 * v[i] + (1 - b2) * g * g;
      double mhat = m[i] / (1 - std::pow(b1, step));
      double denom = std::sqrt(v[i]) / std::sqrt(1 - std::pow(b2, step)) + eps;
      want[i] -= lr * mhat / denom;
    }
    for (int i = 0; i < 3; ++i) CHECK(p[i].item<double>() == Approx(want[i]).epsilon(1e-6));
  }
  CHECK(opt.steps() == 3);
}

TEST_CASE("grad_clip scales to the max global norm and reports the norm before", "[train]") {
  auto a = torch::zeros({2}).set_requires_grad(true), b = torch::zeros({1}).set_requires_grad(true);
  a.mutable_grad() = torch::tensor({3.0f, 0.0f});
  b.mutable_grad() = torch::tensor({4.0f});
  CHECK(train::grad_clip({a, b}, 1.0) == Approx(5.0));
  CHECK(a.grad()[0].item<double>() == Approx(0.6).epsilon(1e-5));
  CHECK(b.grad()[0].item<double>() == Approx(0.8).epsilon(1e-5));
  CHECK(train::grad_clip({a, b}, 0.0) == Approx(1.0).epsilon(1e-5));  // 0 = report only
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
