// Linear's products with block weights: lib/quant's kernels while decoding, and decoded chunks under autograd or on
// a GPU — the QLoRA path, with the autograd function whose backward computes dX = dY·W from the blocks.
//
// Why decoded chunks and BLAS rather than the block kernels for training: the kernels read each weight row once
// per activation row, as a matrix-vector product does; at a training micro-batch (hundreds of rows) they are 2.5-3×
// slower than float32 sgemm on the 1B shape, while decoding a 64 MiB chunk costs ~1-5 ms against ~80 ms for its
// product (bench/README.md, bench_finetune). Backward needs W, not Wᵀ, row by row: the same chunks serve dX = dY·W
// with no transposed kernel. The forward of a training step is then the float product of the decoded weight, so its
// gradient is exact; decoding (no autograd) keeps the 8-bit-activation kernels, which win below ~16 rows.
#include <algorithm>
#include <cstring>
#include <optional>

#include <fmt/format.h>
#include <torch/csrc/autograd/custom_function.h>

#include "core/error.h"
#include "io/huge_pages.h"
#include "io/mapped_file.h"
#include "model/block_decode.h"
#include "model/linear.h"
#include "model/parallel_rows.h"
#include "quant/codec.h"
#include "quant/matvec.h"

namespace hearth::model {
namespace {

// Elements of one decoded chunk: 16 Mi floats (64 MiB).
constexpr int64_t kChunkElements = int64_t(1) << 24;

// The calling thread's decode buffer (CPU), kept from call to call: no 64 MiB allocation per layer.
torch::Tensor* cpu_scratch() {
  thread_local torch::Tensor scratch;
  return &scratch;
}

int64_t chunk_rows(const Linear& w) {
  return std::clamp<int64_t>(kChunkElements / w.in_features(), 1, w.out_features());
}

// x [M, in] -> x·Wᵀ [M, out], W decoded a chunk of rows at a time. On the CPU x is float32 and the chunks are
// decoded into a buffer the calling thread keeps; on a device they are decoded in x's dtype and dropped.
torch::Tensor decoded_product(const torch::Tensor& x, const Linear& w) {
  const bool cpu = x.device().is_cpu();
  const int64_t out = w.out_features(), n = chunk_rows(w);
  std::vector<torch::Tensor> pieces;
  for (int64_t r0 = 0; r0 < out; r0 += n) {
    auto chunk = w.decoded_rows(r0, std::min(n, out - r0), cpu ? cpu_scratch() : nullptr).to(x.scalar_type());
    pieces.push_back(torch::mm(x, chunk.t()));  // [M, rows of the chunk]
  }
  return pieces.size() == 1 ? pieces[0] : torch::cat(pieces, 1);
}

// dy [M, out] -> dx = dy·W [M, in], accumulated in float32 over the chunks.
torch::Tensor decoded_input_grad(const torch::Tensor& dy, const Linear& w) {
  const bool cpu = dy.device().is_cpu();
  const int64_t out = w.out_features(), n = chunk_rows(w);
  auto dx = torch::zeros({dy.size(0), w.in_features()}, dy.options().dtype(torch::kFloat32));
  for (int64_t r0 = 0; r0 < out; r0 += n) {
    const int64_t rows = std::min(n, out - r0);
    auto chunk = w.decoded_rows(r0, rows, cpu ? cpu_scratch() : nullptr);
    if (dy.scalar_type() == torch::kFloat32) dx.addmm_(dy.narrow(1, r0, rows), chunk);
    else dx.add_(torch::mm(dy.narrow(1, r0, rows), chunk.to(dy.scalar_type())));
  }
  return dx.to(dy.scalar_type());
}

// y = x·Wᵀ for block weights, differentiable in x only. The Linear is held by address (the model outlives its
// graphs); nothing else is saved for backward — dX needs W, which the blocks hold, not x.
class BlockProduct : public torch::autograd::Function<BlockProduct> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x, const Linear* w) {
    ctx->saved_data["linear"] = static_cast<int64_t>(reinterpret_cast<intptr_t>(w));
    return decoded_product(x, *w);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto* w = reinterpret_cast<const Linear*>(static_cast<intptr_t>(ctx->saved_data["linear"].toInt()));
    return {decoded_input_grad(grads[0].contiguous(), *w), torch::Tensor()};
  }
};

thread_local int g_decoded_guards = 0;

