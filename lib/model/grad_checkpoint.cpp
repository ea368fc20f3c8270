#include "model/grad_checkpoint.h"

#include <atomic>
#include <mutex>

#include <ATen/Context.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/custom_function.h>

#include "model/linear.h"

namespace hearth::model {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

std::atomic<int64_t> g_alive{0};

// What backward needs to recompute a layer. Held by the autograd context as a capsule, so it is released
// with the graph even when backward never runs (e.g. an evaluation that only needed the loss value).
struct LayerCall : torch::CustomClassHolder {
  LayerCall(LayerFn f, std::vector<torch::Tensor> p, torch::Device d)
      : layer(std::move(f)), params(std::move(p)), device(d) {
    ++g_alive;
  }
  ~LayerCall() override { --g_alive; }
  LayerFn layer;
  std::vector<torch::Tensor> params;  // trainable tensors the layer reads
  torch::Device device;               // whose random generator dropout draws from
  torch::Tensor rng_before;           // its state before the forward ran
};

at::Generator generator_of(torch::Device device) {
  return at::globalContext().defaultGenerator(device.is_cuda() ? device : torch::Device(device.type()));
}

struct LayerCheckpoint : public torch::autograd::Function<LayerCheckpoint> {
  // params are inputs only so that autograd routes their gradients through this node.
  static torch::Tensor forward(AutogradContext* ctx, torch::Tensor x, at::TensorList params,
                               c10::intrusive_ptr<LayerCall> call) {
    ctx->save_for_backward({x});
    DecodedBlocksGuard decoded;  // autograd is off here; block weights must still multiply as in the recompute
    auto y = call->layer(x);
    ctx->saved_data["call"] = at::IValue::make_capsule(std::move(call));
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_out) {
    auto call = c10::static_intrusive_pointer_cast<LayerCall>(ctx->saved_data["call"].toCapsule());
    auto x = ctx->get_saved_variables()[0].detach().requires_grad_(true);
    auto gen = generator_of(call->device);
    // Replay: the generator as it was before the forward, then as it is now. The layer itself locks the
    // generator when it draws, so the lock is held only around the state swaps.
    torch::Tensor rng_now;
    {
      std::lock_guard<std::mutex> lock(gen.mutex());
      rng_now = gen.get_state();
      gen.set_state(call->rng_before);
    }
    auto restore = [&] {
      std::lock_guard<std::mutex> lock(gen.mutex());
      gen.set_state(rng_now);
    };
    torch::Tensor y;
    try {
      torch::AutoGradMode enable(true);
      y = call->layer(x);
    } catch (...) {
      restore();
      throw;
    }
    restore();
    variable_list inputs = {x};
    inputs.insert(inputs.end(), call->params.begin(), call->params.end());
    auto grads = torch::autograd::grad({y}, inputs, {grad_out[0]}, /*retain_graph=*/false, /*create_graph=*/false,
                                       /*allow_unused=*/true);
    grads.emplace_back();  // the call
    return grads;
  }
};

}  // namespace

torch::Tensor checkpointed(const torch::Tensor& x, const std::vector<torch::Tensor>& params, LayerFn layer) {
  auto call = c10::make_intrusive<LayerCall>(std::move(layer), params, x.device());
  auto gen = generator_of(x.device());
  {
    std::lock_guard<std::mutex> lock(gen.mutex());
    call->rng_before = gen.get_state();
  }
  return LayerCheckpoint::apply(x, at::TensorList(params), std::move(call));
}

int64_t checkpoint_states_alive() { return g_alive.load(); }

}  // namespace hearth::model
