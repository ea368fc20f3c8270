// hearth serve's settings: one struct filled from a YAML --config file and then from command-line flags
// (a flag given on the command line wins over the same key in the file).
//
// YAML keys are the flag names in snake_case (docs/serve.md lists every one); `adapters` is a map
// name -> folder. This file only parses and validates; it loads no model and opens no socket.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace hearth::serve {

// Upper bounds checked by server_config_validate: more rows, queue slots or connections (each has its thread) than
// any machine hearth runs on can use (they used to abort the server at the first request instead of failing at
// startup).
constexpr int kMaxBatchMax = 4096, kMaxQueueMax = 1'000'000, kMaxConnectionsMax = 16384;
// The default --max-connections: max(1024, max_batch + max_queue + 16), capped at kMaxConnectionsMax.
constexpr int kDefaultConnections = 1024;

struct ServerConfig {
  std::string model;                            // model folder (required)
  std::string model_name;                       // name clients use for the base model; default: folder name
  std::map<std::string, std::string> adapters;  // adapter name -> folder (PEFT, or a folder with `latest`)
  std::string host = "127.0.0.1";
  int port = 8080;
  std::string api_keys;             // key file; empty: no authentication (loopback only)
  bool insecure = false;            // allow a non-loopback host without keys
  int max_batch = 8;                // rows of the KV-cache pool (sequences decoded together)
  int ctx = 0;                      // tokens per row; 0: min(model context, 4096)
  int max_queue = 64;               // sequences waiting for a row; beyond: 429
  int kv_memory_mb = 4096;          // KV-cache budget; the pool shrinks to fit (startup)
  int prefill_chunk = 512;          // most prompt tokens prefilled per scheduler step
  int step_latency_ms = 150;        // a step that also decodes adds prefill up to about this long
  bool prefix_cache = true;         // reuse the keys and values of prompt prefixes (within kv_memory_mb)
  int max_tokens_limit = 4096;      // largest max_tokens a request may ask for
  size_t max_body_bytes = 1 << 20;  // request body limit (413 beyond)
  int header_timeout_s = 10;        // time to receive a whole request (line, headers, body) from its first byte
  int idle_timeout_s = 5;           // keep-alive idle time before the server closes
  int shutdown_timeout_s = 30;      // SIGTERM: in-flight requests get this long to finish
  double watch_interval_s = 5;      // how often adapters' `latest` pointers are checked; 0: off
  int max_connections = 0;          // open connections in all (one thread each); 0: server_connections_max()
  int max_connections_per_client = 256;  // open connections from one address
  std::vector<std::string> cors_origins;  // web origins (scheme://host[:port]) whose pages may call the API; none: off
  std::string dtype = "float32";
};

// The number of connections a server with this config admits at once (--max-connections, or its default).
int server_connections_max(const ServerConfig& config);

// Reads a YAML file into `config` (only the keys present). Throws IoError if unreadable, ConfigError
// "<file>: <key>: <what>" for unknown keys and wrong types.
void server_config_load_yaml(const std::filesystem::path& path, ServerConfig& config);

// Parses an --adapter value "NAME=DIR"; throws ConfigError naming the flag.
std::pair<std::string, std::string> adapter_spec_parse(const std::string& spec);

// True for names clients may use: 1-64 of [A-Za-z0-9._-], not starting with '.'.
bool model_name_valid(const std::string& name);

// Checks ranges and the loopback rule (non-loopback host needs api_keys or insecure). Throws ConfigError.
void server_config_validate(const ServerConfig& config);

// True for 127.0.0.0/8, ::1 and "localhost".
bool host_is_loopback(const std::string& host);

// Without API keys the server trusts whoever can reach it — on a loopback address, the local user. Web pages the
// user opens can reach it too (a cross-site POST, or DNS rebinding: a page whose name resolves to 127.0.0.1), so a
// keyless loopback server only answers requests whose Host header names a loopback host (or `bound_host`) and
// whose Origin, when sent, is the server itself (http://localhost|127.x|[::1]:PORT). Returns "" when the request
// may proceed, else why not (for a 403). Applies nothing when keys are configured or the host is not loopback
// (--insecure: the user chose to trust the network).
std::string keyless_request_refusal(const std::string& host_header, const std::string& origin_header,
                                    const std::string& bound_host, int port,
                                    const std::vector<std::string>& cors_origins = {});

// True when `origin` (an Origin header) is one of `cors_origins` (--cors-origin), compared as browsers send it:
// exact, scheme and host case-insensitive.
bool cors_origin_allowed(const std::string& origin, const std::vector<std::string>& cors_origins);

}  // namespace hearth::serve
