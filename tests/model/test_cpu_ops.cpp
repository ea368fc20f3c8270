// The inference loops of model/cpu_ops.cpp against libtorch's formulas (the same functions called outside
// inference mode, where they run as libtorch ops), and the KV cache's copying write against the slots it names.
#include <catch2/catch.hpp>

#include <filesystem>
#include <thread>

#include <torch/torch.h>

#include "core/error.h"
#include "model/compute_threads.h"
#include "model/cpu_ops.h"
#include "model/layers.h"
#include "model/rope.h"

using namespace hearth;
using hearth::Error;

TEST_CASE("cpu_ops: RMSNorm, RoPE and SwiGLU give libtorch's numbers, a row alone as in a batch", "[model][cpu_ops]") {
  torch::manual_seed(3);
  // rows of a prompt (3×5 tokens), with outliers; a strided view (a Qwen3 q/k head norm's input)
  auto x = torch::randn({3, 5, 96}) * torch::linspace(0.01, 40.0, 96);
  auto w = torch::randn({96});
  const auto norm_want = model::rms_norm(x, w, 1e-6);
  const auto heads = torch::randn({2, 4, 3 * 32}).narrow(-1, 32, 64).view({2, 4, 2, 32});
  const auto heads_want = model::rms_norm(heads, w.narrow(0, 0, 32), 1e-5);

  // x [B, H, T, hd] as self_attention hands it over: a transposed view of the fused projection
  auto qkv = torch::randn({2, 7, 3 * 64});
  auto q = qkv.narrow(-1, 0, 4 * 16).view({2, 7, 4, 16}).transpose(1, 2);
  auto [cos, sin] = model::rope_cos_sin(torch::rand({8}), torch::randint(0, 4000, {2, 7}), torch::kFloat32);
  const auto rope_want = model::rope_apply(q, cos, sin);

  auto gate_up = torch::randn({4, 1, 2 * 80}) * 6;
  const auto swiglu_want = torch::silu(gate_up.narrow(-1, 0, 80)) * gate_up.narrow(-1, 80, 80);

  REQUIRE_FALSE(model::cpu_ops_apply({&x, &w}));  // outside inference mode: libtorch's ops (autograd)
  c10::InferenceMode inference;
  REQUIRE(model::cpu_ops_apply({&x, &w}));
  const auto x16 = x.to(torch::kBFloat16);
  REQUIRE_FALSE(model::cpu_ops_apply({&x16, &w}));

  const auto norm = model::rms_norm(x, w, 1e-6);  // takes rms_norm_rows
  CHECK(torch::equal(norm, model::rms_norm_rows(x, w, 1e-6)));
  CHECK(torch::allclose(norm, norm_want, 1e-6, 1e-6));
  CHECK(torch::allclose(model::rms_norm(heads, w.narrow(0, 0, 32), 1e-5), heads_want, 1e-6, 1e-6));
  CHECK(torch::equal(model::rms_norm_rows(x[1].narrow(0, 2, 1), w, 1e-6), norm[1].narrow(0, 2, 1)));

  const auto rope = model::rope_apply(q, cos, sin);
  CHECK(torch::equal(rope, model::rope_rows(q, cos, sin)));
  CHECK(torch::equal(rope, rope_want));  // the same three roundings per element
  CHECK(rope.is_contiguous());

  const auto act = model::swiglu_rows(gate_up);
  REQUIRE(act.sizes() == swiglu_want.sizes());
  CHECK(torch::allclose(act, swiglu_want, 1e-5, 1e-6));
  CHECK(torch::equal(model::swiglu_rows(gate_up.narrow(0, 3, 1)), act.narrow(0, 3, 1)));
  // silu's limits: -inf·0 is not taken for large negative gates
  auto extreme = torch::tensor({-200.0f, 200.0f, 0.0f, 3.0f, 3.0f, -2.0f}).view({1, 6});
  CHECK(torch::allclose(model::swiglu_rows(extreme), torch::tensor({-0.0f, 600.0f, 0.0f}).view({1, 3})));
  // a 16-stream decode step of the 135M shape (16 rows of 2·1536): rows shared between threads where there are two
  const int threads = at::get_num_threads();
  at::set_num_threads(2);
  const auto step = torch::randn({16, 1, 2 * 1536}) * 4;
  const auto step_act = model::swiglu_rows(step);
  at::set_num_threads(threads);
  CHECK(torch::allclose(step_act, torch::silu(step.narrow(-1, 0, 1536)) * step.narrow(-1, 1536, 1536), 1e-5, 1e-6));
  for (int64_t r : {0, 7, 15}) CHECK(torch::equal(model::swiglu_rows(step.narrow(0, r, 1)), step_act.narrow(0, r, 1)));
}

