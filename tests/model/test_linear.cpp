// model::Linear: the base product against a float64 reference computed here, the one-row (gemv) path equal
// to the batched one, LoRA applied to exactly its own slice of a fused weight (scale·B·A·x by hand), and
// the bytes a forward reads.
#include <catch2/catch.hpp>

#include <cstring>

#include <torch/torch.h>

#include "core/error.h"
#include "model/config.h"
#include "model/linear.h"
#include "model/lora.h"
#include "quant/codec.h"
#include "quant/matvec.h"
#include "tiny_config.h"

using namespace hearth;

namespace {

model::ModelConfig tiny() { return test::tiny_config(); }

// x [..., in], w [out, in], b [out] -> x·wᵀ + b in float64
torch::Tensor reference(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b) {
  auto y = torch::matmul(x.to(torch::kFloat64), w.to(torch::kFloat64).t());
  return b.defined() ? y + b.to(torch::kFloat64) : y;
}

}  // namespace

TEST_CASE("Linear computes x·Wᵀ + b on every path", "[model][linear]") {
  torch::manual_seed(1);
  auto w = torch::randn({12, 8});
  auto b = torch::randn({12});
  model::Linear with_bias(w, b), without(w, {});
  auto batch = torch::randn({3, 5, 8});
  CHECK(torch::allclose(with_bias.forward(batch).to(torch::kFloat64), reference(batch, w, b), 1e-5, 1e-5));
  CHECK(torch::allclose(without.forward(batch).to(torch::kFloat64), reference(batch, w, {}), 1e-5, 1e-5));
  // One row takes the matrix-vector path: same numbers, same shape.
  auto row = batch.narrow(0, 0, 1).narrow(1, 2, 1);  // [1, 1, 8]
  auto one = with_bias.forward(row);
  REQUIRE(one.sizes().vec() == std::vector<int64_t>{1, 1, 12});
  CHECK(torch::allclose(one.to(torch::kFloat64), reference(row, w, b), 1e-5, 1e-5));
  CHECK(with_bias.in_features() == 8);
  CHECK(with_bias.out_features() == 12);
  CHECK(with_bias.bytes() == (12 * 8 + 12) * sizeof(float));
  CHECK(without.bytes() == 12 * 8 * sizeof(float));
}

TEST_CASE("Linear's few-row float32 path: the same numbers in any batch of 1 to 16", "[model][linear]") {
  torch::manual_seed(3);
  auto w = torch::randn({40, 100});
  auto b = torch::randn({40});
  model::Linear lin(w, b);
  auto x = torch::randn({17, 100});
  auto all = lin.forward(x);  // outside inference mode: libtorch's product
  CHECK(torch::allclose(all.to(torch::kFloat64), reference(x, w, b), 1e-5, 1e-5));
  c10::InferenceMode inference;
  auto four = lin.forward(x.narrow(0, 0, 4));  // quant::matmul_f32
  CHECK(torch::allclose(four.to(torch::kFloat64), reference(x.narrow(0, 0, 4), w, b), 1e-5, 1e-5));
  CHECK(torch::allclose(lin.forward(x).to(torch::kFloat64), reference(x, w, b), 1e-5, 1e-5));  // 17 rows: sgemm
  // A row's outputs do not depend on which other rows share its batch (batched decode compositions).
  CHECK(torch::equal(lin.forward(x.narrow(0, 2, 2)), four.narrow(0, 2, 2)));
  CHECK(torch::equal(lin.forward(x.narrow(0, 1, 1)), four.narrow(0, 1, 1)));
  CHECK(torch::equal(lin.forward(x[3]), four[3]));  // one row without a batch dimension
  CHECK(torch::equal(lin.forward(x.narrow(0, 0, 12)).narrow(0, 0, 4), four));
  CHECK(torch::equal(lin.forward(x.narrow(0, 0, 16)).narrow(0, 0, 4), four));
  CHECK(torch::equal(lin.forward(x.narrow(0, 1, 15)).narrow(0, 0, 3), four.narrow(0, 1, 3)));
}

