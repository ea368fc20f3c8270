#include "serve/scheduler.h"

#include <algorithm>
#include <chrono>

#include <fmt/format.h>

#include "core/error.h"
#include "core/log.h"
#include "io/mapped_file.h"
#include "infer/generator.h"

namespace hearth::serve {

using Clock = std::chrono::steady_clock;

namespace {

// What a client whose request failed in the engine is told; the cause goes to the server's log.
constexpr const char* kEngineError = "internal error in the generation engine (the details are in the server's log)";

infer::GenerationRequest request_with(infer::GenerationRequest request, const model::LoraAdapter* adapter) {
  request.adapter = adapter;
  return request;
}

}  // namespace

// A sequence of the engine plus what serving adds: whose choice it is, its cache row, its adapter's owner.
struct Scheduler::Job {
  Job(std::shared_ptr<Completion> c, size_t i, SequenceSpec spec, const tokenizer::Tokenizer& tok, int64_t ctx)
      : completion(std::move(c)),
        choice(i),
        adapter(std::move(spec.adapter)),
        seq(request_with(std::move(spec.request), adapter.get()), tok, ctx) {}
  std::shared_ptr<Completion> completion;
  size_t choice = 0;
  std::shared_ptr<const model::LoraAdapter> adapter;
  infer::Sequence seq;
  int row = -1;
  Clock::time_point last_token;
};

namespace {

double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// Bytes one cache slot (token) takes over all layers: k and v, [n_kv, head_dim] each.
size_t slot_bytes(const model::CausalLM& m) {
  const auto& c = m.config();
  return static_cast<size_t>(2 * c.num_hidden_layers * c.num_key_value_heads * c.head_dim) *
             torch::elementSize(m.dtype()) +
         1;
}

}  // namespace

Scheduler::Scheduler(const model::CausalLM& model, const tokenizer::Tokenizer& tokenizer,
                     const SchedulerOptions& options, Metrics* metrics)
    : model_(model), tokenizer_(tokenizer), options_(options), metrics_(metrics) {
  const size_t per_slot = slot_bytes(model);
  const size_t row_bytes = per_slot * options_.ctx;
  const size_t side_bytes = row_bytes;  // the one-row side cache for prefills
  if (options_.kv_memory_bytes < side_bytes + row_bytes)
    throw ConfigError(
        fmt::format("--kv-memory-mb: {} MiB holds no cache row of --ctx {} (needs {} MiB); raise it or "
                    "lower --ctx",
                    options_.kv_memory_bytes >> 20, options_.ctx, ((side_bytes + row_bytes) >> 20) + 1));
  rows_ = static_cast<int>(std::min<size_t>(options_.max_batch, (options_.kv_memory_bytes - side_bytes) / row_bytes));
  if (rows_ < options_.max_batch)
    log::warn("--max-batch {}: only {} rows of {} tokens fit --kv-memory-mb {}; serving {} sequences at once",
              options_.max_batch, rows_, options_.ctx, options_.kv_memory_bytes >> 20, rows_);
  pool_ = std::make_unique<model::KvCache>(model_.cache_new(rows_, options_.ctx));
  side_ = std::make_unique<model::KvCache>(model_.cache_new(1, options_.ctx));
  if (options_.prefix_cache) {
    // The blocks are allocated as they are stored, up to what the rows leave of the budget.
    const size_t block_bytes = (per_slot - 1) * static_cast<size_t>(options_.prefix_block_tokens);
    const size_t rows_bytes = side_bytes + static_cast<size_t>(rows_) * row_bytes;
    prefix_capacity_ = static_cast<int64_t>((options_.kv_memory_bytes - rows_bytes) / block_bytes);
    prefix_ = std::make_unique<PrefixCache>(options_.prefix_block_tokens, prefix_capacity_);
    if (prefix_capacity_ * options_.prefix_block_tokens < options_.ctx)
      log::warn("prefix cache: --kv-memory-mb {} leaves room for {} tokens after the {} rows; raise it to reuse "
                "longer prompts",
                options_.kv_memory_bytes >> 20, prefix_capacity_ * options_.prefix_block_tokens, rows_);
  }
  running_.resize(rows_);
  publish_gauges();
  thread_ = std::thread([this] { run(); });
}

Scheduler::~Scheduler() { stop(); }

bool Scheduler::submit(const std::shared_ptr<Completion>& completion, std::vector<SequenceSpec> specs) {
  std::vector<std::unique_ptr<Job>> jobs;
  for (size_t i = 0; i < specs.size(); ++i)
    jobs.push_back(std::make_unique<Job>(completion, i, std::move(specs[i]), tokenizer_, options_.ctx));
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ || queue_.size() + jobs.size() > static_cast<size_t>(options_.max_queue)) return false;
    for (auto& j : jobs) queue_.push_back(std::move(j));
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
      if (!busy)
        cv_.wait_for(lock, std::chrono::milliseconds(50),
                     [&] { return stopping_ || !queue_.empty() || !abort_message_.empty(); });
      abort.swap(abort_message_);
      stopping = stopping_;
      if (!abort.empty()) {
        for (auto& s : queue_) s->completion->fail(abort);
        queue_.clear();
      }
    }
    if (!abort.empty()) fail_running(abort);
    if (stopping) break;
    if (io::mapped_files_damaged()) {  // the model's files changed underneath: nothing computed can be trusted
      if (!damage_logged_) log::error("{}", io::mapped_files_damage());
      damage_logged_ = true;
      {
        std::lock_guard<std::mutex> lock(mu_);
        for (auto& s : queue_) s->completion->fail(kModelFilesChanged);
        queue_.clear();
      }
      fail_running(kModelFilesChanged);
      publish_gauges();
      continue;
    }
    try {
      step();
    } catch (const std::exception& e) {
      // Not one request's failure (step() isolates those): the details (a libtorch backtrace) stay in the log.
      log::error("scheduler: step failed: {}", e.what());
      fail_running(kEngineError);
    }
    publish_gauges();
  }
  publish_gauges();
}

