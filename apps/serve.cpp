// hearth serve: an OpenAI-compatible HTTP server for a base model and the person's LoRA adapters
// (docs/serve.md). Settings come from --config (YAML) and flags (flags win); this file loads everything,
// starts the scheduler and the HTTP server, follows adapters' `latest` pointers, and shuts down gracefully on
// SIGTERM/SIGINT (exit 0 after in-flight requests finish or --shutdown-timeout passes).
// Exit codes: 2 bad flags/config (also: non-loopback --host without --api-keys), 3 unreadable files,
// 4 malformed model/adapter, 5 port in use or out of memory.
#include <chrono>
#include <thread>

#include <fmt/format.h>

#include "apps/commands.h"
#include "core/error.h"
#include "core/log.h"
#include "core/signals.h"
#include "infer/generator.h"
#include "io/hf_cache.h"
#include "model/causal_lm.h"
#include "model/compute_threads.h"
#include "serve/http_server.h"
#include "serve/scheduler.h"
#include "serve/server_config.h"
#include "tokenizer/tokenizer.h"

namespace hearth::app {
namespace {

struct ServeOptions {
  std::string config_file;
  std::vector<std::string> adapter_specs;
  serve::ServerConfig flags;
  CLI::App* cmd = nullptr;
};

// The YAML file's settings, then every flag given on the command line on top.
serve::ServerConfig config_merge(const ServeOptions& o) {
  serve::ServerConfig c;
  if (!o.config_file.empty()) serve::server_config_load_yaml(o.config_file, c);
  const auto& f = o.flags;
  auto given = [&](const char* flag) { return o.cmd->count(flag) > 0; };
  if (given("--model")) c.model = f.model;
  if (given("--model-name")) c.model_name = f.model_name;
  if (given("--host")) c.host = f.host;
  if (given("--port")) c.port = f.port;
  if (given("--api-keys")) c.api_keys = f.api_keys;
  if (given("--insecure")) c.insecure = f.insecure;
  if (given("--max-batch")) c.max_batch = f.max_batch;
  if (given("--ctx")) c.ctx = f.ctx;
  if (given("--max-queue")) c.max_queue = f.max_queue;
  if (given("--kv-memory-mb")) c.kv_memory_mb = f.kv_memory_mb;
  if (given("--prefill-chunk")) c.prefill_chunk = f.prefill_chunk;
  if (given("--step-latency-ms")) c.step_latency_ms = f.step_latency_ms;
  if (given("--prefix-cache")) c.prefix_cache = f.prefix_cache;
  if (given("--max-tokens-limit")) c.max_tokens_limit = f.max_tokens_limit;
  if (given("--max-body-bytes")) c.max_body_bytes = f.max_body_bytes;
  if (given("--header-timeout")) c.header_timeout_s = f.header_timeout_s;
  if (given("--idle-timeout")) c.idle_timeout_s = f.idle_timeout_s;
  if (given("--shutdown-timeout")) c.shutdown_timeout_s = f.shutdown_timeout_s;
  if (given("--watch-interval")) c.watch_interval_s = f.watch_interval_s;
  if (given("--max-connections")) c.max_connections = f.max_connections;
  if (given("--cors-origin")) c.cors_origins = f.cors_origins;
  if (given("--max-connections-per-client")) c.max_connections_per_client = f.max_connections_per_client;
  if (given("--dtype")) c.dtype = f.dtype;
  for (const auto& spec : o.adapter_specs) {
    auto [name, dir] = serve::adapter_spec_parse(spec);
    c.adapters[name] = dir;
  }
  serve::server_config_validate(c);
  return c;
}

// Serves until SIGINT/SIGTERM; polls the adapters' `latest` pointers meanwhile.
void serve_until_signal(serve::ServeState& state, serve::HttpServer& http) {
  std::thread listener([&http] { http.listen(); });
  const auto interval = std::chrono::duration<double>(state.config.watch_interval_s);
  auto next_poll = std::chrono::steady_clock::now() + interval;
  while (!interrupt_requested()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (state.config.watch_interval_s > 0 && std::chrono::steady_clock::now() >= next_poll) {
      auto [ok, failed] = state.adapters.poll();
      for (int i = 0; i < ok; ++i) state.metrics.adapter_reload(true);
      for (int i = 0; i < failed; ++i) state.metrics.adapter_reload(false);
      next_poll = std::chrono::steady_clock::now() + interval;
    }
  }
  log::info("signal received: finishing in-flight requests (up to {} s), then exiting",
            state.config.shutdown_timeout_s);
  http.shutdown(state.config.shutdown_timeout_s);
  listener.join();
  state.scheduler.stop();
  log::info("stopped");
}

void run_serve(const ServeOptions& o, const GlobalOptions& g) {
  // The scheduler's thread alone runs the model's parallel loops (model/compute_threads.h): the model loads on a thread
  // that then ends, and this one, which waits for signals and reloads adapters, stays serial.
  model::compute_serially_on_this_thread();
  serve::ServerConfig c = config_merge(o);
  c.model = model_resolve(c.model);  // a name in the YAML file too
  model_dir_check(c.model);
  auto keys = c.api_keys.empty() ? serve::ApiKeys() : serve::ApiKeys::load(c.api_keys);
  model::LoadOptions load{model::device_parse(g.device, "--device"), model::dtype_parse(c.dtype, "--dtype")};
  auto tokenizer = tokenizer::Tokenizer::load(c.model);
  std::unique_ptr<model::CausalLM> model_owner;
  model::run_on_passing_thread([&] { model_owner = model::causal_lm_load(c.model, load); });
  const model::CausalLM& model = *model_owner;
  infer::vocab_check(tokenizer, model.config(), c.model);
  const int model_ctx = static_cast<int>(model.config().max_position_embeddings);
  if (c.ctx > model_ctx)
    throw ConfigError(fmt::format("--ctx: {} exceeds the model's context of {}", c.ctx, model_ctx));
  if (c.ctx == 0) c.ctx = std::min(model_ctx, 4096);
  std::string name = c.model_name;
  if (name.empty()) {  // the folder's name, or for a cached model the name's part after the org ("SmolLM2-135M")
    const auto repo = io::hf_repo_of_path(c.model);
    name = repo ? repo->substr(repo->find('/') + 1) : std::filesystem::path(c.model).lexically_normal().filename().string();
  }
  if (name.empty() || !serve::model_name_valid(name)) name = "base";
  if (c.adapters.count(name)) throw ConfigError(fmt::format("--adapter: '{}' is the base model's name", name));

  serve::AdapterRegistry adapters(model.config(), model.device());
  for (const auto& [aname, dir] : c.adapters) {
    auto info = adapters.load(aname, dir);
    log::info("adapter '{}' loaded from {} (r={}, {} parameters)", aname, info.resolved, info.r, info.parameters);
  }
  serve::Metrics metrics;
  serve::SchedulerOptions so;
  so.max_batch = c.max_batch;
  so.ctx = c.ctx;
  so.max_queue = c.max_queue;
  so.prefill_chunk = c.prefill_chunk;
  so.step_latency_ms = c.step_latency_ms;
  so.kv_memory_bytes = static_cast<size_t>(c.kv_memory_mb) << 20;
  so.prefix_cache = c.prefix_cache;
  serve::Scheduler scheduler(model, tokenizer, so, &metrics);
  serve::ServeState state{c,         model,    tokenizer, name,   c.model, infer::stop_ids_default(model, tokenizer),
                          scheduler, adapters, keys,      metrics};
  serve::HttpServer http(state);
  int port = http.bind();
  log::info("serving '{}' with {} adapter(s), {} rows × {} tokens, prefix cache {}; listening on http://{}:{}{}", name,
            adapters.size(), scheduler.rows(), c.ctx,
            c.prefix_cache ? fmt::format("{} blocks", scheduler.prefix_capacity_blocks()) : std::string("off"), c.host,
            port, keys.enabled() ? " (API keys required)" : "");
  if (g.json) json_print({{"event", "listening"}, {"host", c.host}, {"port", port}});
  serve_until_signal(state, http);
}

}  // namespace

void add_serve(CLI::App& app, const GlobalOptions& g, Runner& run) {
  auto o = std::make_shared<ServeOptions>();
  auto* cmd = app.add_subcommand("serve", "Serve the model and its LoRA adapters over the OpenAI HTTP API");
  o->cmd = cmd;
  auto& f = o->flags;
  cmd->add_option("--config", o->config_file, "YAML file with the same settings (flags given here win)");
  model_option_add(cmd, f.model, "Model folder (Hugging Face layout)");
  cmd->add_option("--model-name", f.model_name, "Name clients use for the base model (default: the folder's name)");
  cmd->add_option("--adapter", o->adapter_specs, "NAME=DIR: serve a LoRA adapter (repeatable; DIR may hold `latest`)");
  cmd->add_option("--host", f.host, "Address to listen on (default 127.0.0.1)");
  cmd->add_option("--port", f.port, "Port (default 8080; 0 = any free port)");
  cmd->add_option("--api-keys", f.api_keys, "Key file: one key per line, optionally 'KEY model1,model2'");
  cmd->add_flag("--insecure", f.insecure, "Allow a non-loopback --host without --api-keys");
  cmd->add_option("--max-batch", f.max_batch, "Sequences generated together (default 8)");
  cmd->add_option("--ctx", f.ctx, "Tokens per sequence: prompt + reply (default: model's, at most 4096)");
  cmd->add_option("--max-queue", f.max_queue, "Sequences that may wait for a slot; beyond: HTTP 429 (default 64)");
  cmd->add_option("--kv-memory-mb", f.kv_memory_mb, "KV-cache memory budget in MiB (default 4096)");
  cmd->add_option("--prefill-chunk", f.prefill_chunk,
                  "Most prompt tokens prefilled per step, several prompts together (default 512)");
  cmd->add_option("--step-latency-ms", f.step_latency_ms,
                  "While sequences decode, a step adds prefill only up to about this long in all, unless more prompts wait "
                  "than sequences decode (default 150)");
  cmd->add_flag("--prefix-cache,!--no-prefix-cache", f.prefix_cache,
                "Reuse the cached keys/values of prompt prefixes shared by requests (default on; within "
                "--kv-memory-mb)");
  cmd->add_option("--max-tokens-limit", f.max_tokens_limit, "Largest max_tokens a request may ask for (default 4096)");
  cmd->add_option("--max-body-bytes", f.max_body_bytes, "Largest request body; beyond: HTTP 413 (default 1 MiB)");
  cmd->add_option("--header-timeout", f.header_timeout_s,
                  "Seconds to receive a whole request from its first byte (default 10)");
  cmd->add_option("--idle-timeout", f.idle_timeout_s, "Seconds an idle keep-alive connection stays open (default 5)");
  cmd->add_option("--shutdown-timeout", f.shutdown_timeout_s,
                  "SIGTERM: seconds in-flight requests may take (default 30)");
  cmd->add_option("--watch-interval", f.watch_interval_s,
                  "Seconds between checks of adapters' `latest`; 0 = off (default 5)");
  cmd->add_option("--max-connections", f.max_connections,
                  "Open connections in all, one thread each; beyond: HTTP 503 (default max(1024, max-batch + "
                  "max-queue + 16))");
  cmd->add_option("--cors-origin", f.cors_origins,
                  "A web origin (scheme://host[:port]) whose pages may call the API from a browser (repeatable; "
                  "default: none, CORS off)");
  cmd->add_option("--max-connections-per-client", f.max_connections_per_client,
                  "Open connections from one address; beyond: HTTP 503 (default 256)");
  cmd->add_option("--dtype", f.dtype, "float32|bfloat16 (default float32)");
  cmd->callback([o, &g, &run] { run = [o, &g] { run_serve(*o, g); }; });
}

}  // namespace hearth::app
