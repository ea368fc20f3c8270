// Server metrics in the Prometheus text exposition format (version 0.0.4), served at GET /metrics.
//
// Counters, gauges and histograms with fixed buckets; names and meanings are listed in docs/serve.md.
// Every method is thread-safe (one mutex; updates are a few additions).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace hearth::serve {

// A histogram with fixed upper bounds (seconds, or counts for the batch size).
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}
  void observe(double v);
  // Appends "<name>_bucket{le=...} ..", "_sum", "_count" lines. Not thread-safe (Metrics locks).
  void write(std::string& out, const std::string& name) const;

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;
  double sum_ = 0;
  uint64_t count_ = 0;
};

// The prefix cache's counters and size (serve/prefix_cache.h), all zero when it is off.
struct PrefixCacheStats {
  uint64_t hit_tokens = 0;   // prompt tokens whose keys and values were copied from the cache
  uint64_t miss_tokens = 0;  // prompt tokens the model prefilled (not cached, or a prompt's last token)
  uint64_t evictions = 0;    // blocks dropped (least recently used) to make room
  int64_t blocks = 0;        // blocks held
  int64_t capacity_blocks = 0;
  size_t bytes = 0;  // memory the blocks hold
};

// Gauges the scheduler owns, read when /metrics is rendered.
struct EngineGauges {
  int queue_depth = 0;         // sequences waiting for a row
  int active = 0;              // sequences holding a row
  int rows = 0;                // rows in the pool
  int64_t kv_used_tokens = 0;  // slots in use over all rows
  int64_t kv_capacity_tokens = 0;
  size_t kv_bytes = 0;
  PrefixCacheStats prefix_cache;  // its counters are the scheduler's running totals
};

class Metrics {
 public:
  Metrics();
  // One finished HTTP request: route ("/v1/chat/completions", ...) and status code.
  void request_done(const std::string& route, int status, double seconds);
  void tokens(size_t prompt, size_t completion);
  void time_to_first_token(double seconds);
  void inter_token(double seconds);
  void batch_step(int rows_decoding, int prefill_tokens);
  void rejected(const std::string& reason);  // "queue_full", "draining", "auth", ...
  void disconnect();                         // a client went away mid-generation
  void connection_open(int delta);           // +1 admitted, -1 closed
  void connection_refused(const std::string& reason);  // "total", "per_client"
  void request_timed_out();                  // a request did not arrive whole within --header-timeout
  void adapter_reload(bool ok);
  void gauges(const EngineGauges& g);
  void adapters_loaded(int n);
  // The whole exposition text.
  std::string render() const;

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;
  std::map<std::string, uint64_t> rejected_, connections_refused_;
  int64_t connections_open_ = 0;
  uint64_t request_timeouts_ = 0;
  uint64_t prompt_tokens_ = 0, completion_tokens_ = 0, disconnects_ = 0, steps_ = 0;
  uint64_t reloads_ok_ = 0, reloads_failed_ = 0;
  int adapters_ = 0;
  EngineGauges gauges_;
  Histogram latency_, ttft_, itl_, batch_size_, prefill_tokens_;
};

}  // namespace hearth::serve