TEST_CASE("Linear's few-row bfloat16 path: float32 sums of the bfloat16 weights, the same in any batch",
          "[model][linear]") {
  torch::manual_seed(4);
  auto w = torch::randn({40, 100}).to(torch::kBFloat16);
  auto b = torch::randn({40}).to(torch::kBFloat16);
  model::Linear lin(w, b);
  auto x = torch::randn({5, 100}).to(torch::kBFloat16);
  auto want = reference(x.to(torch::kFloat32), w.to(torch::kFloat32), b.to(torch::kFloat32));
  c10::InferenceMode inference;
  auto five = lin.forward(x);  // lib/quant's BF16 row kernel, rounded to bfloat16 once
  REQUIRE(five.scalar_type() == torch::kBFloat16);
  CHECK(torch::allclose(five.to(torch::kFloat64), want, 1e-2, 1e-2));  // bfloat16's 8 bits of precision
  // Rounding the float32 sums once: within half a bfloat16 step of the float64 product.
  CHECK(((five.to(torch::kFloat64) - want).abs() <= want.abs() * (1.0 / 256) + 1e-6).all().item<bool>());
  CHECK(torch::equal(lin.forward(x.narrow(0, 3, 1)), five.narrow(0, 3, 1)));
  CHECK(torch::equal(lin.forward(x[2]), five[2]));
  CHECK(torch::equal(lin.forward(x.narrow(0, 1, 3)), five.narrow(0, 1, 3)));
}

TEST_CASE("Linear applies each adapter to its own part of a fused weight", "[model][linear][lora]") {
  auto c = tiny();  // q: 4 heads × 6 = 24 rows, k and v: 2 heads × 6 = 12 rows each, in = 24
  model::LoraConfig lc;
  lc.r = 3;
  lc.alpha = 6;
  lc.targets = {model::LoraTarget::kK};  // only k is adapted
  auto adapter = model::LoraAdapter::create(c, lc, 5);
  torch::manual_seed(2);
  for (auto& p : adapter.parameters()) p.copy_(torch::randn(p.sizes()) * 0.3);
  auto w = torch::randn({48, 24}) * 0.1;
  model::Linear qkv(w, {}, {{model::LoraTarget::kQ, 24}, {model::LoraTarget::kK, 12}, {model::LoraTarget::kV, 12}});
  auto x = torch::randn({2, 3, 24});
  std::vector<const model::LoraAdapter*> rows = {&adapter};
  auto y = qkv.forward(x, {&rows, /*layer=*/1, /*training=*/false}).to(torch::kFloat64);
  auto base = reference(x, w, {});
  const auto* pair = adapter.find(1, model::LoraTarget::kK);
  REQUIRE(pair);
  // delta = scale · (x·Aᵀ)·Bᵀ with scale = alpha / r = 2
  auto delta = torch::matmul(torch::matmul(x.to(torch::kFloat64), pair->A.to(torch::kFloat64).t()),
                             pair->B.to(torch::kFloat64).t()) *
               2.0;
  CHECK(torch::allclose(y.narrow(-1, 0, 24), base.narrow(-1, 0, 24), 1e-5, 1e-5));            // q untouched
  CHECK(torch::allclose(y.narrow(-1, 24, 12), base.narrow(-1, 24, 12) + delta, 1e-5, 1e-5));  // k adapted
  CHECK(torch::allclose(y.narrow(-1, 36, 12), base.narrow(-1, 36, 12), 1e-5, 1e-5));          // v untouched
  CHECK(delta.abs().max().item<double>() > 1e-2);  // the adapter does change k
  // Per-row adapters: a row without one gets the base output.
  std::vector<const model::LoraAdapter*> mixed = {nullptr, &adapter};
  auto ym = qkv.forward(x, {&mixed, 1, false}).to(torch::kFloat64);
  CHECK(torch::allclose(ym[0], base[0], 1e-5, 1e-5));
  CHECK(torch::allclose(ym[1], y[1], 1e-6, 1e-6));
}

TEST_CASE("Linear refuses parts that do not cover its outputs", "[model][linear]") {
  CHECK_THROWS_AS(model::Linear(torch::zeros({10, 4}), {}, {{model::LoraTarget::kQ, 6}}), Error);
  CHECK_THROWS_AS(model::Linear(torch::zeros({10}), {}), Error);
}

