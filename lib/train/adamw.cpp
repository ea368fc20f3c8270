#include "train/adamw.h"

#include <cmath>

#include <fmt/format.h>

#include "core/error.h"

namespace hearth::train {

AdamW::AdamW(std::vector<torch::Tensor> params, AdamWOptions options) : params_(std::move(params)), o_(options) {
  for (const auto& p : params_) {
    m_.push_back(torch::zeros_like(p));
    v_.push_back(torch::zeros_like(p));
  }
}

void AdamW::step(double lr) {
  torch::NoGradGuard no_grad;
  ++t_;
  const double bc1 = 1 - std::pow(o_.beta1, double(t_));
  const double bc2_sqrt = std::sqrt(1 - std::pow(o_.beta2, double(t_)));
  for (size_t i = 0; i < params_.size(); ++i) {
    auto& p = params_[i];
    const auto& g = p.grad();
    if (!g.defined()) continue;
    if (o_.weight_decay != 0) p.mul_(1 - lr * o_.weight_decay);
    m_[i].lerp_(g, 1 - o_.beta1);
    v_[i].mul_(o_.beta2).addcmul_(g, g, 1 - o_.beta2);
    auto denom = (v_[i].sqrt() / bc2_sqrt).add_(o_.eps);
    p.addcdiv_(m_[i], denom, -lr / bc1);
  }
}

void AdamW::zero_grad() {
  for (auto& p : params_)
    if (p.grad().defined()) p.mutable_grad() = torch::Tensor();
}

void AdamW::state_load(const std::vector<torch::Tensor>& m, const std::vector<torch::Tensor>& v, int64_t t) {
  if (m.size() != params_.size() || v.size() != params_.size())
    throw FormatError(fmt::format("optimizer state: {} moment tensors for {} parameters", m.size(), params_.size()));
  for (size_t i = 0; i < params_.size(); ++i) {
    if (!m[i].sizes().equals(params_[i].sizes()) || !v[i].sizes().equals(params_[i].sizes()))
      throw FormatError(fmt::format("optimizer state: moment {} has the wrong shape", i));
    m_[i] = m[i].to(params_[i].options()).clone();
    v_[i] = v[i].to(params_[i].options()).clone();
  }
  t_ = t;
}

double grad_clip(const std::vector<torch::Tensor>& params, double max_norm) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> norms;
  for (const auto& p : params)
    if (p.grad().defined()) norms.push_back(p.grad().norm(2).to(torch::kFloat32));
  if (norms.empty()) return 0.0;
  double total = torch::stack(norms).norm(2).item<double>();
  if (max_norm > 0 && total > max_norm) {
    double coef = max_norm / (total + 1e-6);
    for (const auto& p : params)
      if (p.grad().defined()) p.grad().mul_(coef);
  }
  return total;
}

}  // namespace hearth::train
