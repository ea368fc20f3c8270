#include "model/linear.h"

#include <optional>

#include <ATen/Parallel.h>
#include <fmt/format.h>

#include "core/error.h"
#include "quant/codec.h"
#include "quant/matvec.h"

namespace hearth::model {
namespace {

void check_parts(const std::vector<Linear::Part>& parts, int64_t out) {
  int64_t total = 0;
  for (const auto& p : parts) total += p.size;
  if (!parts.empty() && total != out)
    throw Error(fmt::format("Linear: parts add up to {} outputs; the weight has {}", total, out));
}

}  // namespace

size_t Linear::Blocks::row_bytes() const { return quant::ggml_type_nbytes(type, in); }

Linear::Linear(torch::Tensor weight, torch::Tensor bias, std::vector<Part> parts)
    : weight_(std::move(weight)), bias_(std::move(bias)), parts_(std::move(parts)) {
  if (weight_.dim() != 2) throw Error(fmt::format("Linear: weight must be 2-D, got {}-D", weight_.dim()));
  out_ = weight_.size(0);
  in_ = weight_.size(1);
  check_parts(parts_, out_);
}

Linear::Linear(std::vector<Blocks> blocks, torch::Tensor bias, std::vector<Part> parts)
    : bias_(std::move(bias)), blocks_(std::move(blocks)), parts_(std::move(parts)) {
  if (blocks_.empty()) throw Error("Linear: no block weights");
  if (!parts_.empty() && parts_.size() != blocks_.size())
    throw Error(fmt::format("Linear: {} block weights for {} parts", blocks_.size(), parts_.size()));
  in_ = blocks_[0].in;
  for (size_t i = 0; i < blocks_.size(); ++i) {
    const Blocks& b = blocks_[i];
    if (b.in != in_ || !b.data || b.rows <= 0 || (!parts_.empty() && parts_[i].size != b.rows))
      throw Error(fmt::format("Linear: block weight {} is [{}, {}]; expected {} rows of {}", i, b.rows, b.in,
                              parts_.empty() ? b.rows : parts_[i].size, in_));
    out_ += b.rows;
  }
  check_parts(parts_, out_);
}

// y = x·Wᵀ + b. A single row (decoding one sequence) goes through matrix-vector BLAS: OpenBLAS's sgemm path
// for one row reads the weights 2-3× slower than its sgemv (bench/README.md).
torch::Tensor Linear::base(const torch::Tensor& x) const {
  if (!blocks_.empty()) return base_blocks(x);
  const int64_t in = x.size(-1);
  if (x.numel() != in || !x.device().is_cpu()) return torch::linear(x, weight_, bias_);
  auto y = torch::mv(weight_, x.reshape({in}));
  if (bias_.defined()) y = y + bias_;
  auto shape = x.sizes().vec();
  shape.back() = weight_.size(0);
  return y.view(shape);
}

// Block weights: the M rows of x quantized to 8-bit blocks once per part type, then each weight row read once
// for all M rows (quant::matmul_rows), output rows split across the intra-op threads.
torch::Tensor Linear::base_blocks(const torch::Tensor& x) const {
  if (!x.device().is_cpu())
    throw Error("Linear: block-quantized weights run on the CPU only; load the model with --device cpu");
  if (torch::GradMode::is_enabled() && x.requires_grad())
    throw Error("Linear: gradients through block-quantized base weights (QLoRA) are not supported yet");
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
      for (int64_t i = 0; i < M; ++i) quant::activations_prepare(b.type, xp + i * in_, in_, acts[i]);
      prepared = b.type;
    }
    const size_t row_bytes = b.row_bytes();
    at::parallel_for(0, b.rows, 16, [&](int64_t r0, int64_t r1) {
      quant::matmul_rows(b.type, b.data, row_bytes, acts, M, yp + offset + r0, out_, r0, r1);
    });
    offset += b.rows;
  }
  if (bias_.defined()) y = y + bias_.to(torch::kFloat32);
  auto shape = x.sizes().vec();
  shape.back() = out_;
  return y.view(shape).to(x.scalar_type());
}

torch::Tensor Linear::forward(const torch::Tensor& x, const LoraCall& lora) const {
  auto y = base(x);
  if (!lora.adapters || lora.adapters->empty() || parts_.empty()) return y;
  // Each part gets its own adapter delta; untouched parts are reused as they are.
  std::vector<torch::Tensor> pieces;
  bool any = false;
  int64_t offset = 0;
  for (const auto& p : parts_) {
    auto slice = parts_.size() == 1 ? y : y.narrow(-1, offset, p.size);
    auto delta = lora_delta(x, *lora.adapters, lora.layer, p.target, lora.training);
    any = any || delta.defined();
    pieces.push_back(delta.defined() ? slice + delta : slice);
    offset += p.size;
  }
  if (!any) return y;
  return pieces.size() == 1 ? pieces[0] : torch::cat(pieces, -1);
}

size_t Linear::bytes() const {
  size_t n = bias_.defined() ? bias_.nbytes() : 0;
  if (blocks_.empty()) return n + weight_.nbytes();
  for (const Blocks& b : blocks_) n += b.row_bytes() * static_cast<size_t>(b.rows);
  return n;
}

torch::Tensor Linear::rows(const torch::Tensor& ids, torch::ScalarType dtype) const {
  if (blocks_.empty()) return torch::embedding(weight_, ids).to(dtype);
  auto flat = ids.reshape({-1}).to(torch::kCPU).contiguous();
  auto out = torch::empty({flat.numel(), in_}, torch::kFloat32);
  const int64_t* id = flat.data_ptr<int64_t>();
  for (int64_t i = 0; i < flat.numel(); ++i) {
    int64_t r = id[i], offset = 0;
    if (r < 0 || r >= out_) throw Error(fmt::format("Linear: row {} of a {}-row weight", r, out_));
    for (const Blocks& b : blocks_) {  // the part holding row r
      if (r < offset + b.rows) {
        quant::dequantize(b.type, b.data + static_cast<size_t>(r - offset) * b.row_bytes(), out[i].data_ptr<float>(),
                          in_);
        break;
      }
      offset += b.rows;
    }
  }
  auto shape = ids.sizes().vec();
  shape.push_back(in_);
  return out.view(shape).to(dtype);
}

torch::Tensor Linear::dense() const {
  if (blocks_.empty()) return weight_.to(torch::kFloat32);
  auto w = torch::empty({out_, in_}, torch::kFloat32);
  int64_t offset = 0;
  for (const Blocks& b : blocks_) {
    quant::dequantize(b.type, b.data, w[offset].data_ptr<float>(), b.rows * in_);
    offset += b.rows;
  }
  return w;
}

std::vector<std::string> Linear::storage_types() const {
  if (blocks_.empty()) return {std::string(c10::toString(weight_.scalar_type()))};
  std::vector<std::string> out;
  for (const Blocks& b : blocks_) out.emplace_back(quant::ggml_type_name(b.type));
  return out;
}

}  // namespace hearth::model
