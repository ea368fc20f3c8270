#include "serve/scheduler.h"

#include <algorithm>
#include <chrono>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/error.h"
#include "core/log.h"
#include "io/mapped_file.h"
#include "infer/generator.h"
#include "serve/prefill_plan.h"

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
  int64_t restored = 0;  // prompt tokens the prefix cache gave it
  Clock::time_point last_token;

  int64_t prompt_size() const { return static_cast<int64_t>(seq.request().prompt.size()); }
  bool prefilled() const { return static_cast<int64_t>(seq.prefilled()) == prompt_size(); }
};

// What the engine's forwards cost on this machine, measured as they run: a prefill forward of n tokens (rows ×
// longest row, padding included) takes about fixed + n·per_token seconds — a line fitted by least squares over the
// recent forwards, older ones weighing less — and a decode step about what the recent ones took. The scheduler
// thread's only.
class Scheduler::StepCosts {
 public:
  void prefill(double tokens, double seconds) {
    if (cold_) {  // the first forward pages weights in and warms the allocator and threads: not a cost to plan by
      cold_ = false;
      return;
    }
    for (double* sum : {&w_, &sn_, &snn_, &st_, &snt_}) *sum *= kKeep;
    w_ += 1;
    sn_ += tokens;
    snn_ += tokens * tokens;
    st_ += seconds;
    snt_ += tokens * seconds;
  }
  void decode(double seconds) { decode_ = decode_ < 0 ? seconds : 0.7 * decode_ + 0.3 * seconds; }
  double decode_seconds() const { return std::max(decode_, 0.0); }
  // The most tokens a prefill forward may have to take at most `seconds` (0 when even the fixed cost does not fit);
  // -1 before any prefill was measured.
  int64_t prefill_tokens_within(double seconds) const {
    if (w_ == 0) return -1;
    double per_token = st_ / sn_, fixed = 0;  // through the origin when all forwards had about one size
    const double spread = w_ * snn_ - sn_ * sn_;
    if (spread > 1e-6 * snn_ * w_) {
      const double slope = (w_ * snt_ - sn_ * st_) / spread;
      if (slope > 0) {
        per_token = slope;
        fixed = std::max(0.0, (st_ - slope * sn_) / w_);
      }
    }
    const double fit = (seconds - fixed) / std::max(per_token, 1e-9);
    return static_cast<int64_t>(std::clamp(fit, 0.0, 1e9));
  }