// Rows per task of a product over rows of `row_bytes` weight bytes each, times m activation rows: at least 512 KiB
// of weight bytes × activation rows. A parallel region costs a wake-up and a barrier, and where the cores are busy
// with other threads too (serve's connection threads and its clients on the same machine) the barrier waits for a
// worker the kernel has not scheduled yet; so a 135M model's decode step (matrices of 186–995 KiB in q4_0) keeps its
// small matrices on the calling thread. Measured on 2 cores, bench_serve on the 135M shape, q4_0, --threads 2:
// 1 stream 89 -> 147 tok/s, 4 and 16 streams unchanged (tasks of 256 KiB: 119; 1 MiB: 16 streams 330 -> 288);
// `generate` on the 1B shape unchanged.
int64_t rows_per_task(int64_t row_bytes, int64_t m) {
  constexpr int64_t kMinTaskWork = int64_t(512) << 10;
  return std::max<int64_t>(1, kMinTaskWork / std::max<int64_t>(1, row_bytes * m));
}

}  // namespace

DecodedBlocksGuard::DecodedBlocksGuard() { ++g_decoded_guards; }
DecodedBlocksGuard::~DecodedBlocksGuard() { --g_decoded_guards; }

Linear::Blocks Linear::Blocks::to_device(torch::Device device) const {
  if (!blocks_decodable(type))
    throw Error(fmt::format("Linear: {} blocks cannot be decoded on {}; expected Q8_0, Q4_0, Q4_K or Q6_K",
                            quant::ggml_type_name(type), device.str()));
  Blocks b = *this;
  const auto shape = std::vector<int64_t>{rows, static_cast<int64_t>(row_bytes())};
  auto host = device_bytes.defined() ? device_bytes
                                     : torch::from_blob(const_cast<uint8_t*>(data), shape, torch::kUInt8);
  if (interleaved_rows) {  // back to ggml's layout, the one blocks_decode reads
    host = torch::empty(shape, torch::kUInt8);
    quant::deinterleave_rows(type, data, host.data_ptr<uint8_t>(), rows, in, 0, rows);
  }
  b.device_bytes = host.to(device);
  if (b.device_bytes.data_ptr() == host.data_ptr() && !interleaved_rows)
    b.device_bytes = host.clone();  // never a view of a mapping
  b.data = nullptr;
  b.owner = nullptr;
  b.interleaved_rows = false;
  b.kernel_copy = false;
  return b;
}

Linear::Blocks Linear::Blocks::quantized(const torch::Tensor& w, quant::GgmlType type) {
  const int64_t rows = w.size(0), in = w.size(1);
  const auto row_bytes = static_cast<int64_t>(quant::ggml_type_nbytes(type, in));
  auto bytes = std::make_shared<torch::Tensor>(torch::empty({rows, row_bytes}, torch::kUInt8));
  uint8_t* dst = bytes->data_ptr<uint8_t>();
  const int64_t chunk = std::max<int64_t>(1, (int64_t(1) << 22) / in);
  for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
    const int64_t n = std::min(chunk, rows - r0);
    auto f = w.narrow(0, r0, n).to(torch::kFloat32).contiguous();
    const float* src = f.data_ptr<float>();
    parallel_rows(0, n, 1, [&](int64_t a, int64_t e) {
      quant::quantize(type, src + a * in, dst + (r0 + a) * row_bytes, (e - a) * in);
    });
  }
  Blocks b;
  b.type = type;
  b.rows = rows;
  b.in = in;
  b.data = bytes->data_ptr<uint8_t>();
  b.owner = std::move(bytes);
  return b;
}

Linear::Blocks Linear::Blocks::copied_for_kernels() const {
  if (!data || kernel_copy || interleaved_rows) return *this;
  const size_t bytes = row_bytes() * static_cast<size_t>(rows);
  std::shared_ptr<uint8_t> copy = io::huge_page_buffer(bytes);
  uint8_t* dst = copy.get();
  const bool interleave = quant::interleave_at_load(type) && rows >= quant::kGroupRows;
  const int64_t groups = (rows + quant::kGroupRows - 1) / quant::kGroupRows;
  parallel_rows(0, groups, 64, [&](int64_t g0, int64_t g1) {
    const int64_t r0 = g0 * quant::kGroupRows, r1 = std::min(rows, g1 * quant::kGroupRows);
    if (interleave) quant::interleave_rows(type, data, dst, rows, in, r0, r1);
    else std::memcpy(dst + r0 * row_bytes(), data + r0 * row_bytes(), (r1 - r0) * row_bytes());
  });
  io::mapped_release(data, bytes);  // read once, into the copy: not resident twice
  Blocks b = *this;
  b.data = dst;
  b.owner = std::move(copy);
  b.interleaved_rows = interleave;
  b.kernel_copy = true;
  return b;
}

