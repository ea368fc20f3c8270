#include "serve/scheduler.h"

#include <algorithm>
#include <chrono>

#include <fmt/format.h>

#include "core/error.h"
#include "core/log.h"
#include "infer/generator.h"

namespace hearth::serve {

using Clock = std::chrono::steady_clock;

struct Scheduler::Sequence {
  Sequence(std::shared_ptr<Completion> c, size_t i, SequenceSpec sp, const tokenizer::Tokenizer& tok)
      : completion(std::move(c)), choice(i), spec(std::move(sp)), sampler(spec.sampling), decoder(tok),
        stops(spec.stop), context(spec.prompt) {}
  std::shared_ptr<Completion> completion;
  size_t choice = 0;
  SequenceSpec spec;
  infer::Sampler sampler;
  tokenizer::StreamDecoder decoder;
  infer::StopMatcher stops;
  std::vector<infer::TokenId> context;  // prompt + generated
  int row = -1;
  size_t prefilled = 0;
  int generated = 0, budget = 0;
  infer::TokenId next = 0;  // the token the next decode step feeds
  Clock::time_point last_token;
};

namespace {

double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// Bytes one cache slot (token) takes over all layers: k and v, [n_kv, head_dim] each.
size_t slot_bytes(const model::LlamaModel& m) {
  const auto& c = m.config();
  return static_cast<size_t>(2 * c.num_hidden_layers * c.num_key_value_heads * c.head_dim) *
             torch::elementSize(m.dtype()) + 1;
}

}  // namespace

Scheduler::Scheduler(const model::LlamaModel& model, const tokenizer::Tokenizer& tokenizer,
                     const SchedulerOptions& options, Metrics* metrics)
    : model_(model), tokenizer_(tokenizer), options_(options), metrics_(metrics) {
  const size_t per_slot = slot_bytes(model);
  const size_t row_bytes = per_slot * (options_.ctx + options_.prefill_chunk);
  const size_t side_bytes = per_slot * options_.ctx;
  if (options_.kv_memory_bytes < side_bytes + row_bytes)
    throw ConfigError(fmt::format("--kv-memory-mb: {} MiB holds no cache row of --ctx {} (needs {} MiB); raise it or "
                                  "lower --ctx", options_.kv_memory_bytes >> 20, options_.ctx,
                                  ((side_bytes + row_bytes) >> 20) + 1));
  rows_ = static_cast<int>(std::min<size_t>(options_.max_batch, (options_.kv_memory_bytes - side_bytes) / row_bytes));
  if (rows_ < options_.max_batch)
    log::warn("--max-batch {}: only {} rows of {} tokens fit --kv-memory-mb {}; serving {} sequences at once",
              options_.max_batch, rows_, options_.ctx, options_.kv_memory_bytes >> 20, rows_);
  pool_ = std::make_unique<model::KvCache>(model_.cache_new(rows_, options_.ctx + options_.prefill_chunk));
  side_ = std::make_unique<model::KvCache>(model_.cache_new(1, options_.ctx));
  running_.resize(rows_);
  publish_gauges();
  thread_ = std::thread([this] { run(); });
}

Scheduler::~Scheduler() { stop(); }

bool Scheduler::submit(const std::shared_ptr<Completion>& completion, std::vector<SequenceSpec> specs) {
  std::vector<std::unique_ptr<Sequence>> seqs;
  for (size_t i = 0; i < specs.size(); ++i) {
    auto s = std::make_unique<Sequence>(completion, i, std::move(specs[i]), tokenizer_);
    int left = options_.ctx - static_cast<int>(s->spec.prompt.size());
    s->budget = std::max(0, std::min(s->spec.max_tokens, left));
    seqs.push_back(std::move(s));
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ || queue_.size() + seqs.size() > static_cast<size_t>(options_.max_queue)) return false;
    for (auto& s : seqs) queue_.push_back(std::move(s));
    gauges_.queue_depth = static_cast<int>(queue_.size());
  }
  cv_.notify_all();
  return true;
}

void Scheduler::abort_all(const std::string& message) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    abort_message_ = message;
  }
  cv_.notify_all();
}

void Scheduler::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
    if (abort_message_.empty()) abort_message_ = "server shutting down";
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

EngineGauges Scheduler::gauges() const {
  std::lock_guard<std::mutex> lock(mu_);
  return gauges_;
}