TEST_CASE("KvCache::write puts each (row, head, token) at its slot of the named cache rows", "[model][kv_cache]") {
  c10::InferenceMode inference;
  model::ModelConfig c;
  c.num_hidden_layers = 2;
  c.num_key_value_heads = 2;
  c.head_dim = 8;
  model::KvCache cache(c, 4, 6, torch::TensorOptions().dtype(torch::kFloat32));
  // rows 3 and 1 of the pool, two tokens each; v a strided view (as self_attention's transposed projection)
  const std::vector<int64_t> rows = {3, 1};
  auto slots = cache.append(torch::ones({2, 2}, torch::kBool), rows);
  cache.append(torch::ones({1, 2}, torch::kBool), {3});  // row 3 moves on; the next write lands after it
  auto slots2 = cache.append(torch::ones({2, 1}, torch::kBool), rows);
  auto k = torch::randn({2, 2, 2, 8});
  auto v = torch::randn({2, 2, 2, 16}).narrow(-1, 4, 8);
  cache.write(1, slots, k, v, rows);
  auto k2 = torch::randn({2, 2, 1, 8}), v2 = torch::randn({2, 2, 1, 8});
  cache.write(1, slots2, k2, v2, rows);
  auto [keys, values] = cache.read(1, 6, 2, rows);  // [2, KV, 6, hd]
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t t = 0; t < 2; ++t) {
      CHECK(torch::equal(keys[b].select(1, slots[b][t].item<int64_t>()), k[b].select(1, t)));
      CHECK(torch::equal(values[b].select(1, slots[b][t].item<int64_t>()), v[b].select(1, t)));
    }
  CHECK(slots2[0][0].item<int64_t>() == 4);  // row 3: 2 + 2 slots before
  CHECK(slots2[1][0].item<int64_t>() == 2);
  for (int64_t b = 0; b < 2; ++b) {
    CHECK(torch::equal(keys[b].select(1, slots2[b][0].item<int64_t>()), k2[b].select(1, 0)));
    CHECK(torch::equal(values[b].select(1, slots2[b][0].item<int64_t>()), v2[b].select(1, 0)));
  }
  // a slot outside the capacity, a row outside the cache, a shape that is not the cache's: errors, nothing written
  const auto before = cache.read(1, 6, 4).first.clone();
  CHECK_THROWS_AS(cache.write(1, torch::tensor({{6}, {0}}), k2, v2, rows), Error);
  CHECK_THROWS_AS(cache.write(1, torch::tensor({{-1}, {0}}), k2, v2, rows), Error);
  CHECK_THROWS_AS(cache.write(1, slots2, k2, v2, {3, 4}), Error);
  CHECK_THROWS_AS(cache.write(1, slots2, k2.narrow(-1, 0, 4), v2.narrow(-1, 0, 4), rows), Error);
  CHECK(torch::equal(cache.read(1, 6, 4).first, before));
  // layer 0 and rows 0 and 2 untouched
  auto [k0, v0] = cache.read(0, 6, 4);
  CHECK(k0.abs().sum().item<float>() == 0.0f);
  auto [k1, v1] = cache.read(1, 6, 4);
  CHECK(k1[0].abs().sum().item<float>() == 0.0f);
  CHECK(k1[2].abs().sum().item<float>() == 0.0f);
}

// Threads of this process (/proc/self/task).
static int process_threads() {
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/task")) n += e.is_directory() ? 1 : 0;
  return n;
}

TEST_CASE("compute_serially_on_this_thread ends the thread's worker pool and starts no other", "[model][cpu_ops]") {
  const int before = at::get_num_threads();
  at::set_num_threads(2);
  int pooled = 0, serial = 0, after = 0;
  torch::Tensor got, want;
  std::thread([&] {
    at::get_num_threads();
    auto a = torch::zeros({int64_t(1) << 22});  // a parallel fill: this thread's pool gets a worker
    pooled = process_threads();
    model::compute_serially_on_this_thread();
    serial = process_threads();
    c10::InferenceMode inference;
    auto gate_up = torch::randn({64, 2 * 4096});  // 256 Ki gates: shared between threads anywhere else
    got = model::swiglu_rows(gate_up);
    a = torch::ones({int64_t(1) << 22}) + a;
    after = process_threads();
    want = torch::silu(gate_up.narrow(-1, 0, 4096)) * gate_up.narrow(-1, 4096, 4096);
  }).join();
  at::set_num_threads(before);
  CHECK(serial < pooled);  // the worker has exited
  CHECK(after == serial);  // neither libtorch's loops nor hearth's started one again
  CHECK(torch::allclose(got, want, 1e-6, 1e-6));
}
