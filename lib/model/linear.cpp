#include "model/linear.h"

#include <algorithm>

#include <fmt/format.h>

#include "core/error.h"
#include "io/mapped_file.h"
#include "model/block_decode.h"
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
    const bool stored = b.device_bytes.defined() ? b.device_bytes.dim() == 2 && b.device_bytes.size(0) == b.rows &&
                                                       b.device_bytes.size(1) == static_cast<int64_t>(b.row_bytes())
                                                 : b.data != nullptr;
    if (b.in != in_ || !stored || b.rows <= 0 || (!parts_.empty() && parts_[i].size != b.rows))
      throw Error(fmt::format("Linear: block weight {} is [{}, {}]; expected {} rows of {}", i, b.rows, b.in,
                              parts_.empty() ? b.rows : parts_[i].size, in_));
    out_ += b.rows;
    if (b.device_bytes.defined() != blocks_[0].device_bytes.defined())
      throw Error("Linear: block weights split between host memory and a device");
  }
  check_parts(parts_, out_);
}

// y = x·Wᵀ + b. In inference mode (generation and serving), 1 to 16 rows (12 without AVX-512:
// quant::matmul_f32_max_rows) of a float32 weight — a decode step — go through quant::matmul_f32, which reads each
// weight row once for all of them and gives each row the same sums whatever rows share its step. OpenBLAS's sgemm
// first copies the weights into its packed layout (a serve decode step on the 135M shape, 2 threads: 4 rows 84 -> 30
// ms, 8 rows 92 -> 50, 12 rows 132 -> 66; 16 rows 90 -> 82 with AVX-512's 4×4 tiles), and one row reads at the
// same speed as sgemv on 2 threads and faster on 1 (135M `generate`: 31.2 -> 37.9 tok/s). Training, its evaluation
// and a checkpointed layer's two passes keep libtorch's product, so that they agree bit for bit; a single row there
// goes through sgemv (torch::mv), whose one-row sgemm path reads the weights 2-3× slower (bench/README.md). A
// bfloat16 weight's few rows go through lib/quant's BF16 row kernel in float32 (libtorch 1.13 has no fast bfloat16
// product on the CPU), the result rounded to bfloat16 once.
torch::Tensor Linear::base(const torch::Tensor& x) const {
  if (!blocks_.empty()) return base_blocks(x);
  const int64_t in = x.size(-1), M = x.numel() / std::max<int64_t>(in, 1);
  const bool f32 = x.scalar_type() == torch::kFloat32 && weight_.scalar_type() == torch::kFloat32;
  if (M >= 1 && M <= quant::matmul_f32_max_rows() && c10::InferenceMode::is_enabled() && x.device().is_cpu() &&
      (f32 || weight_.scalar_type() == torch::kBFloat16))
    return base_small_batch(x);
  if (x.numel() != in || !x.device().is_cpu()) return torch::linear(x, weight_, bias_);
  auto y = torch::mv(weight_, x.reshape({in}));
  if (bias_.defined()) y = y + bias_;
  auto shape = x.sizes().vec();
  shape.back() = weight_.size(0);
  return y.view(shape);
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

void Linear::mapped_populate() const {
  if (blocks_.empty()) {
    if (weight_.defined() && weight_.device().is_cpu()) io::mapped_populate(weight_.data_ptr(), weight_.nbytes());
    return;
  }
  for (const Blocks& b : blocks_)
    if (b.data) io::mapped_populate(b.data, b.row_bytes() * static_cast<size_t>(b.rows));
}

torch::Tensor Linear::rows(const torch::Tensor& ids, torch::ScalarType dtype) const {
  if (blocks_.empty()) return torch::embedding(weight_, ids).to(dtype);
  if (blocks_[0].device_bytes.defined()) {  // an embedding on a GPU: decode the rows looked up
    if (blocks_.size() != 1) throw Error("Linear: row lookup in fused block weights on a device");
    const Blocks& b = blocks_[0];
    auto flat = ids.reshape({-1}).to(b.device_bytes.device());
    if (flat.numel() > 0 && (flat.min().item<int64_t>() < 0 || flat.max().item<int64_t>() >= out_))
      throw Error(fmt::format("Linear: a row id outside [0, {})", out_));
    auto shape = ids.sizes().vec();
    shape.push_back(in_);
    return blocks_decode(b.type, b.device_bytes.index_select(0, flat), in_).view(shape).to(dtype);
  }
  auto flat = ids.reshape({-1}).to(torch::kCPU).contiguous();
  auto out = torch::empty({flat.numel(), in_}, torch::kFloat32);
  const int64_t* id = flat.data_ptr<int64_t>();
  for (int64_t i = 0; i < flat.numel(); ++i) {
    int64_t r = id[i], offset = 0;
    if (r < 0 || r >= out_) throw Error(fmt::format("Linear: row {} of a {}-row weight", r, out_));
    for (const Blocks& b : blocks_) {  // the part holding row r
      if (r < offset + b.rows) {
        b.decode_rows(r - offset, r - offset + 1, out[i].data_ptr<float>());
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
  if (blocks_[0].device_bytes.defined()) return decoded_rows(0, out_).to(torch::kCPU);
  auto w = torch::empty({out_, in_}, torch::kFloat32);
  int64_t offset = 0;
  for (const Blocks& b : blocks_) {
    b.decode_rows(0, b.rows, w[offset].data_ptr<float>());
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
