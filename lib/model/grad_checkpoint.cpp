#include "model/grad_checkpoint.h"

#include <memory>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/custom_function.h>

#include "model/llama.h"

namespace hearth::model {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// What backward needs to recompute a layer. Owned by the autograd node (freed in backward).
struct LayerCall {
  const LlamaModel* model;
  int64_t layer;
  torch::Tensor cos, sin, mask, slots;
  int64_t n_keys;
  ForwardOptions options;
  std::vector<torch::Tensor> params;  // LoRA weights of this layer that require grad
  torch::Tensor rng_before;           // CPU generator state before the layer ran (dropout replay)
};

struct LayerCheckpoint : public torch::autograd::Function<LayerCheckpoint> {
  // params are inputs only so that autograd routes their gradients through this node.
  static torch::Tensor forward(AutogradContext* ctx, torch::Tensor x, at::TensorList params, int64_t call_ptr) {
    auto* call = reinterpret_cast<LayerCall*>(call_ptr);
    ctx->save_for_backward({x});
    ctx->saved_data["call"] = call_ptr;
    return call->model->layer_forward(call->layer, x, call->cos, call->sin, call->mask, nullptr, call->slots,
                                      call->n_keys, call->options);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_out) {
    std::unique_ptr<LayerCall> call(reinterpret_cast<LayerCall*>(ctx->saved_data["call"].toInt()));
    auto x = ctx->get_saved_variables()[0].detach().requires_grad_(true);
    auto gen = at::detail::getDefaultCPUGenerator();
    torch::Tensor rng_now = gen.get_state();
    gen.set_state(call->rng_before);
    torch::Tensor y;
    {
      torch::AutoGradMode enable(true);
      y = call->model->layer_forward(call->layer, x, call->cos, call->sin, call->mask, nullptr, call->slots,
                                     call->n_keys, call->options);
    }
    gen.set_state(rng_now);
    variable_list inputs = {x};
    inputs.insert(inputs.end(), call->params.begin(), call->params.end());
    auto grads = torch::autograd::grad({y}, inputs, {grad_out[0]}, /*retain_graph=*/false, /*create_graph=*/false,
                                       /*allow_unused=*/true);
    grads.push_back(torch::Tensor());  // call_ptr
    return grads;
  }
};

}  // namespace

torch::Tensor layer_forward_checkpointed(const LlamaModel& model, int64_t l, const torch::Tensor& x,
                                         const torch::Tensor& cos, const torch::Tensor& sin, const torch::Tensor& mask,
                                         const torch::Tensor& slots, int64_t n_keys, const ForwardOptions& options) {
  auto call = std::make_unique<LayerCall>();
  call->model = &model;
  call->layer = l;
  call->cos = cos;
  call->sin = sin;
  call->mask = mask;
  call->slots = slots;
  call->n_keys = n_keys;
  call->options = options;
  for (const auto* adapter : options.adapters) {
    if (!adapter) continue;
    for (size_t t = 0; t < kLoraTargetCount; ++t)
      if (const auto* p = adapter->find(l, static_cast<LoraTarget>(t)))
        for (const auto& w : {p->A, p->B})
          if (w.requires_grad()) call->params.push_back(w);
  }
  call->rng_before = at::detail::getDefaultCPUGenerator().get_state();
  std::vector<torch::Tensor> params = call->params;
  auto ptr = reinterpret_cast<int64_t>(call.release());
  return LayerCheckpoint::apply(x, at::TensorList(params), ptr);
}

}  // namespace hearth::model