// Q4_0, Q8_0, Q4_K and Q6_K blocks copied into the interleaved layout (quant/interleave.h) at load (where the kernel
// variant in use reads that layout: quant::interleave_at_load): the same weights whichever way they are read — rows
// looked up, the dense matrix, the decoded product under autograd (bit for bit), the kernels' product (within the
// 8-bit activations' rounding of the float64 product) — and back in ggml's layout on a device.
TEST_CASE("a block Linear reads the same weights interleaved", "[model][linear]") {
  const auto type = GENERATE(quant::GgmlType::kQ4_0, quant::GgmlType::kQ8_0, quant::GgmlType::kQ4_K,
                             quant::GgmlType::kQ6_K);
  INFO(quant::ggml_type_name(type));
  torch::manual_seed(3);
  // Two groups of 16 rows, three rows after them; 3 blocks a row.
  const int64_t rows = 35, in = 3 * quant::ggml_type_block_size(type);
  auto w = torch::randn({rows, in}) * 0.1;
  auto bytes = std::make_shared<std::vector<uint8_t>>(quant::ggml_type_nbytes(type, rows * in));
  quant::quantize(type, w.data_ptr<float>(), bytes->data(), rows * in);
  model::Linear::Blocks plain;
  plain.type = type;
  plain.data = bytes->data();
  plain.rows = rows;
  plain.in = in;
  plain.owner = bytes;
  const auto packed = plain.copied_for_kernels();
  REQUIRE(packed.interleaved_rows == quant::interleave_at_load(type));
  REQUIRE(packed.data != plain.data);
  CHECK((std::memcmp(packed.data, plain.data, bytes->size()) != 0) == packed.interleaved_rows);
  model::Linear a({plain}, {}), b({packed}, {});
  const auto decoded = a.dense();
  CHECK(torch::equal(b.dense(), decoded));
  auto ids = torch::tensor({34, 0, 17, 15, 16}, torch::kInt64);
  CHECK(torch::equal(b.rows(ids, torch::kFloat32), a.rows(ids, torch::kFloat32)));
  for (int64_t m : {1, 5}) {
    auto x = torch::randn({m, in});
    auto want = reference(x, decoded, {});
    torch::Tensor got, rowwise;
    {
      torch::NoGradGuard no_grad;
      got = b.forward(x);
      rowwise = a.forward(x);
    }
    CHECK(torch::allclose(got, rowwise, 1e-5, 1e-5));  // the same integer sums, added in another order
    // The kernels multiply 8-bit activations (blocks of 32, or 256 for the k-quants): the float64 product with those.
    auto xq = torch::empty({m, in});
    for (int64_t i = 0; i < m; ++i) {
      quant::Activations act;
      quant::activations_prepare(type, x[i].contiguous().data_ptr<float>(), in, act);
      for (int64_t k = 0; k < in; ++k)
        xq[i][k] = act.b32.empty() ? act.b256[k / 256].d * act.b256[k / 256].q[k % 256]
                                   : act.b32[k / 32].d * act.b32[k / 32].q[k % 32];
    }
    CHECK(torch::allclose(got.to(torch::kFloat64), reference(xq, decoded, {}), 1e-4, 1e-4));
    CHECK(torch::allclose(got.to(torch::kFloat64), want, 5e-2, 5e-2));
    CHECK_FALSE(torch::allclose(got.to(torch::kFloat64), want, 1e-7, 1e-7));  // the kernels', not a float product
    auto xg = x.clone().requires_grad_(true);
    CHECK(torch::equal(b.forward(xg), a.forward(x.clone().requires_grad_(true))));
  }
  const auto host = packed.to_device(torch::kCPU);
  CHECK_FALSE(host.interleaved_rows);
  CHECK(std::memcmp(host.device_bytes.data_ptr<uint8_t>(), bytes->data(), bytes->size()) == 0);
  // Fewer rows than a group are copied as they are.
  auto few = plain;
  few.rows = 15;
  const auto few_copy = few.copied_for_kernels();
  CHECK_FALSE(few_copy.interleaved_rows);
  CHECK(few_copy.data != few.data);
  CHECK(std::memcmp(few_copy.data, few.data, 15 * few.row_bytes()) == 0);
}