void Linear::Blocks::decode_rows(int64_t r0, int64_t r1, float* dst) const {
  if (interleaved_rows) return quant::dequantize_interleaved(type, data, rows, in, r0, r1, dst);
  if (quant::ggml_type_is_half(type))  // the same floats, vector conversions
    return quant::widen(type, data + static_cast<size_t>(r0) * row_bytes(), dst, (r1 - r0) * in);
  quant::dequantize(type, data + static_cast<size_t>(r0) * row_bytes(), dst, (r1 - r0) * in);
}

torch::Device Linear::device() const {
  if (blocks_.empty()) return weight_.device();
  return blocks_[0].device_bytes.defined() ? blocks_[0].device_bytes.device() : torch::Device(torch::kCPU);
}

torch::Tensor Linear::decoded_rows(int64_t r0, int64_t n, torch::Tensor* scratch) const {
  if (r0 < 0 || n < 0 || r0 + n > out_)
    throw Error(fmt::format("Linear: rows [{}, {}) of a {}-row weight", r0, r0 + n, out_));
  if (blocks_.empty()) return weight_.narrow(0, r0, n).to(torch::kFloat32);
  if (blocks_[0].device_bytes.defined()) {
    std::vector<torch::Tensor> pieces;
    int64_t offset = 0;
    for (const Blocks& b : blocks_) {
      const int64_t lo = std::max(r0, offset), hi = std::min(r0 + n, offset + b.rows);
      if (lo < hi) pieces.push_back(blocks_decode(b.type, b.device_bytes.narrow(0, lo - offset, hi - lo), in_));
      offset += b.rows;
    }
    return pieces.size() == 1 ? pieces[0] : torch::cat(pieces, 0);
  }
  torch::Tensor out;
  if (scratch) {
    if (!scratch->defined() || scratch->numel() < n * in_) *scratch = torch::empty({n * in_}, torch::kFloat32);
    out = scratch->narrow(0, 0, n * in_).view({n, in_});
  } else {
    out = torch::empty({n, in_}, torch::kFloat32);
  }
  float* dst = out.data_ptr<float>();
  int64_t offset = 0;
  for (const Blocks& b : blocks_) {
    const int64_t lo = std::max(r0, offset), hi = std::min(r0 + n, offset + b.rows);
    if (lo < hi) {
      // Tasks of ≥ 1 Mi elements: smaller matrices decode on this thread (a parallel region costs more than they do
      // when the cores are busy).
      parallel_rows(lo, hi, std::max<int64_t>(1, (int64_t(1) << 20) / in_),
                    [&](int64_t a, int64_t e) { b.decode_rows(a - offset, e - offset, dst + (a - r0) * in_); });
    }
    offset += b.rows;
  }
  return out;
}

// Under autograd (training, and a checkpointed layer's forward), or with the blocks on a device: decoded chunks.
// Otherwise (decoding, prefill without gradients) the block kernels, as before QLoRA — except for F16/BF16 rows
// times more rows than matmul_f32 takes: a prompt's product decoded in chunks goes through sgemm, which multiplies
// many rows faster than reading each weight row once per 4 activation rows does.
torch::Tensor Linear::base_blocks(const torch::Tensor& x) const {
  if (x.device() != device())
    throw Error(fmt::format("Linear: input on {}, block weights on {}", x.device().str(), device().str()));
  if (blocks_[0].device_bytes.defined() || torch::GradMode::is_enabled() || g_decoded_guards > 0)
    return base_decoded(x);
  const bool half = std::any_of(blocks_.begin(), blocks_.end(),
                                [](const Blocks& b) { return quant::ggml_type_is_half(b.type); });
  if (half && x.numel() / in_ > quant::matmul_f32_max_rows()) return base_decoded(x);
  return base_block_kernels(x);
}

torch::Tensor Linear::base_decoded(const torch::Tensor& x) const {
  const int64_t M = x.numel() / in_;
  // The CPU multiplies in float32 (libtorch 1.13 has no fast bfloat16 sgemm); a GPU in the compute dtype.
  auto x2 = x.reshape({M, in_});
  if (x.device().is_cpu()) x2 = x2.to(torch::kFloat32);
  auto y = BlockProduct::apply(x2.contiguous(), this);
  if (bias_.defined()) y = y + bias_.to(y.scalar_type());
  auto shape = x.sizes().vec();
  shape.back() = out_;
  return y.view(shape).to(x.scalar_type());
}