 private:
  static constexpr double kKeep = 0.9;  // each forward's weight decays by this at every later one
  double w_ = 0, sn_ = 0, snn_ = 0, st_ = 0, snt_ = 0;
  double decode_ = -1;
  bool cold_ = true;
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
  if (options_.kv_memory_bytes < row_bytes)
    throw ConfigError(
        fmt::format("--kv-memory-mb: {} MiB holds no cache row of --ctx {} (needs {} MiB); raise it or "
                    "lower --ctx",
                    options_.kv_memory_bytes >> 20, options_.ctx, (row_bytes >> 20) + 1));
  rows_ = static_cast<int>(std::min<size_t>(options_.max_batch, options_.kv_memory_bytes / row_bytes));
  if (rows_ < options_.max_batch)
    log::warn("--max-batch {}: only {} rows of {} tokens fit --kv-memory-mb {}; serving {} sequences at once",
              options_.max_batch, rows_, options_.ctx, options_.kv_memory_bytes >> 20, rows_);
  pool_ = std::make_unique<model::KvCache>(model_.cache_new(rows_, options_.ctx));
  if (options_.prefix_cache) {
    // The blocks are allocated as they are stored, up to what the rows leave of the budget.
    const size_t block_bytes = (per_slot - 1) * static_cast<size_t>(options_.prefix_block_tokens);
    const size_t rows_bytes = static_cast<size_t>(rows_) * row_bytes;
    prefix_capacity_ = static_cast<int64_t>((options_.kv_memory_bytes - rows_bytes) / block_bytes);
    prefix_ = std::make_unique<PrefixCache>(options_.prefix_block_tokens, prefix_capacity_);
    if (prefix_capacity_ * options_.prefix_block_tokens < options_.ctx)
      log::warn("prefix cache: --kv-memory-mb {} leaves room for {} tokens after the {} rows; raise it to reuse "
                "longer prompts",
                options_.kv_memory_bytes >> 20, prefix_capacity_ * options_.prefix_block_tokens, rows_);
  }
  costs_ = std::make_unique<StepCosts>();
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
    bool busy = std::any_of(running_.begin(), running_.end(), [](const auto& s) { return s != nullptr; });
    std::string abort;
    bool stopping;
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (!busy) {
        cv_.wait_for(lock, std::chrono::milliseconds(50),
                     [&] { return stopping_ || !queue_.empty() || !abort_message_.empty(); });
        gather(lock);
      }
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

// Requests that clients send together reach the queue a little apart (each has its connection thread to parse and
// tokenize it). An idle engine that starting at the first one would prefill it alone, and the others in the next
// steps beside its decode, so it waits while more keep coming: each within kGatherGap of the one before, at most
// kGatherMax in all, and no longer once the queue holds a request for every row. A lone request pays kGatherGap.
void Scheduler::gather(std::unique_lock<std::mutex>& lock) {
  constexpr auto kGatherGap = std::chrono::milliseconds(5), kGatherMax = std::chrono::milliseconds(25);
  const auto until = Clock::now() + kGatherMax;
  size_t seen = queue_.size();
  while (seen > 0 && seen < static_cast<size_t>(rows_) && !stopping_ && abort_message_.empty()) {
    const auto deadline = std::min(until, Clock::now() + kGatherGap);
    if (!cv_.wait_until(lock, deadline,
                        [&] { return queue_.size() != seen || stopping_ || !abort_message_.empty(); }))
      break;
    seen = queue_.size();
  }
}

// A request's failure in the engine fails that request only: a batched prefill or decode step that throws is
// rewound and retried one sequence at a time, so that only the sequences that fail alone fail; a sequence whose
// sampling throws fails alone (fail_row).
void Scheduler::step() {
  drop_cancelled();
  admit();
  auto decoding = [&] {
    int n = 0;
    for (const auto& job : running_) n += job && job->prefilled();
    return n;
  };
  int prefill_tokens = 0;
  if (!prefilling_.empty()) prefill_tokens = prefill(prefill_budget(decoding()));
  const int rows = decoding();  // with the prompts whose prefill completed: their second token comes now
  if (rows > 0) {
    const auto t0 = Clock::now();
    decode();
    const double took = seconds(Clock::now() - t0);
    costs_->decode(took);
    log::debug("scheduler: decoded {} rows in {:.1f} ms", rows, 1e3 * took);
  }
  if (metrics_ && (rows > 0 || prefill_tokens > 0)) metrics_->batch_step(rows, prefill_tokens);
}

void Scheduler::drop_cancelled() {
  for (auto& job : running_)
    if (job && job->completion->cancelled()) {
      if (!job->prefilled()) {
        drop_row(job->row);  // nothing of it worth keeping
        continue;
      }
      job->seq.finish("cancelled");
      release(*job);
    }
  std::lock_guard<std::mutex> lock(mu_);
  queue_.erase(std::remove_if(queue_.begin(), queue_.end(), [](const auto& s) { return s->completion->cancelled(); }),
               queue_.end());
}

// Gives free rows to waiting sequences, oldest first, except those waiting for a prompt with the same leading
// blocks to be cached (waits_for_shared_prefix): the sequences behind them go first. One at a time, each restoring
// its cached blocks before the next is chosen, so that requests sharing blocks that are cached already (the choices
// of one request, a common system prompt) are admitted together.
void Scheduler::admit() {
  for (int row = 0; row < rows_; ++row) {
    if (running_[row]) continue;
    std::unique_ptr<Job> job;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto it = queue_.begin(); it != queue_.end(); ++it)
        if (!waits_for_shared_prefix(**it)) {
          job = std::move(*it);
          queue_.erase(it);
          break;
        }
    }
    if (!job) return;
    job->row = row;
    if (prefix_) prefix_restore(*job);
    prefilling_.push_back(job.get());
    running_[row] = std::move(job);
  }
}

// True when a prompt being prefilled (prefilling_) shares a whole block with `job`'s prompt, with the same adapter,
// that it computes (beyond what it restored): once that prefill completes, the block is in the prefix cache and
// `job` copies it instead of computing it again beside it.
bool Scheduler::waits_for_shared_prefix(const Job& job) const {
  if (!prefix_ || prefix_capacity_ == 0) return false;  // no room: the blocks would never be cached
  const auto& prompt = job.seq.request().prompt;
  const int64_t block = prefix_->block_tokens();
  for (const Job* other : prefilling_) {
    if (other->adapter != job.adapter) continue;
    const auto& theirs = other->seq.request().prompt;
    const size_t n = std::min(prompt.size() - 1, theirs.size());  // a prompt's last token is never restored
    const auto common = static_cast<int64_t>(std::mismatch(prompt.begin(), prompt.begin() + n, theirs.begin()).first -
                                             prompt.begin());
    if (common / block * block > other->restored) return true;
  }
  return false;
}