// A request's failure in the engine fails that request only: a prefill that throws fails its own request; a
// batched decode step that throws is rewound and retried one sequence at a time, so that only the sequences
// that fail alone fail; a sequence whose sampling throws fails alone (fail_row).
void Scheduler::step() {
  drop_cancelled();
  admit();
  int prefill_tokens = 0;
  if (prefilling_) {
    try {
      prefill_tokens = prefill_step();
    } catch (const std::exception& e) {
      log::error("scheduler: a prompt's prefill failed: {}", e.what());
      prefilling_->completion->fail(kEngineError);
      prefilling_->completion->cancel();  // its other choices stop too
      side_->reset_row(0);
      prefilling_.reset();
    }
  }
  int decoding = 0;
  for (const auto& s : running_) decoding += s != nullptr;
  if (decoding > 0) decode();
  if (metrics_ && (decoding > 0 || prefill_tokens > 0)) metrics_->batch_step(decoding, prefill_tokens);
}

void Scheduler::drop_cancelled() {
  for (auto& job : running_)
    if (job && job->completion->cancelled()) {
      job->seq.finish("cancelled");
      release(*job);
    }
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
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (queue_.empty()) return;
    prefilling_ = std::move(queue_.front());
    queue_.pop_front();
  }
  prefilling_->row = row;
  if (prefix_) prefix_restore(*prefilling_);
}

// Starts the prefill with the prompt's cached blocks. A failure here only costs the reuse: the prompt is prefilled
// in full.
void Scheduler::prefix_restore(Job& job) {
  try {
    job.seq.prefill_advance(static_cast<size_t>(prefix_->restore(job.seq.request().prompt, job.adapter, *side_, 0)));
  } catch (const std::exception& e) {
    log::warn("scheduler: the prefix cache could not restore a prompt's blocks ({}); prefilling it in full", e.what());
    side_->reset_row(0);
  }
}

// Gives the whole blocks of `tokens` held in row `row` of `cache` to the prefix cache. A failure (out of memory)
// only costs the reuse.
void Scheduler::prefix_store(const Job& job, const std::vector<infer::TokenId>& tokens, const model::KvCache& cache,
                             int row) {
  if (!prefix_) return;
  try {
    prefix_->store(tokens, std::min<int64_t>(cache.lengths()[row], static_cast<int64_t>(tokens.size())), job.adapter,
                   cache, row);
  } catch (const std::exception& e) {
    log::warn("scheduler: the prefix cache could not keep a sequence's blocks: {}", e.what());
  }
}

// Prefills up to one chunk of the waiting sequence's prompt in the side cache. Returns the tokens done.
int Scheduler::prefill_step() {
  Job& job = *prefilling_;
  infer::Sequence& seq = job.seq;
  const int64_t n = static_cast<int64_t>(seq.request().prompt.size());
  const int64_t T = std::min<int64_t>(options_.prefill_chunk, n - static_cast<int64_t>(seq.prefilled()));
  auto logits = infer::step_forward(model_, *side_, infer::prefill_inputs({&seq}, {T}));
  if (io::mapped_files_damaged()) return 0;  // computed from zeros: run() fails it
  seq.prefill_advance(static_cast<size_t>(T));
  if (static_cast<int64_t>(seq.prefilled()) < n) return static_cast<int>(T);

  const int row = job.row;
  pool_->copy_row(row, *side_, 0);
  side_->reset_row(0);
  running_[row] = std::move(prefilling_);
  if (seq.budget() == 0) {
    on_token(job, infer::TokenEvent{false, seq.finish("length"), {}});
    return static_cast<int>(T);
  }
  infer::sample_rows(
      {&seq}, logits, [&](size_t, const infer::TokenEvent& e) { on_token(job, e); },
      [&](size_t, const std::exception& e) { fail_row(row, e); });
  // The prompt's blocks, for the requests waiting with the same one — after its first token, not in its time. (A
  // sequence that ended or failed already is gone: release() kept its blocks, or there is nothing to keep.)
  if (const auto& running = running_[row]) prefix_store(*running, running->seq.request().prompt, *pool_, row);
  return static_cast<int>(T);
}