void Scheduler::run() {
  c10::InferenceMode guard;
  while (true) {
    bool busy = prefilling_ != nullptr ||
                std::any_of(running_.begin(), running_.end(), [](const auto& s) { return s != nullptr; });
    std::string abort;
    bool stopping;
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (!busy) cv_.wait_for(lock, std::chrono::milliseconds(50), [&] { return stopping_ || !queue_.empty() || !abort_message_.empty(); });
      abort.swap(abort_message_);
      stopping = stopping_;
      if (!abort.empty()) {
        for (auto& s : queue_) s->completion->fail(abort);
        queue_.clear();
      }
    }
    if (!abort.empty()) fail_running(abort);
    if (stopping) break;
    try {
      step();
    } catch (const std::exception& e) {
      log::error("scheduler: step failed: {}", e.what());
      fail_running(fmt::format("internal error: {}", e.what()));
    }
    publish_gauges();
  }
  publish_gauges();
}

void Scheduler::step() {
  drop_cancelled();
  admit();
  int prefill_tokens = prefilling_ ? prefill_step() : 0;
  int decoding = 0;
  for (const auto& s : running_) decoding += s != nullptr;
  if (decoding > 0) decode_step();
  if (metrics_ && (decoding > 0 || prefill_tokens > 0)) metrics_->batch_step(decoding, prefill_tokens);
}

void Scheduler::drop_cancelled() {
  for (auto& s : running_)
    if (s && s->completion->cancelled()) finish(*s, "cancelled");
  if (prefilling_ && prefilling_->completion->cancelled()) {
    side_->reset_row(0);
    prefilling_.reset();
  }
  std::lock_guard<std::mutex> lock(mu_);
  queue_.erase(std::remove_if(queue_.begin(), queue_.end(), [](const auto& s) { return s->completion->cancelled(); }),
               queue_.end());
}

void Scheduler::admit() {
  if (prefilling_) return;
  int row = -1;
  for (int r = 0; r < rows_ && row < 0; ++r)
    if (!running_[r]) row = r;
  if (row < 0) return;
  std::lock_guard<std::mutex> lock(mu_);
  if (queue_.empty()) return;
  prefilling_ = std::move(queue_.front());
  queue_.pop_front();
  prefilling_->row = row;
}

// Prefills up to one chunk of the waiting sequence's prompt in the side cache. Returns the tokens done.
int Scheduler::prefill_step() {
  Sequence& s = *prefilling_;
  const int64_t n = static_cast<int64_t>(s.spec.prompt.size());
  const int64_t start = static_cast<int64_t>(s.prefilled);
  const int64_t T = std::min<int64_t>(options_.prefill_chunk, n - start);
  auto tokens = torch::empty({1, T}, torch::kInt64);
  for (int64_t t = 0; t < T; ++t) tokens[0][t] = static_cast<int64_t>(s.spec.prompt[start + t]);
  auto positions = torch::arange(start, start + T, torch::kInt64).unsqueeze(0);
  auto valid = torch::ones({1, T}, torch::kBool);
  model::ForwardOptions fo;
  fo.last_only = true;
  if (s.spec.adapter) fo.adapters = {s.spec.adapter.get()};
  auto logits = model_.forward(tokens, positions, valid, side_.get(), fo).to(torch::kCPU).contiguous();
  s.prefilled += static_cast<size_t>(T);
  if (static_cast<int64_t>(s.prefilled) < n) return static_cast<int>(T);

  const int row = s.row;
  transplant(row);
  side_->reset_row(0);
  running_[row] = std::move(prefilling_);
  Sequence& r = *running_[row];
  if (r.budget == 0) {
    finish(r, "length");
    return static_cast<int>(T);
  }
  auto token = r.sampler.sample(logits.data_ptr<float>(), logits.size(-1), r.context, r.spec.prompt.size());
  accept(r, token);
  return static_cast<int>(T);
}

// Copies the side cache's prompt keys/values into pool row `row`, one chunk at a time (see the header).
void Scheduler::transplant(int row) {
  const int64_t n = side_->lengths()[0];
  const int64_t chunk = options_.prefill_chunk;
  for (int64_t off = 0; off < n; off += chunk) {
    const int64_t k = std::min(chunk, n - off);
    auto mask = torch::zeros({rows_, k}, torch::kBool);
    mask[row].fill_(true);
    pool_->append(mask.to(model_.device()));
    for (int64_t l = 0; l < model_.config().num_hidden_layers; ++l) {
      auto [pk, pv] = pool_->read(l, off + k);  // views into the pool: [rows, n_kv, off + k, hd]
      auto [sk, sv] = side_->read(l, off + k);
      pk.select(0, row).narrow(1, off, k).copy_(sk.select(0, 0).narrow(1, off, k));
      pv.select(0, row).narrow(1, off, k).copy_(sv.select(0, 0).narrow(1, off, k));
    }
  }
}

