#include "model/kv_cache.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <sstream>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/error.h"

namespace hearth::model {

KvCache::KvCache(const ModelConfig& c, int64_t batch, int64_t capacity, const torch::TensorOptions& options)
    : batch_(batch), capacity_(capacity), lengths_(batch, 0) {
  try {
    for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
      k_.push_back(torch::zeros({batch, c.num_key_value_heads, capacity, c.head_dim}, options));
      v_.push_back(torch::zeros({batch, c.num_key_value_heads, capacity, c.head_dim}, options));
    }
    valid_ = torch::zeros({batch, capacity}, options.dtype(torch::kBool));
  } catch (const c10::Error& e) {
    throw ResourceError(
        fmt::format("kv cache: cannot allocate {} rows × {} slots: {}", batch, capacity, e.what_without_backtrace()));
  }
}

size_t KvCache::bytes() const {
  size_t n = 0;
  for (const auto& t : k_) n += t.nbytes() * 2;
  return n;
}

namespace {

// The first row of `rows` when they are consecutive ([first, first + size)), or 0 when there are none (the first
// rows of the cache); -1 otherwise.
int64_t run_start(const std::vector<int64_t>& rows) {
  for (size_t i = 1; i < rows.size(); ++i)
    if (rows[i] != rows[0] + static_cast<int64_t>(i)) return -1;
  return rows.empty() ? 0 : rows[0];
}

torch::Tensor rows_index(const std::vector<int64_t>& rows, torch::Device device) {
  return torch::tensor(rows, torch::TensorOptions().dtype(torch::kInt64)).to(device);
}

}  // namespace

torch::Tensor KvCache::append(const torch::Tensor& valid, const std::vector<int64_t>& rows) {
  // valid: [count, T] bool -> slots [count, T]: batch row b's tokens go to lengths[r], lengths[r]+1, ... (r its row)
  auto valid_cpu = valid.to(torch::kCPU);
  const int64_t count = valid_cpu.size(0), T = valid_cpu.size(1);
  if (rows.empty() && count > batch_)
    throw Error(fmt::format("kv cache: {} rows requested; the cache has {}", count, batch_));
  if (!rows.empty()) {
    if (static_cast<int64_t>(rows.size()) != count)
      throw Error(fmt::format("kv cache: {} cache rows named for a batch of {}", rows.size(), count));
    std::vector<bool> seen(batch_, false);
    for (int64_t r : rows) {
      if (r < 0 || r >= batch_ || seen[r])
        throw Error(fmt::format("kv cache: row {} named twice or outside the cache's {} rows", r, batch_));
      seen[r] = true;
    }
  }
  auto row_of = [&](int64_t b) { return rows.empty() ? b : rows[b]; };
  for (int64_t b = 0; b < count; ++b)  // before any row moves, so that a refusal changes nothing
    if (lengths_[row_of(b)] + T > capacity_)
      throw ResourceError(
          fmt::format("kv cache: row {} needs {} slots; capacity is {}", row_of(b), lengths_[row_of(b)] + T, capacity_));
  auto slots = torch::empty({count, T}, torch::kInt64);
  auto s = slots.accessor<int64_t, 2>();
  auto vv = valid_cpu.accessor<bool, 2>();
  for (int64_t b = 0; b < count; ++b) {
    const int64_t r = row_of(b);
    int64_t n_valid = 0;
    for (int64_t t = 0; t < T; ++t) n_valid += vv[b][t];
    for (int64_t t = 0; t < T; ++t) s[b][t] = lengths_[r] + t;
    lengths_[r] += n_valid;
  }
  // Mark the new slots: valid ones true, padding false (so stale entries never leak in).
  const auto valid_dev = valid.to(valid_.device());
  const int64_t first = run_start(rows);
  if (first < 0)  // each row's new slots are consecutive
    for (int64_t b = 0; b < count; ++b) valid_[rows[b]].narrow(0, s[b][0], T).copy_(valid_dev[b]);
  slots = slots.to(valid_.device());
  if (first >= 0) valid_.narrow(0, first, count).scatter_(1, slots, valid_dev);
  return slots;
}