// One token for every running row, over pool rows [0, n) where n is one past the last running row (rows
// are handed out lowest-first, so n is usually the number running): a lone request costs one row, not the
// whole pool, and takes the one-row gemv path.
void Scheduler::decode() {
  int n = 0;
  for (int r = 0; r < rows_; ++r)
    if (running_[r]) n = r + 1;
  std::vector<infer::Sequence*> rows(n, nullptr);
  std::vector<int64_t> before(n);
  int live = 0;
  for (int r = 0; r < n; ++r) {
    if (running_[r]) rows[r] = &running_[r]->seq;
    before[r] = pool_->lengths()[r];
    live += running_[r] != nullptr;
  }
  auto deliver = [&](size_t r, const infer::TokenEvent& e) { on_token(*running_[r], e); };
  auto fail = [&](size_t r, const std::exception& e) { fail_row(static_cast<int>(r), e); };
  torch::Tensor logits;
  try {
    logits = infer::step_forward(model_, *pool_, infer::decode_inputs({rows.begin(), rows.end()}));
  } catch (const std::exception& e) {
    for (int r = 0; r < n; ++r) pool_->truncate_row(r, before[r]);  // the slots the failed step reserved
    if (live > 1)
      log::warn("scheduler: a decode step of {} sequences failed ({}); retrying them one at a time", live, e.what());
    for (int r = 0; r < n; ++r) {
      if (!running_[r]) continue;
      if (live == 1) {
        fail(r, e);
        continue;
      }
      std::vector<infer::Sequence*> one(r + 1, nullptr);
      one[r] = rows[r];
      try {
        auto alone = infer::step_forward(model_, *pool_, infer::decode_inputs({one.begin(), one.end()}));
        infer::sample_rows(one, alone, deliver, fail);
      } catch (const std::exception& e_alone) {
        pool_->truncate_row(r, before[r]);
        fail(r, e_alone);
      }
    }
    return;
  }
  if (io::mapped_files_damaged()) return;  // computed from zeros: run() fails every row
  infer::sample_rows(rows, logits, deliver, fail);
}

// Fails the request of the job in pool row `row` (all its choices), frees the row; the cause goes to the log only.
void Scheduler::fail_row(int row, const std::exception& e) {
  auto& job = running_[row];
  if (!job) return;
  log::error("scheduler: a request failed in the engine: {}", e.what());
  job->completion->fail(kEngineError);
  job->completion->cancel();  // its other choices stop too
  pool_->reset_row(row);
  job.reset();
}

// Hands what a token produced to the client; a finished sequence reports its reason and frees its row.
void Scheduler::on_token(Job& job, const infer::TokenEvent& event) {
  const infer::Sequence& seq = job.seq;
  if (event.kept) {
    auto now = Clock::now();
    if (metrics_) {
      if (seq.generated().size() == 1) metrics_->time_to_first_token(seconds(now - job.completion->start()));
      else metrics_->inter_token(seconds(now - job.last_token));
    }
    job.last_token = now;
  }
  job.completion->append(job.choice, event.text, event.kept ? 1 : 0, event.logprobs);
  if (!seq.finished()) return;
  job.completion->finish(job.choice, seq.finish_reason());
  if (metrics_) metrics_->tokens(seq.request().prompt.size(), seq.generated().size());
  release(job);
}

// Frees a running job's row (destroys the job), keeping its prompt and reply in the prefix cache (the next turn
// of a conversation starts with them). Row slot i holds context i up to the row's length; the last token
// sampled has no slot yet.
void Scheduler::release(Job& job) {
  const int row = job.row;
  prefix_store(job, job.seq.context(), *pool_, row);
  pool_->reset_row(row);
  running_[row].reset();
}

void Scheduler::fail_running(const std::string& message) {
  for (auto& job : running_)
    if (job) {
      job->completion->fail(message);
      pool_->reset_row(job->row);
      job.reset();
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
  if (prefix_) g.prefix_cache = prefix_->stats();
  {
    std::lock_guard<std::mutex> lock(mu_);
    g.queue_depth = static_cast<int>(queue_.size());
    gauges_ = g;
  }
  if (metrics_) metrics_->gauges(g);
}

}  // namespace hearth::serve
