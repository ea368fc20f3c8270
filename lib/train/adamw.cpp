#include "train/adamw.h"

#include <cmath>

#include <fmt/format.h>

#include "core/error.h"

namespace hearth::train {

torch::Tensor grads_flat(const std::vector<torch::Tensor>& params) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> parts;
  bool any = false;
  for (const auto& p : params) {
    const auto& g = p.grad();
    any = any || g.defined();
    parts.push_back(g.defined() ? g.reshape({-1}).to(torch::kFloat32)
                                : torch::zeros({p.numel()}, p.options().dtype(torch::kFloat32)));
  }
  return any ? torch::cat(parts) : torch::Tensor();
}

AdamW::AdamW(std::vector<torch::Tensor> params, AdamWOptions options) : params_(std::move(params)), o_(options) {
  torch::NoGradGuard no_grad;
  int64_t n = 0;
  for (const auto& p : params_) {
    if (p.scalar_type() != torch::kFloat32 || p.device() != params_.front().device())
      throw ConfigError(fmt::format("optimizer: parameters must be float32 on one device; got {} on {}",
                                    c10::toString(p.scalar_type()), p.device().str()));
    n += p.numel();
  }
  const auto options_of = params_.empty() ? torch::TensorOptions(torch::kFloat32) : params_.front().options();
  flat_ = torch::empty({n}, options_of);
  m_flat_ = torch::zeros({n}, options_of);
  v_flat_ = torch::zeros({n}, options_of);
  int64_t offset = 0;
  for (auto& p : params_) {
    const int64_t k = p.numel();
    auto view = flat_.narrow(0, offset, k).view(p.sizes());
    view.copy_(p);
    p.set_data(view);  // the same tensor (and the adapter's handle to it) now reads and writes flat_
    m_.push_back(m_flat_.narrow(0, offset, k).view(p.sizes()));
    v_.push_back(v_flat_.narrow(0, offset, k).view(p.sizes()));
    offset += k;
  }
}

void AdamW::step(double lr, const torch::Tensor& grad) {
  torch::NoGradGuard no_grad;
  ++t_;
  if (!grad.defined()) return;
  if (grad.numel() != flat_.numel())
    throw Error(fmt::format("optimizer: a gradient of {} values for {} parameters", grad.numel(), flat_.numel()));
  const auto g = grad.to(flat_.scalar_type());
  const double bc1 = 1 - std::pow(o_.beta1, double(t_));
  const double bc2_sqrt = std::sqrt(1 - std::pow(o_.beta2, double(t_)));
  if (o_.weight_decay != 0) flat_.mul_(1 - lr * o_.weight_decay);
  m_flat_.lerp_(g, 1 - o_.beta1);
  v_flat_.mul_(o_.beta2).addcmul_(g, g, 1 - o_.beta2);
  auto denom = (v_flat_.sqrt() / bc2_sqrt).add_(o_.eps);
  flat_.addcdiv_(m_flat_, denom, -lr / bc1);
}

void AdamW::zero_grad() {
  for (auto& p : params_)
    if (p.grad().defined()) p.mutable_grad() = torch::Tensor();
}

void AdamW::state_load(const std::vector<torch::Tensor>& m, const std::vector<torch::Tensor>& v, int64_t t) {
  if (m.size() != params_.size() || v.size() != params_.size())
    throw FormatError(fmt::format("optimizer state: {} moment tensors for {} parameters", m.size(), params_.size()));
  for (size_t i = 0; i < params_.size(); ++i)
    if (!m[i].sizes().equals(params_[i].sizes()) || !v[i].sizes().equals(params_[i].sizes()))
      throw FormatError(fmt::format("optimizer state: moment {} has the wrong shape", i));
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i) {
    m_[i].copy_(m[i]);
    v_[i].copy_(v[i]);
  }
  t_ = t;
}

double grad_clip(const torch::Tensor& grad, double max_norm) {
  if (!grad.defined() || grad.numel() == 0) return 0.0;
  torch::NoGradGuard no_grad;
  const double total = grad.norm(2).item<double>();
  if (max_norm > 0 && total > max_norm) grad.mul_(max_norm / (total + 1e-6));
  return total;
}

}  // namespace hearth::train