// The same writes as a copy per (row, head, token): on the CPU one scatter_ per tensor costs more than a decode
// step's few hundred bytes of keys and values (an index tensor, TensorIterator set-up) — twice per layer per step.
bool KvCache::write_rows(int64_t layer, const torch::Tensor& slots, const torch::Tensor& k, const torch::Tensor& v,
                         const std::vector<int64_t>& rows) {
  auto& kc = k_[layer];
  auto& vc = v_[layer];
  const auto plain = [&](const torch::Tensor& t) {
    return t.device().is_cpu() && t.scalar_type() == kc.scalar_type() && t.stride(3) == 1 && !t.requires_grad();
  };
  if (!plain(k) || !plain(v) || !kc.device().is_cpu() || slots.scalar_type() != torch::kInt64 ||
      !slots.device().is_cpu())
    return false;
  const auto s = slots.contiguous();
  const int64_t count = s.size(0), T = s.size(1), KV = k.size(1);
  const size_t row_bytes = static_cast<size_t>(k.size(3)) * k.element_size();
  const int64_t* sp = s.data_ptr<int64_t>();
  // what scatter_ and index_put_ would refuse, refused before any byte is copied
  const std::array<int64_t, 4> expected = {count, kc.size(1), T, kc.size(3)};
  const c10::IntArrayRef shape(expected.data(), expected.size());
  if (k.sizes() != shape || v.sizes() != shape || (!rows.empty() && rows.size() != size_t(count)))
    throw Error(fmt::format("kv cache: write of keys [{}] and values [{}] for {} rows of {} slots; expected [{}]",
                            fmt::join(k.sizes(), ", "), fmt::join(v.sizes(), ", "), count, T,
                            fmt::join(shape, ", ")));
  const auto row_of = [&](int64_t b) { return rows.empty() ? b : rows[b]; };
  for (int64_t b = 0; b < count; ++b) {
    const int64_t r = row_of(b);
    if (r < 0 || r >= batch_) throw Error(fmt::format("kv cache: write to row {} of {}", r, batch_));
    for (int64_t t = 0; t < T; ++t)
      if (sp[b * T + t] < 0 || sp[b * T + t] >= capacity_)
        throw Error(fmt::format("kv cache: write to slot {}; capacity is {}", sp[b * T + t], capacity_));
  }
  for (const auto& [src, dst] : {std::pair{&k, &kc}, std::pair{&v, &vc}}) {
    const auto* from = static_cast<const char*>(src->data_ptr());
    auto* to = static_cast<char*>(dst->data_ptr());
    const int64_t es = src->element_size();
    for (int64_t b = 0; b < count; ++b) {
      const int64_t r = row_of(b);
      for (int64_t h = 0; h < KV; ++h)
        for (int64_t t = 0; t < T; ++t)
          std::memcpy(to + (r * dst->stride(0) + h * dst->stride(1) + sp[b * T + t] * dst->stride(2)) * es,
                      from + (b * src->stride(0) + h * src->stride(1) + t * src->stride(2)) * es, row_bytes);
    }
  }
  return true;
}

void KvCache::write(int64_t layer, const torch::Tensor& slots, const torch::Tensor& k, const torch::Tensor& v,
                    const std::vector<int64_t>& rows) {
  if (write_rows(layer, slots, k, v, rows)) return;
  const int64_t count = slots.size(0), first = run_start(rows);
  if (first >= 0) {
    // slots [count, T] -> index [count, n_kv, T, hd] along dim 2
    auto index = slots.view({count, 1, slots.size(1), 1}).expand_as(k);
    k_[layer].narrow(0, first, count).scatter_(2, index, k);
    v_[layer].narrow(0, first, count).scatter_(2, index, v);
    return;
  }
  // k_[layer][rows[b], h, slots[b, t]] = k[b, h, t] for every b, h, t: three indices broadcast to [count, KV, T].
  const c10::List<c10::optional<torch::Tensor>> index({rows_index(rows, slots.device()).view({count, 1, 1}),
                                                       torch::arange(k.size(1), slots.options()).view({1, -1, 1}),
                                                       slots.view({count, 1, slots.size(1)})});
  k_[layer].index_put_(index, k);
  v_[layer].index_put_(index, v);
}

