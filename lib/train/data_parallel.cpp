#include "train/data_parallel.h"

#include <fmt/format.h>

#include "core/error.h"

namespace hearth::train {

namespace {
uint64_t mix64(uint64_t z) {  // splitmix64's finalizer
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
}  // namespace

uint64_t dropout_seed(uint64_t seed, int64_t step, int64_t micro_index) {
  uint64_t h = mix64(seed + 0x9e3779b97f4a7c15ULL);
  h = mix64(h ^ static_cast<uint64_t>(step) * 0x9e3779b97f4a7c15ULL);
  h = mix64(h ^ static_cast<uint64_t>(micro_index) * 0xc2b2ae3d27d4eb4fULL);
  return h >> 1;  // mt19937's seed path takes 64 bits, but keep it positive for anyone printing it as int64
}

DataParallel::DataParallel(std::unique_ptr<ProcessGroup> group) : group_(std::move(group)) {}

std::vector<Batch> DataParallel::batches_next(DataLoader& loader, int64_t micro, int64_t accumulation) const {
  const int64_t share = micro * accumulation;
  loader.skip(rank() * share);
  std::vector<Batch> out;
  for (int64_t i = 0; i < accumulation; ++i) out.push_back(loader.next(micro));
  loader.skip((world_size() - 1 - rank()) * share);
  return out;
}

void DataParallel::sum(std::vector<double>& values) {
  if (!group_ || values.empty()) return;
  auto t = torch::tensor(values, torch::kFloat64);
  group_->all_reduce_sum({t});
  for (size_t i = 0; i < values.size(); ++i) values[i] = t[static_cast<int64_t>(i)].item<double>();
}

bool DataParallel::any(bool local) {
  std::vector<double> v{local ? 1.0 : 0.0};
  sum(v);
  return v[0] > 0;
}

void DataParallel::gradients_add(const std::vector<torch::Tensor>& params) {
  torch::NoGradGuard no_grad;
  auto g = grads_flat(params);
  if (!g.defined()) return;
  if (grad_sum_.defined()) grad_sum_.add_(g);
  else grad_sum_ = g.to(torch::kFloat64);
  for (const auto& p : params) p.mutable_grad() = torch::Tensor();
}

torch::Tensor DataParallel::gradients_sum(const std::vector<torch::Tensor>& params) {
  torch::NoGradGuard no_grad;
  gradients_add(params);
  if (!grad_sum_.defined()) {
    int64_t n = 0;
    for (const auto& p : params) n += p.numel();
    const auto device = params.empty() ? torch::Device(torch::kCPU) : params.front().device();
    grad_sum_ = torch::zeros({n}, torch::TensorOptions().dtype(torch::kFloat64).device(device));
  }
  if (group_) group_->all_reduce_sum({grad_sum_});
  auto out = grad_sum_.to(torch::kFloat32);
  grad_sum_ = torch::Tensor();
  return out;
}

void DataParallel::state_from_leader(model::LoraAdapter& adapter, AdamW& optimizer, TrainState& state, bool& resumed) {
  if (!group_) return;
  const std::string identity = group_->broadcast_string(state.identity.dump());
  if (!leader() && identity != state.identity.dump())
    throw ConfigError(
        fmt::format("rank {}: this worker's recipe differs from rank 0's ({}); every worker must train "
                    "the same recipe",
                    rank(), identity_changes(nlohmann::json::parse(identity), state.identity)));
  std::vector<torch::Tensor> tensors = adapter.parameters();
  for (const auto& m : optimizer.exp_avg()) tensors.push_back(m);
  for (const auto& v : optimizer.exp_avg_sq()) tensors.push_back(v);
  group_->broadcast(tensors);
  nlohmann::json s = train_state_counters(state, optimizer.steps());
  s["resumed"] = resumed;
  s = nlohmann::json::parse(group_->broadcast_string(s.dump()));
  if (leader()) return;
  const std::vector<torch::Tensor> m = optimizer.exp_avg(), v = optimizer.exp_avg_sq();  // rank 0's, broadcast
  optimizer.state_load(m, v, s["optimizer_steps"].get<int64_t>());
  train_state_counters_read(s, state);
  resumed = s["resumed"].get<bool>();
}

}  // namespace hearth::train