// One token for every running row: tokens [n, 1] -> logits [n, 1, V], where n is one past the last running
// row (rows are handed out lowest-first, so n is usually the number running). The forward then touches only
// pool rows [0, n): a lone request costs one row, not the whole pool, and takes the one-row gemv path.
void Scheduler::decode_step() {
  int n = 0;
  for (int r = 0; r < rows_; ++r)
    if (running_[r]) n = r + 1;
  auto tokens = torch::zeros({n, 1}, torch::kInt64);
  auto positions = torch::zeros({n, 1}, torch::kInt64);
  auto valid = torch::zeros({n, 1}, torch::kBool);
  std::vector<const model::LoraAdapter*> adapters(n, nullptr);
  bool any_adapter = false;
  for (int r = 0; r < n; ++r) {
    const auto& s = running_[r];
    if (!s) continue;
    tokens[r][0] = static_cast<int64_t>(s->next);
    positions[r][0] = static_cast<int64_t>(s->context.size()) - 1;
    valid[r][0] = true;
    adapters[r] = s->spec.adapter.get();
    any_adapter = any_adapter || adapters[r] != nullptr;
  }
  model::ForwardOptions fo;
  if (any_adapter) fo.adapters = adapters;
  // All n rows valid (no gaps): no mask needed, as in hearth generate.
  const bool no_gaps = valid.all().item<bool>();
  auto logits = model_.forward(tokens, positions, no_gaps ? torch::Tensor() : valid, pool_.get(), fo)
                    .to(torch::kCPU)
                    .contiguous();
  const int64_t V = logits.size(-1);
  float* data = logits.data_ptr<float>();
  for (int r = 0; r < n; ++r) {
    auto& s = running_[r];
    if (!s) continue;
    auto token = s->sampler.sample(data + r * V, V, s->context, s->spec.prompt.size());
    accept(*s, token);
  }
}

// Records a sampled token; finishes the sequence on a stop token, a stop string or its budget.
void Scheduler::accept(Sequence& s, infer::TokenId token) {
  const auto& stop_ids = s.spec.stop_token_ids;
  if (std::find(stop_ids.begin(), stop_ids.end(), token) != stop_ids.end()) {
    finish(s, "stop");
    return;
  }
  auto now = Clock::now();
  if (metrics_) {
    if (s.generated == 0) metrics_->time_to_first_token(seconds(now - s.completion->start()));
    else metrics_->inter_token(seconds(now - s.last_token));
  }
  s.last_token = now;
  s.context.push_back(token);
  s.next = token;
  ++s.generated;
  std::string safe = s.stops.push(s.decoder.push(token));
  s.completion->append(s.choice, safe, 1);
  if (s.stops.stopped()) finish(s, "stop");
  else if (s.generated >= s.budget) finish(s, "length");
}

// Ends a running sequence: flushes held-back text, reports the reason, frees the row.
void Scheduler::finish(Sequence& s, const std::string& reason) {
  if (reason != "cancelled") {
    std::string tail = s.stops.stopped() ? std::string() : s.stops.push(s.decoder.flush()) + s.stops.flush();
    s.completion->append(s.choice, tail, 0);
    s.completion->finish(s.choice, reason);
    if (metrics_) metrics_->tokens(s.spec.prompt.size(), s.generated);
  }
  const int row = s.row;
  pool_->reset_row(row);
  running_[row].reset();  // destroys s
}

void Scheduler::fail_running(const std::string& message) {
  for (auto& s : running_)
    if (s) {
      s->completion->fail(message);
      pool_->reset_row(s->row);
      s.reset();
    }
  if (prefilling_) {
    prefilling_->completion->fail(message);
    side_->reset_row(0);
    prefilling_.reset();
  }
}

void Scheduler::publish_gauges() {
  EngineGauges g;
  g.rows = rows_;
  for (int r = 0; r < rows_; ++r) {
    g.active += running_[r] != nullptr;
    g.kv_used_tokens += pool_->lengths()[r];
  }
  g.kv_used_tokens += side_->lengths()[0];
  g.active += prefilling_ != nullptr;
  g.kv_capacity_tokens = static_cast<int64_t>(rows_) * options_.ctx;
  g.kv_bytes = pool_->bytes() + side_->bytes();
  {
    std::lock_guard<std::mutex> lock(mu_);
    g.queue_depth = static_cast<int>(queue_.size());
    gauges_ = g;
  }
  if (metrics_) metrics_->gauges(g);
}

}  // namespace hearth::serve