std::pair<torch::Tensor, torch::Tensor> KvCache::read(int64_t layer, int64_t n, int64_t count,
                                                      const std::vector<int64_t>& rows) const {
  const int64_t first = run_start(rows);
  if (first >= 0) {
    const int64_t m = rows.empty() ? (count < 0 ? batch_ : count) : static_cast<int64_t>(rows.size());
    return {k_[layer].narrow(0, first, m).narrow(2, 0, n), v_[layer].narrow(0, first, m).narrow(2, 0, n)};
  }
  const auto index = rows_index(rows, valid_.device());
  return {k_[layer].narrow(2, 0, n).index_select(0, index), v_[layer].narrow(2, 0, n).index_select(0, index)};
}

torch::Tensor KvCache::valid(int64_t n, int64_t count, const std::vector<int64_t>& rows) const {
  const int64_t first = run_start(rows);
  if (first >= 0) {
    const int64_t m = rows.empty() ? (count < 0 ? batch_ : count) : static_cast<int64_t>(rows.size());
    return valid_.narrow(0, first, m).narrow(1, 0, n);
  }
  return valid_.narrow(1, 0, n).index_select(0, rows_index(rows, valid_.device()));
}

void KvCache::reset_row(int64_t b) {
  lengths_[b] = 0;
  valid_[b].fill_(false);
}

void KvCache::truncate_row(int64_t b, int64_t length) {
  if (length >= lengths_[b]) return;
  lengths_[b] = std::max<int64_t>(length, 0);
  valid_[b].narrow(0, lengths_[b], capacity_ - lengths_[b]).fill_(false);
}

void KvCache::copy_row(int64_t dst, const KvCache& from, int64_t src) {
  const int64_t n = from.lengths_[src];
  if (n > capacity_)
    throw Error(fmt::format("kv cache: row {} holds {} slots; this cache's capacity is {}", src, n, capacity_));
  if (from.k_.size() != k_.size())
    throw Error(fmt::format("kv cache: copying a row of {} layers into a cache of {}", from.k_.size(), k_.size()));
  for (size_t l = 0; l < k_.size(); ++l) {
    k_[l][dst].narrow(1, 0, n).copy_(from.k_[l][src].narrow(1, 0, n));  // [KV, n, hd]
    v_[l][dst].narrow(1, 0, n).copy_(from.v_[l][src].narrow(1, 0, n));
  }
  valid_[dst].fill_(false);
  valid_[dst].narrow(0, 0, n).copy_(from.valid_[src].narrow(0, 0, n));
  lengths_[dst] = n;
}

torch::Tensor KvCache::row_slots(int64_t b, int64_t begin, int64_t n) const {
  if (begin < 0 || n < 0 || begin + n > lengths_[b])
    throw Error(fmt::format("kv cache: slots [{}, {}) of row {}; the row holds {}", begin, begin + n, b, lengths_[b]));
  std::vector<torch::Tensor> parts;  // 2L x [KV, n, hd]
  for (size_t l = 0; l < k_.size(); ++l) {
    parts.push_back(k_[l][b].narrow(1, begin, n));
    parts.push_back(v_[l][b].narrow(1, begin, n));
  }
  auto kv = torch::stack(parts);  // [2L, KV, n, hd]
  return kv.view({static_cast<int64_t>(k_.size()), 2, kv.size(1), n, kv.size(3)});
}

void KvCache::row_append(int64_t b, const torch::Tensor& kv) {
  const auto& k0 = k_.front();
  if (kv.dim() != 5 || kv.size(0) != static_cast<int64_t>(k_.size()) || kv.size(1) != 2 ||
      kv.size(2) != k0.size(1) || kv.size(4) != k0.size(3)) {
    std::ostringstream got;
    got << kv.sizes();
    throw Error(fmt::format("kv cache: row_append of {}; expected [{}, 2, {}, n, {}]", got.str(), k_.size(),
                            k0.size(1), k0.size(3)));
  }
  const int64_t n = kv.size(3), at = lengths_[b];
  if (at + n > capacity_)
    throw ResourceError(fmt::format("kv cache: row {} needs {} slots; capacity is {}", b, at + n, capacity_));
  for (size_t l = 0; l < k_.size(); ++l) {
    const auto layer = kv[static_cast<int64_t>(l)];  // [2, KV, n, hd]
    k_[l][b].narrow(1, at, n).copy_(layer[0]);
    v_[l][b].narrow(1, at, n).copy_(layer[1]);
  }
  valid_[b].narrow(0, at, n).fill_(true);
  lengths_[b] = at + n;
}

}  // namespace hearth::model
