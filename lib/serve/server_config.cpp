#include <algorithm>
#include "serve/server_config.h"

#include <arpa/inet.h>

#include <cctype>

#include <functional>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include "core/error.h"

namespace hearth::serve {
namespace {

template <typename T>
T yaml_get(const YAML::Node& node, const std::string& file, const std::string& key) {
  try {
    return node.as<T>();
  } catch (const YAML::Exception&) {
    throw ConfigError(fmt::format("{}: {}: wrong type; expected {}, got '{}'", file, key,
                                  std::is_same_v<T, std::string> ? "a string"
                                  : std::is_same_v<T, bool>      ? "true or false"
                                                                 : "a number",
                                  node.IsScalar() ? node.Scalar() : "a list or map"));
  }
}

}  // namespace

void server_config_load_yaml(const std::filesystem::path& path, ServerConfig& c) {
  const std::string file = path.string();
  YAML::Node root;
  try {
    root = YAML::LoadFile(file);
  } catch (const YAML::BadFile&) {
    throw IoError(fmt::format("--config: cannot read '{}'", file));
  } catch (const YAML::Exception& e) {
    throw ConfigError(fmt::format("{}:{}: {}", file, e.mark.line + 1, e.msg));
  }
  if (root.IsNull()) return;
  if (!root.IsMap()) throw ConfigError(fmt::format("{}: expected a map of settings at the top level", file));
  using Setter = std::function<void(const YAML::Node&, const std::string&)>;
  auto str = [&](std::string& v) {
    return Setter([&](const YAML::Node& n, const std::string& k) { v = yaml_get<std::string>(n, file, k); });
  };
  auto num = [&](int& v) {
    return Setter([&](const YAML::Node& n, const std::string& k) { v = yaml_get<int>(n, file, k); });
  };
  const std::map<std::string, Setter> setters = {
      {"model", str(c.model)},
      {"model_name", str(c.model_name)},
      {"host", str(c.host)},
      {"port", num(c.port)},
      {"api_keys", str(c.api_keys)},
      {"max_batch", num(c.max_batch)},
      {"ctx", num(c.ctx)},
      {"max_queue", num(c.max_queue)},
      {"kv_memory_mb", num(c.kv_memory_mb)},
      {"prefill_chunk", num(c.prefill_chunk)},
      {"step_latency_ms", num(c.step_latency_ms)},
      {"max_tokens_limit", num(c.max_tokens_limit)},
      {"header_timeout_s", num(c.header_timeout_s)},
      {"idle_timeout_s", num(c.idle_timeout_s)},
      {"shutdown_timeout_s", num(c.shutdown_timeout_s)},
      {"max_connections", num(c.max_connections)},
      {"cors_origins",
       [&](const YAML::Node& n, const std::string& k) {
         if (!n.IsSequence()) throw ConfigError(fmt::format("{}: {}: expected a list of origins", file, k));
         for (const auto& o : n) c.cors_origins.push_back(yaml_get<std::string>(o, file, k));
       }},
      {"max_connections_per_client", num(c.max_connections_per_client)},
      {"dtype", str(c.dtype)},
      {"insecure", [&](const YAML::Node& n, const std::string& k) { c.insecure = yaml_get<bool>(n, file, k); }},
      {"prefix_cache",
       [&](const YAML::Node& n, const std::string& k) { c.prefix_cache = yaml_get<bool>(n, file, k); }},
      {"watch_interval_s",
       [&](const YAML::Node& n, const std::string& k) { c.watch_interval_s = yaml_get<double>(n, file, k); }},
      {"max_body_bytes",
       [&](const YAML::Node& n, const std::string& k) { c.max_body_bytes = yaml_get<size_t>(n, file, k); }},
      {"adapters",
       [&](const YAML::Node& n, const std::string& k) {
         if (!n.IsMap()) throw ConfigError(fmt::format("{}: adapters: expected a map of name: folder", file));
         for (const auto& kv : n)
           c.adapters[kv.first.as<std::string>()] = yaml_get<std::string>(kv.second, file,
                                                                          "adapters." + kv.first.as<std::string>());
       }},
  };
  for (const auto& kv : root) {
    std::string key = kv.first.as<std::string>();
    auto it = setters.find(key);
    if (it == setters.end())
      throw ConfigError(fmt::format("{}: unknown key '{}' (docs/serve.md lists the keys)", file, key));
    it->second(kv.second, key);
  }
}

std::pair<std::string, std::string> adapter_spec_parse(const std::string& spec) {
  auto eq = spec.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == spec.size())
    throw ConfigError(fmt::format("--adapter: expected NAME=DIR, got '{}'", spec));
  std::string name = spec.substr(0, eq);
  if (!model_name_valid(name))
    throw ConfigError(fmt::format("--adapter: name '{}' is not valid; expected 1-64 of A-Z a-z 0-9 . _ -", name));
  return {name, spec.substr(eq + 1)};
}

int server_connections_max(const ServerConfig& c) {
  if (c.max_connections > 0) return c.max_connections;
  return std::min(std::max(kDefaultConnections, c.max_batch + c.max_queue + 16), kMaxConnectionsMax);
}

bool model_name_valid(const std::string& name) {
  if (name.empty() || name.size() > 64 || name[0] == '.') return false;
  for (char ch : name)
    if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '.' && ch != '_' && ch != '-') return false;
  return true;
}

bool host_is_loopback(const std::string& host) {
  if (host == "localhost" || host == "::1" || host == "[::1]") return true;
  // 127.0.0.0/8 as a dotted quad only: "127.0.0.1.evil.example" is a name anyone can point anywhere.
  in_addr addr{};
  return ::inet_pton(AF_INET, host.c_str(), &addr) == 1 && (ntohl(addr.s_addr) >> 24) == 127;
}

