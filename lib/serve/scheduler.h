// The continuous-batching engine of hearth serve: one thread that owns the model's KV cache and runs every
// generation of every client, with the decode engine of lib/infer (infer::Sequence, infer::decode_step).
//
// The cache is a fixed pool of rows (--max-batch, shrunk to fit --kv-memory-mb), one sequence per row,
// each row --ctx tokens. Sequences wait in a bounded queue (--max-queue; submit() refuses beyond it).
// An idle scheduler that receives a request waits up to 25 ms for more to arrive (each within 5 ms of the one
// before), so that a burst of requests starts in one prefill. Each scheduler step:
//   1. drops cancelled sequences (client gone) and frees their rows;
//   2. admits waiting sequences, oldest first, as long as rows are free: each copies its prompt's cached leading
//      blocks into its row (the prefix cache, serve/prefix_cache.h) and starts prefilling the rest. A prompt that
//      shares a block with one being prefilled waits for that one's blocks to be cached instead of computing them
//      again;
//   3. prefills the prompts being prefilled, several in ONE forward over their rows (a batch right-padded to its
//      longest row, with a mask, each row with its own LoRA adapter): serve/prefill_plan.h shares a token budget
//      among them (oldest first; short prompts finish beside a long one, which cannot starve them nor they it).
//      The budget is --prefill-chunk when nothing is decoding or when more prompts wait for their first token
//      than sequences decode; otherwise it is what fits in --step-latency-ms after their decode (measured costs),
//      so that their inter-token latency stays bounded;
//      a prompt whose prefill completes samples its first token and gives its blocks to the prefix cache;
//   4. decodes one token for every decoding row in one forward over the pool, each row with its own LoRA
//      adapter, sampler, stop strings and budget (infer::decode_step).
// So new requests join between decode steps and finished ones leave (giving their prompt + reply blocks to the
// prefix cache). A sequence's budget is min(max_tokens, --ctx - prompt), the same rule as infer::generate() with
// the model's context; greedy output equals generate()'s (a prompt computed in other chunks, beside other rows or
// from cached blocks differs from generate's by float32 rounding only: docs/serve.md).
#pragma once

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "infer/sampler.h"
#include "infer/sequence.h"
#include "model/causal_lm.h"
#include "model/lora.h"
#include "serve/completion.h"
#include "serve/metrics.h"
#include "serve/prefix_cache.h"
#include "tokenizer/tokenizer.h"

namespace hearth::serve {

// One sequence to generate: a choice of a Completion.
struct SequenceSpec {
  infer::GenerationRequest request;  // prompt non-empty and shorter than --ctx; request.adapter is set by submit()
  std::shared_ptr<const model::LoraAdapter> adapter;  // nullptr: the base model; kept alive while it runs
};

// What clients are told once the model's mapped files changed underneath (io::mapped_files_damaged): every
// request fails with it, and the server answers nothing else until restarted.
inline constexpr const char* kModelFilesChanged =
    "The model's files changed on disk while the server was using them; restart hearth serve (the details are in "
    "its log)";

struct SchedulerOptions {
  int max_batch = 8;
  int ctx = 512;  // tokens per row
  int max_queue = 64;
  int prefill_chunk = 512;    // prefill tokens per step (rows × longest row), when nothing is decoding
  int step_latency_ms = 150;  // a step that decodes adds prefill up to about this long in all (>= 1)
  size_t kv_memory_bytes = size_t(4) << 30;  // the rows first; the prefix cache gets what they leave
  bool prefix_cache = true;
  int prefix_block_tokens = 16;
};

class Scheduler {
 public:
  // Sizes the pool (throws ConfigError when not even one row fits the memory budget, ResourceError when
  // the allocation fails) and starts the thread. The model and tokenizer must outlive the scheduler.
  Scheduler(const model::CausalLM& model, const tokenizer::Tokenizer& tokenizer, const SchedulerOptions& options,
            Metrics* metrics);
  ~Scheduler();  // stop()

  // Queues the sequences of `completion` (specs[i] is choice i), all or none: false when the queue has no
  // room for all of them (the caller answers 429) or the scheduler is stopping. Thread-safe.
  bool submit(const std::shared_ptr<Completion>& completion, std::vector<SequenceSpec> specs);
  // Fails every queued and running sequence with `message` (shutdown deadline). Thread-safe.
  void abort_all(const std::string& message);
  // Stops the thread; anything unfinished fails with "server shutting down". Thread-safe, idempotent.
  void stop();

  int rows() const { return rows_; }
  // Blocks the prefix cache may hold (0: off, or no memory left for it).
  int64_t prefix_capacity_blocks() const { return prefix_capacity_; }
  int ctx() const { return options_.ctx; }
  // Queue depth and cache use, as of the last step. Thread-safe.
  EngineGauges gauges() const;

 private:
  struct Job;
  class StepCosts;
  void run();
  void gather(std::unique_lock<std::mutex>& lock);
  void step();
  void admit();
  bool waits_for_shared_prefix(const Job& job) const;
  int64_t prefill_budget(int decoding) const;
  int prefill(int64_t budget);
  torch::Tensor prefill_forward(const std::vector<Job*>& jobs, const std::vector<int64_t>& counts);
  void prefill_advance(const std::vector<Job*>& jobs, const std::vector<int64_t>& counts, torch::Tensor& logits);
  void decode();
  void on_token(Job& job, const infer::TokenEvent& event);
  void release(Job& job);
  void drop_row(int row);
  void prefix_restore(Job& job);
  void prefix_store(const Job& job, const std::vector<infer::TokenId>& tokens, const model::KvCache& cache, int row);
  void drop_cancelled();
  void fail_running(const std::string& message);
  void fail_row(int row, const std::exception& e);
  void publish_gauges();

  const model::CausalLM& model_;
  const tokenizer::Tokenizer& tokenizer_;
  SchedulerOptions options_;
  Metrics* metrics_;
  int rows_ = 0;
  int64_t prefix_capacity_ = 0;

  // Shared with submitters (mu_).
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<Job>> queue_;
  bool stopping_ = false;
  std::string abort_message_;
  bool damage_logged_ = false;  // scheduler thread only
  EngineGauges gauges_;

  // Owned by the scheduler thread.
  std::unique_ptr<model::KvCache> pool_;
  std::unique_ptr<PrefixCache> prefix_;        // nullptr: off
  std::vector<std::unique_ptr<Job>> running_;  // [rows_], nullptr = free; prefilling or decoding
  std::vector<Job*> prefilling_;               // the rows' jobs still prefilling, oldest first
  std::unique_ptr<StepCosts> costs_;
  std::thread thread_;
};

}  // namespace hearth::serve
