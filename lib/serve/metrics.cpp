#include "serve/metrics.h"

#include <fmt/format.h>

namespace hearth::serve {

void Histogram::observe(double v) {
  size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i]) ++i;
  ++counts_[i];
  sum_ += v;
  ++count_;
}

void Histogram::write(std::string& out, const std::string& name) const {
  uint64_t cumulative = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cumulative += counts_[i];
    out += fmt::format("{}_bucket{{le=\"{}\"}} {}\n", name, bounds_[i], cumulative);
  }
  out += fmt::format("{}_bucket{{le=\"+Inf\"}} {}\n{}_sum {}\n{}_count {}\n", name, count_, name, sum_, name, count_);
}

Metrics::Metrics()
    : latency_({0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120}),
      ttft_({0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}),
      itl_({0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1}),
      batch_size_({1, 2, 4, 8, 16, 32, 64, 128}),
      prefill_tokens_({0, 16, 64, 256, 1024, 4096}) {}

void Metrics::request_done(const std::string& route, int status, double seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  ++requests_[{route, status}];
  latency_.observe(seconds);
}

void Metrics::tokens(size_t prompt, size_t completion) {
  std::lock_guard<std::mutex> lock(mu_);
  prompt_tokens_ += prompt;
  completion_tokens_ += completion;
}

void Metrics::time_to_first_token(double s) {
  std::lock_guard<std::mutex> lock(mu_);
  ttft_.observe(s);
}

void Metrics::inter_token(double s) {
  std::lock_guard<std::mutex> lock(mu_);
  itl_.observe(s);
}

void Metrics::batch_step(int rows_decoding, int prefill_tokens) {
  std::lock_guard<std::mutex> lock(mu_);
  ++steps_;
  batch_size_.observe(rows_decoding);
  prefill_tokens_.observe(prefill_tokens);
}

void Metrics::rejected(const std::string& reason) {
  std::lock_guard<std::mutex> lock(mu_);
  ++rejected_[reason];
}

void Metrics::connection_open(int delta) {
  std::lock_guard<std::mutex> lock(mu_);
  connections_open_ += delta;
}

void Metrics::connection_refused(const std::string& reason) {
  std::lock_guard<std::mutex> lock(mu_);
  ++connections_refused_[reason];
}

void Metrics::request_timed_out() {
  std::lock_guard<std::mutex> lock(mu_);
  ++request_timeouts_;
}

void Metrics::disconnect() {
  std::lock_guard<std::mutex> lock(mu_);
  ++disconnects_;
}

void Metrics::adapter_reload(bool ok) {
  std::lock_guard<std::mutex> lock(mu_);
  ++(ok ? reloads_ok_ : reloads_failed_);
}

void Metrics::gauges(const EngineGauges& g) {
  std::lock_guard<std::mutex> lock(mu_);
  gauges_ = g;
}

void Metrics::adapters_loaded(int n) {
  std::lock_guard<std::mutex> lock(mu_);
  adapters_ = n;
}