namespace {
// "host:port" / "[v6]:port" / "host" -> host (brackets kept for IPv6) and port (-1 when absent).
std::pair<std::string, int> host_port_split(const std::string& text) {
  std::string host = text;
  int port = -1;
  const auto colon = text.rfind(':');
  const auto bracket = text.rfind(']');
  if (colon != std::string::npos && (bracket == std::string::npos || colon > bracket)) {
    host = text.substr(0, colon);
    try {
      port = std::stoi(text.substr(colon + 1));
    } catch (const std::exception&) {
      port = -2;  // malformed
    }
  }
  for (auto& c : host) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return {host, port};
}
}  // namespace

bool cors_origin_allowed(const std::string& origin, const std::vector<std::string>& cors_origins) {
  auto lower = [](std::string s) {
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
  };
  if (origin.empty()) return false;
  for (const auto& o : cors_origins)
    if (lower(o) == lower(origin)) return true;
  return false;
}

std::string keyless_request_refusal(const std::string& host_header, const std::string& origin_header,
                                    const std::string& bound_host, int port,
                                    const std::vector<std::string>& cors_origins) {
  auto local = [&](const std::string& h) { return host_is_loopback(h) || h == bound_host; };
  if (!host_header.empty()) {
    auto [host, p] = host_port_split(host_header);
    if (!local(host) || p == -2)
      return fmt::format("Host '{}' is not this server's; without API keys only localhost names are answered",
                         host_header);
  }
  if (!origin_header.empty() && !cors_origin_allowed(origin_header, cors_origins)) {  // --cors-origin: let in
    const std::string prefix = "http://";
    if (origin_header.rfind(prefix, 0) != 0)
      return fmt::format("Origin '{}' may not call this server without API keys", origin_header);
    auto [host, p] = host_port_split(origin_header.substr(prefix.size()));
    if (!local(host) || (p != port && !(p == -1 && port == 80)))
      return fmt::format("Origin '{}' may not call this server without API keys (only its own pages may)",
                         origin_header);
  }
  return "";
}

void server_config_validate(const ServerConfig& c) {
  auto at_least = [](const char* flag, long long v, long long lo) {
    if (v < lo) throw ConfigError(fmt::format("{}: expected >= {}, got {}", flag, lo, v));
  };
  if (c.model.empty()) throw ConfigError("--model: required (on the command line or as `model:` in --config)");
  if (c.port < 0 || c.port > 65535) throw ConfigError(fmt::format("--port: expected 0-65535, got {}", c.port));
  auto at_most = [](const char* flag, long long v, long long hi) {
    if (v > hi) throw ConfigError(fmt::format("{}: expected <= {}, got {}", flag, hi, v));
  };
  at_least("--max-batch", c.max_batch, 1);
  at_most("--max-batch", c.max_batch, kMaxBatchMax);
  at_most("--max-queue", c.max_queue, kMaxQueueMax);
  at_most("--max-connections", c.max_connections, kMaxConnectionsMax);
  at_most("--max-connections-per-client", c.max_connections_per_client, kMaxConnectionsMax);
  at_least("--ctx", c.ctx, 0);
  at_least("--max-queue", c.max_queue, 0);
  at_least("--kv-memory-mb", c.kv_memory_mb, 1);
  at_least("--prefill-chunk", c.prefill_chunk, 16);
  if (c.step_latency_ms <= 0)
    throw ConfigError(fmt::format("--step-latency-ms: expected a time in milliseconds > 0, got {}", c.step_latency_ms));
  at_least("--max-tokens-limit", c.max_tokens_limit, 1);
  at_least("--max-body-bytes", static_cast<long long>(c.max_body_bytes), 1024);
  at_least("--header-timeout", c.header_timeout_s, 1);
  at_least("--idle-timeout", c.idle_timeout_s, 1);
  at_least("--shutdown-timeout", c.shutdown_timeout_s, 0);
  at_least("--max-connections", c.max_connections, 0);
  at_least("--max-connections-per-client", c.max_connections_per_client, 1);
  for (const auto& o : c.cors_origins) {
    const bool scheme = o.rfind("http://", 0) == 0 || o.rfind("https://", 0) == 0;
    const std::string rest = scheme ? o.substr(o.find("://") + 3) : "";
    if (!scheme || rest.empty() || rest.find('/') != std::string::npos || o == "*")
      throw ConfigError(fmt::format("--cors-origin: '{}' is not an origin; expected scheme://host[:port] such as "
                                    "http://localhost:3000 (no path, no wildcard)",
                                    o));
  }
  if (c.watch_interval_s < 0)
    throw ConfigError(fmt::format("--watch-interval: expected >= 0, got {}", c.watch_interval_s));
  if (!c.model_name.empty() && !model_name_valid(c.model_name))
    throw ConfigError(fmt::format("--model-name: '{}' is not valid; expected 1-64 of A-Z a-z 0-9 . _ -", c.model_name));
  for (const auto& [name, dir] : c.adapters)
    if (!model_name_valid(name)) throw ConfigError(fmt::format("adapters: name '{}' is not valid", name));
  if (!host_is_loopback(c.host) && c.api_keys.empty() && !c.insecure)
    throw ConfigError(fmt::format(
        "--host {}: refusing to listen on a non-loopback address without --api-keys; pass --insecure to do it anyway",
        c.host));
}

}  // namespace hearth::serve