torch::Tensor Linear::base_small_batch(const torch::Tensor& x) const {
  const int64_t M = x.numel() / in_;
  auto xf = x.reshape({M, in_}).to(torch::kFloat32).contiguous();
  auto w = weight_.contiguous();
  auto y = torch::empty({M, out_}, torch::kFloat32);
  const float* xp = xf.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  if (w.scalar_type() == torch::kBFloat16) {
    thread_local std::vector<quant::Activations> scratch;  // as in base_block_kernels: the workers get a pointer
    if (scratch.size() < static_cast<size_t>(M)) scratch.resize(static_cast<size_t>(M));
    quant::Activations* acts = scratch.data();
    for (int64_t i = 0; i < M; ++i) quant::activations_prepare(quant::GgmlType::kBF16, xp + i * in_, in_, acts[i]);
    const auto* wp = static_cast<const uint8_t*>(w.data_ptr());
    const size_t row_bytes = static_cast<size_t>(in_) * 2;
    parallel_rows(0, out_, rows_per_task(static_cast<int64_t>(row_bytes), M), [&](int64_t r0, int64_t r1) {
      quant::matmul_rows(quant::GgmlType::kBF16, wp, row_bytes, acts, M, yp + r0, out_, r0, r1);
    });
  } else {
    const float* wp = w.data_ptr<float>();
    parallel_rows(0, out_, rows_per_task(in_ * static_cast<int64_t>(sizeof(float)), M),
                  [&](int64_t r0, int64_t r1) { quant::matmul_f32(wp, in_, xp, M, yp + r0, out_, r0, r1); });
  }
  if (bias_.defined()) y = y + bias_.to(torch::kFloat32);
  auto shape = x.sizes().vec();
  shape.back() = out_;
  return y.view(shape).to(x.scalar_type());
}

// The M rows of x quantized to 8-bit blocks once per part type, then each weight row read once for all M rows
// (quant::matmul_rows), output rows split across the intra-op threads in tasks of rows_per_task rows.
torch::Tensor Linear::base_block_kernels(const torch::Tensor& x) const {
  const int64_t M = x.numel() / in_;
  auto xf = x.reshape({M, in_}).to(torch::kFloat32).contiguous();
  auto y = torch::empty({M, out_}, torch::kFloat32);
  float* yp = y.data_ptr<float>();
  // The calling thread's activation buffers, reused from call to call (no allocation per token). The
  // workers below get a pointer: naming a thread_local inside the lambda would find their own, empty one.
  thread_local std::vector<quant::Activations> scratch;
  if (scratch.size() < static_cast<size_t>(M)) scratch.resize(static_cast<size_t>(M));
  quant::Activations* acts = scratch.data();
  const float* xp = xf.data_ptr<float>();
  std::optional<quant::GgmlType> prepared;  // parts of one type share their activations
  int64_t offset = 0;
  for (const Blocks& b : blocks_) {
    if (prepared != b.type) {
      // A prompt's rows on all threads (a decode step's one row, or a few, on this one).
      parallel_rows(0, M, std::max<int64_t>(1, (int64_t(1) << 15) / in_), [&](int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; ++i) quant::activations_prepare(b.type, xp + i * in_, in_, acts[i]);
      });
      prepared = b.type;
    }
    const int64_t task_rows = rows_per_task(static_cast<int64_t>(b.row_bytes()), M);
    if (b.interleaved_rows) {  // whole groups of rows per thread
      const int64_t groups = (b.rows + quant::kGroupRows - 1) / quant::kGroupRows;
      parallel_rows(0, groups, std::max<int64_t>(1, task_rows / quant::kGroupRows), [&](int64_t g0, int64_t g1) {
        const int64_t r0 = g0 * quant::kGroupRows, r1 = std::min(b.rows, g1 * quant::kGroupRows);
        quant::matmul_interleaved(b.type, b.data, b.rows, acts, M, yp + offset + r0, out_, r0, r1);
      });
    } else {
      const size_t row_bytes = b.row_bytes();
      parallel_rows(0, b.rows, std::max<int64_t>(16, task_rows), [&](int64_t r0, int64_t r1) {
        quant::matmul_rows(b.type, b.data, row_bytes, acts, M, yp + offset + r0, out_, r0, r1);
      });
    }
    offset += b.rows;
  }
  if (bias_.defined()) y = y + bias_.to(torch::kFloat32);
  auto shape = x.sizes().vec();
  shape.back() = out_;
  return y.view(shape).to(x.scalar_type());
}

}  // namespace hearth::model