// Starts the prefill with the prompt's cached blocks, copied into the job's (empty) row. A failure here only costs
// the reuse: the prompt is prefilled in full.
void Scheduler::prefix_restore(Job& job) {
  try {
    job.restored = prefix_->restore(job.seq.request().prompt, job.adapter, *pool_, job.row);
    job.seq.prefill_advance(static_cast<size_t>(job.restored));
  } catch (const std::exception& e) {
    log::warn("scheduler: the prefix cache could not restore a prompt's blocks ({}); prefilling it in full", e.what());
    pool_->reset_row(job.row);
    job.restored = 0;
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

// The prefill tokens (rows × longest row) this step may compute: --prefill-chunk when nothing decodes, or when the
// prompts being prefilled outnumber the sequences decoding (more requests wait for a first token than one slow step
// would delay; a burst of requests goes in one forward instead of one prompt a step, since each prefill forward also
// reads every weight once); else what fits in --step-latency-ms after the decode, at the measured costs, at least
// kMinPrefill so that prompts advance even when the decode alone takes the whole latency.
int64_t Scheduler::prefill_budget(int decoding) const {
  constexpr int64_t kMinPrefill = 16;
  const int64_t chunk = options_.prefill_chunk;
  if (decoding == 0 || static_cast<int>(prefilling_.size()) > decoding) return chunk;
  const int64_t fit = costs_->prefill_tokens_within(options_.step_latency_ms / 1e3 - costs_->decode_seconds());
  if (fit < 0) return chunk;  // nothing measured yet
  return std::clamp<int64_t>(fit, std::min(kMinPrefill, chunk), chunk);
}

// Prefills this step's share of the prompts being prefilled (prefill_plan) in one forward over their rows.
// Returns the prompt tokens computed.
int Scheduler::prefill(int64_t budget) {
  std::vector<PrefillDemand> demands;
  for (const Job* job : prefilling_)
    demands.push_back({job->prompt_size() - static_cast<int64_t>(job->seq.prefilled()),
                       options_.ctx - pool_->lengths()[job->row]});
  const auto plan = prefill_plan(demands, budget);
  log::debug("scheduler: {} prompts prefilling, budget {} tokens, plan {}", demands.size(), budget, fmt::join(plan, ","));
  std::vector<std::pair<Job*, int64_t>> chosen;
  for (size_t i = 0; i < plan.size() && plan[i] > 0; ++i) chosen.emplace_back(prefilling_[i], plan[i]);
  // In row order: rows that are consecutive in the pool are then views of it in the forward, not copies.
  std::sort(chosen.begin(), chosen.end(), [](const auto& a, const auto& b) { return a.first->row < b.first->row; });
  std::vector<Job*> jobs;
  std::vector<int64_t> counts;
  for (const auto& [job, count] : chosen) {
    jobs.push_back(job);
    counts.push_back(count);
  }
  torch::Tensor logits;
  try {
    logits = prefill_forward(jobs, counts);
  } catch (const std::exception& e) {
    auto fail = [&](Job& job, const std::exception& cause) {
      log::error("scheduler: a prompt's prefill failed: {}", cause.what());
      job.completion->fail(kEngineError);
      job.completion->cancel();  // its other choices stop too
      drop_row(job.row);
    };
    if (jobs.size() == 1) {
      fail(*jobs[0], e);
      return 0;
    }
    log::warn("scheduler: a prefill of {} prompts failed ({}); retrying them one at a time", jobs.size(), e.what());
    int done = 0;
    for (size_t i = 0; i < jobs.size(); ++i) {
      if (jobs[i]->completion->cancelled()) continue;  // a sibling choice failed above: drop_cancelled frees it
      try {
        auto alone = prefill_forward({jobs[i]}, {counts[i]});
        if (io::mapped_files_damaged()) return done;  // computed from zeros: run() fails them
        prefill_advance({jobs[i]}, {counts[i]}, alone);
        done += static_cast<int>(counts[i]);
      } catch (const std::exception& e_alone) {
        fail(*jobs[i], e_alone);
      }
    }
    return done;
  }
  if (io::mapped_files_damaged()) return 0;  // computed from zeros: run() fails them
  prefill_advance(jobs, counts, logits);
  int done = 0;
  for (int64_t c : counts) done += static_cast<int>(c);
  return done;
}

// One forward over the jobs' rows of the pool, job i feeding its next counts[i] prompt tokens: logits [jobs, V] at
// each one's last. A failure rewinds the rows (the slots the forward reserved) and rethrows.
torch::Tensor Scheduler::prefill_forward(const std::vector<Job*>& jobs, const std::vector<int64_t>& counts) {
  std::vector<const infer::Sequence*> seqs;
  std::vector<int64_t> rows, before;
  for (const Job* job : jobs) {
    seqs.push_back(&job->seq);
    rows.push_back(job->row);
    before.push_back(pool_->lengths()[job->row]);
  }
  auto in = infer::prefill_inputs(seqs, counts);
  in.cache_rows = rows;
  try {
    const auto t0 = Clock::now();
    auto logits = infer::step_forward(model_, *pool_, in);
    const double took = seconds(Clock::now() - t0);
    costs_->prefill(static_cast<double>(in.tokens.numel()), took);
    log::debug("scheduler: prefilled {} rows × {} tokens in {:.1f} ms", in.tokens.size(0), in.tokens.size(1),
               1e3 * took);
    return logits;
  } catch (...) {
    for (size_t i = 0; i < rows.size(); ++i) pool_->truncate_row(rows[i], before[i]);
    throw;
  }
}

// Records that the jobs prefilled counts[i] more prompt tokens; those whose prefill is complete sample their first
// token from their row of `logits` [jobs, V], start decoding and give their prompt's blocks to the prefix cache —
// after the first token, not in its time. (A sequence that ended or failed already is gone: release() kept its
// blocks, or there is nothing to keep.)
void Scheduler::prefill_advance(const std::vector<Job*>& jobs, const std::vector<int64_t>& counts,
                                torch::Tensor& logits) {
  std::vector<infer::Sequence*> first(jobs.size(), nullptr);  // the rows that sample now
  std::vector<int> rows(jobs.size());
  for (size_t i = 0; i < jobs.size(); ++i) {
    Job& job = *jobs[i];
    rows[i] = job.row;
    job.seq.prefill_advance(static_cast<size_t>(counts[i]));
    if (!job.prefilled()) continue;
    prefilling_.erase(std::find(prefilling_.begin(), prefilling_.end(), &job));
    if (job.seq.budget() == 0) on_token(job, infer::TokenEvent{false, job.seq.finish("length"), {}});
    else first[i] = &job.seq;
  }
  infer::sample_rows(
      first, logits, [&](size_t i, const infer::TokenEvent& e) { on_token(*running_[rows[i]], e); },
      [&](size_t i, const std::exception& e) { fail_row(rows[i], e); });
  for (size_t i = 0; i < jobs.size(); ++i)
    if (first[i] && running_[rows[i]]) prefix_store(*running_[rows[i]], first[i]->request().prompt, *pool_, rows[i]);
}

// One token for every running row, over pool rows [0, n) where n is one past the last running row (rows
// are handed out lowest-first, so n is usually the number running): a lone request costs one row, not the
// whole pool, and takes the one-row gemv path.
void Scheduler::decode() {
  auto decoding = [&](int r) { return running_[r] && running_[r]->prefilled(); };
  int n = 0;
  for (int r = 0; r < rows_; ++r)
    if (decoding(r)) n = r + 1;
  std::vector<infer::Sequence*> rows(n, nullptr);  // rows still prefilling are padding, as free ones
  std::vector<int64_t> before(n);
  int live = 0;
  for (int r = 0; r < n; ++r) {
    if (decoding(r)) rows[r] = &running_[r]->seq;
    before[r] = pool_->lengths()[r];
    live += decoding(r);
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
      if (!rows[r]) continue;
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
  drop_row(row);
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
  drop_row(row);
}

// Frees row `row` and destroys its job (which may still be prefilling).
void Scheduler::drop_row(int row) {
  auto at = std::find(prefilling_.begin(), prefilling_.end(), running_[row].get());
  if (at != prefilling_.end()) prefilling_.erase(at);
  pool_->reset_row(row);
  running_[row].reset();
}

void Scheduler::fail_running(const std::string& message) {
  for (auto& job : running_)
    if (job) {
      job->completion->fail(message);
      drop_row(job->row);
    }
}

void Scheduler::publish_gauges() {
  EngineGauges g;
  g.rows = rows_;
  for (int r = 0; r < rows_; ++r) {
    g.active += running_[r] != nullptr;
    g.kv_used_tokens += pool_->lengths()[r];
  }
  g.kv_capacity_tokens = static_cast<int64_t>(rows_) * options_.ctx;
  g.kv_bytes = pool_->bytes();
  if (prefix_) g.prefix_cache = prefix_->stats();
  {
    std::lock_guard<std::mutex> lock(mu_);
    g.queue_depth = static_cast<int>(queue_.size());
    gauges_ = g;
  }
  if (metrics_) metrics_->gauges(g);
}

}  // namespace hearth::serve