std::string Metrics::render() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string o;
  auto head = [&](const char* name, const char* type, const char* help) {
    o += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  };
  head("hearth_requests_total", "counter", "HTTP requests answered, by route and status code.");
  for (const auto& [k, n] : requests_)
    o += fmt::format("hearth_requests_total{{route=\"{}\",code=\"{}\"}} {}\n", k.first, k.second, n);
  head("hearth_requests_rejected_total", "counter", "Requests refused before generation, by reason.");
  for (const auto& [reason, n] : rejected_)
    o += fmt::format("hearth_requests_rejected_total{{reason=\"{}\"}} {}\n", reason, n);
  head("hearth_connections_refused_total", "counter",
       "Connections answered 503 and closed: too many open in all (total) or from one address (per_client).");
  for (const auto& [reason, n] : connections_refused_)
    o += fmt::format("hearth_connections_refused_total{{reason=\"{}\"}} {}\n", reason, n);
  head("hearth_request_timeouts_total", "counter", "Connections closed because a request did not arrive whole in time.");
  o += fmt::format("hearth_request_timeouts_total {}\n", request_timeouts_);
  head("hearth_prompt_tokens_total", "counter", "Prompt tokens processed.");
  o += fmt::format("hearth_prompt_tokens_total {}\n", prompt_tokens_);
  head("hearth_completion_tokens_total", "counter", "Tokens generated.");
  o += fmt::format("hearth_completion_tokens_total {}\n", completion_tokens_);
  head("hearth_client_disconnects_total", "counter", "Generations stopped because the client went away.");
  o += fmt::format("hearth_client_disconnects_total {}\n", disconnects_);
  head("hearth_adapter_reloads_total", "counter", "Adapter (re)loads by the admin endpoint or the latest watcher.");
  o += fmt::format(
      "hearth_adapter_reloads_total{{result=\"ok\"}} {}\nhearth_adapter_reloads_total{{result=\"error\"}} {}\n",
      reloads_ok_, reloads_failed_);
  head("hearth_scheduler_steps_total", "counter", "Forward steps run by the scheduler.");
  o += fmt::format("hearth_scheduler_steps_total {}\n", steps_);
  head("hearth_request_duration_seconds", "histogram", "Time from request to last byte.");
  latency_.write(o, "hearth_request_duration_seconds");
  head("hearth_time_to_first_token_seconds", "histogram", "Time from request to its first generated token.");
  ttft_.write(o, "hearth_time_to_first_token_seconds");
  head("hearth_inter_token_latency_seconds", "histogram", "Time between consecutive tokens of one sequence.");
  itl_.write(o, "hearth_inter_token_latency_seconds");
  head("hearth_batch_size", "histogram", "Sequences decoded together per scheduler step.");
  batch_size_.write(o, "hearth_batch_size");
  head("hearth_prefill_tokens_per_step", "histogram", "Prompt tokens prefilled per scheduler step.");
  prefill_tokens_.write(o, "hearth_prefill_tokens_per_step");
  auto gauge = [&](const char* name, const char* help, double v) {
    head(name, "gauge", help);
    o += fmt::format("{} {}\n", name, v);
  };
  gauge("hearth_queue_depth", "Sequences waiting for a KV-cache row.", gauges_.queue_depth);
  gauge("hearth_active_sequences", "Sequences holding a KV-cache row.", gauges_.active);
  gauge("hearth_kv_cache_rows", "Rows in the KV-cache pool (--max-batch within --kv-memory-mb).", gauges_.rows);
  gauge("hearth_kv_cache_used_tokens", "KV-cache slots in use.", static_cast<double>(gauges_.kv_used_tokens));
  gauge("hearth_kv_cache_capacity_tokens", "KV-cache slots in all.", static_cast<double>(gauges_.kv_capacity_tokens));
  gauge("hearth_kv_cache_usage_ratio", "Used / capacity.",
        gauges_.kv_capacity_tokens ? static_cast<double>(gauges_.kv_used_tokens) / gauges_.kv_capacity_tokens : 0.0);
  gauge("hearth_kv_cache_bytes", "Memory held by the KV cache.", static_cast<double>(gauges_.kv_bytes));
  const auto& pc = gauges_.prefix_cache;
  auto counter = [&](const char* name, const char* help, uint64_t v) {
    head(name, "counter", help);
    o += fmt::format("{} {}\n", name, v);
  };
  counter("hearth_prefix_cache_hit_tokens_total", "Prompt tokens whose keys and values came from the prefix cache.",
          pc.hit_tokens);
  counter("hearth_prefix_cache_miss_tokens_total",
          "Prompt tokens prefilled with the prefix cache on (not cached, or a prompt's last token).", pc.miss_tokens);
  counter("hearth_prefix_cache_evictions_total", "Prefix-cache blocks evicted (least recently used) to make room.",
          pc.evictions);
  gauge("hearth_prefix_cache_blocks", "Token blocks held by the prefix cache.", static_cast<double>(pc.blocks));
  gauge("hearth_prefix_cache_capacity_blocks", "Most blocks the prefix cache may hold (within --kv-memory-mb).",
        static_cast<double>(pc.capacity_blocks));
  gauge("hearth_prefix_cache_bytes", "Memory held by the prefix cache's blocks.", static_cast<double>(pc.bytes));
  gauge("hearth_connections_open", "HTTP connections open (admitted).", static_cast<double>(connections_open_));
  gauge("hearth_adapters_loaded", "LoRA adapters being served.", adapters_);
  return o;
}

}  // namespace hearth::serve
