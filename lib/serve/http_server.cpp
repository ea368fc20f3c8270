#include "serve/http_server.h"

#include <sys/socket.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <vector>
#include <system_error>
#include <thread>

#include <httplib.h>
#include <fmt/format.h>

#include "core/error.h"
#include "core/log.h"
#include "io/json_file.h"
#include "io/mapped_file.h"
#include "serve/chat_page.h"
#include "serve/connection.h"
#include "serve/embeddings.h"
#include "serve/completions.h"
#include "serve/ollama_api.h"
#include "serve/ollama_models.h"
#include "serve/ollama_request.h"
#include "serve/request.h"

namespace hearth::serve {
namespace {

using json = nlohmann::json;

// Lets a warning through at most once per `period` (a flood of refused or slow connections must not flood the log).
class LogThrottle {
 public:
  explicit LogThrottle(std::chrono::seconds period) : period_(period) {}
  bool allow() {
    const int64_t now = std::chrono::steady_clock::now().time_since_epoch().count();
    int64_t last = last_.load();
    const int64_t gap = std::chrono::duration_cast<std::chrono::steady_clock::duration>(period_).count();
    return (last == 0 || now - last >= gap) && last_.compare_exchange_strong(last, now);
  }

 private:
  std::chrono::seconds period_;
  std::atomic<int64_t> last_{0};
};

// Ollama's routes (/api/...) answer errors in Ollama's shape, {"error": "..."}; every other route in OpenAI's.
bool ollama_path(const std::string& path) { return path.rfind("/api/", 0) == 0; }

void error_reply(const httplib::Request& req, httplib::Response& res, const ApiError& e) {
  res.status = e.status;
  const json body = ollama_path(req.path) ? ollama_error_body(e) : api_error_body(e);
  res.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
}

// The routes whose handler counts its own metrics (InFlight): the generation routes.
bool generation_route(const std::string& route) {
  return route == "/v1/chat/completions" || route == "/v1/completions" || route == "/api/chat" ||
         route == "/api/generate";
}

}  // namespace

struct HttpServer::Impl {
  explicit Impl(ServeState& s) : state(s) {}
  ServeState& state;
  Listener http;
  std::atomic<int> bound_port{0};  // set by bind()
  LogThrottle refusals_logged{std::chrono::seconds(10)}, timeouts_logged{std::chrono::seconds(10)};

  KeyScope authenticate(const httplib::Request& req, bool admin) const;
  void routes();
  void ollama_routes();
  void admin_list(httplib::Response& res);
  void admin_load(const httplib::Request& req, httplib::Response& res);
  void admin_unload(const httplib::Request& req, httplib::Response& res);
  // Wraps a handler: auth, ApiError -> error body, metrics for the non-completion routes.
  httplib::Server::Handler guarded(
      const std::string& route, bool auth, bool admin,
      std::function<void(const httplib::Request&, httplib::Response&, const KeyScope&)> fn);
};

KeyScope HttpServer::Impl::authenticate(const httplib::Request& req, bool admin) const {
  if (!state.keys.enabled()) return {};
  std::string token = bearer_token(req.get_header_value("Authorization"));
  if (token.empty())
    throw ApiError(401, "Missing API key: send 'Authorization: Bearer YOUR_KEY'", "invalid_request_error", "",
                   "invalid_api_key");
  auto scope = state.keys.find(token);
  if (!scope) throw ApiError(401, "Incorrect API key provided", "invalid_request_error", "", "invalid_api_key");
  if (admin && !scope->all)
    throw ApiError(403, "This API key is limited to certain models and may not use the admin endpoints",
                   "permission_error", "", "admin_not_permitted");
  return *scope;
}

httplib::Server::Handler HttpServer::Impl::guarded(
    const std::string& route, bool auth, bool admin,
    std::function<void(const httplib::Request&, httplib::Response&, const KeyScope&)> fn) {
  return [this, route, auth, admin, fn](const httplib::Request& req, httplib::Response& res) {
    const bool completion = generation_route(route);
    auto start = std::chrono::steady_clock::now();
    bool handled = false;  // the handler ran (a generation handler then counted the request itself)
    try {
      KeyScope scope = auth ? authenticate(req, admin) : KeyScope{};
      handled = true;
      fn(req, res, scope);
    } catch (const ApiError& e) {
      if (e.status == 401 || e.status == 403) state.metrics.rejected("auth");
      error_reply(req, res, e);
      if (completion && !handled) state.metrics.request_done(route, e.status, 0);
    } catch (const std::exception& e) {
      // A bug or an unexpected failure: the details go to the log, not to the client, and the 500 is counted as
      // the status it is (completions_handle counts its own).
      log::error("{} {}: {}", req.method, req.path, e.what());
      error_reply(req, res,
                  ApiError(500, "Internal server error (the details are in the server's log)", "server_error"));
    }
    if (!completion)
      state.metrics.request_done(route, res.status == -1 ? 200 : res.status,
                                 std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  };
}

void HttpServer::Impl::routes() {
  auto& s = state;
  http.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    const bool broken = !io::mapped_files_check().empty();
    json body = {{"status", broken ? "error" : state.draining ? "draining" : "ok"},
                 {"model", state.model_name},
                 {"adapters", state.adapters.size()}};
    if (broken) body["error"] = kModelFilesChanged;
    res.status = broken || state.draining ? 503 : 200;
    res.set_content(body.dump(), "application/json");
  });
  http.Get("/metrics", guarded("/metrics", true, false, [&s](const auto&, auto& res, const auto&) {
             s.metrics.adapters_loaded(static_cast<int>(s.adapters.size()));
             res.set_content(s.metrics.render(), "text/plain; version=0.0.4; charset=utf-8");
           }));
  // The models a key may use: the base model and every adapter, as OpenAI model objects.
  auto models = [&s](const KeyScope& scope) {
    json data = json::array();
    auto add = [&](const std::string& id, const json& extra) {
      if (!scope.allows(id)) return;
      json m = {{"id", id}, {"object", "model"}, {"created", 0}, {"owned_by", "hearth"}};
      m.update(extra);
      data.push_back(m);
    };
    add(s.model_name, {{"root", s.model_name}, {"parent", nullptr}});
    for (const auto& a : s.adapters.list())
      add(a.name, {{"created", a.loaded_at}, {"root", s.model_name}, {"parent", s.model_name}});
    return data;
  };
  http.Get("/v1/models", guarded("/v1/models", true, false, [models](const auto&, auto& res, const KeyScope& scope) {
             res.set_content(json{{"object", "list"}, {"data", models(scope)}}.dump(), "application/json");
           }));
  http.Get(R"(/v1/models/([^/]+))",
           guarded("/v1/models", true, false, [models](const auto& req, auto& res, const KeyScope& scope) {
             const std::string id = req.matches[1];
             for (const auto& m : models(scope))
               if (m["id"] == id) return res.set_content(m.dump(), "application/json");
             throw ApiError(404, fmt::format("The model '{}' does not exist", id), "invalid_request_error", "model",
                            "model_not_found");
           }));
  http.Post("/v1/chat/completions",
            guarded("/v1/chat/completions", true, false, [&s](const auto& req, auto& res, const KeyScope& scope) {
              completions_handle(s, req, res, Endpoint::kChat, scope);
            }));
  http.Post("/v1/completions",
            guarded("/v1/completions", true, false, [&s](const auto& req, auto& res, const KeyScope& scope) {
              completions_handle(s, req, res, Endpoint::kCompletions, scope);
            }));
  http.Post("/v1/embeddings",
            guarded("/v1/embeddings", true, false, [&s](const auto& req, auto& res, const KeyScope& scope) {
              embeddings_handle(s, req, res, scope);
            }));
  ollama_routes();
  http.Get("/admin/adapters",
           guarded("/admin/adapters", true, true, [this](const auto&, auto& res, const auto&) { admin_list(res); }));
  http.Post("/admin/adapters", guarded("/admin/adapters", true, true,
                                       [this](const auto& req, auto& res, const auto&) { admin_load(req, res); }));
  http.Delete(R"(/admin/adapters/([A-Za-z0-9._-]+))",
              guarded("/admin/adapters", true, true,
                      [this](const auto& req, auto& res, const auto&) { admin_unload(req, res); }));
  http.Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(chat_page_html(), "text/html; charset=utf-8");
  });
}

// Ollama's API (ollama_api.h, ollama_models.h), with the same keys and scopes as the OpenAI routes.
void HttpServer::Impl::ollama_routes() {
  auto& s = state;
  http.Get("/api/version", guarded("/api/version", true, false,
                                   [](const auto&, auto& res, const auto&) { ollama_version_handle(res); }));
  http.Get("/api/tags", guarded("/api/tags", true, false, [&s](const auto&, auto& res, const KeyScope& scope) {
             ollama_tags_handle(s, res, scope);
           }));
  http.Post("/api/show", guarded("/api/show", true, false, [&s](const auto& req, auto& res, const KeyScope& scope) {
              ollama_show_handle(s, req, res, scope);
            }));
  http.Post("/api/chat", guarded("/api/chat", true, false, [&s](const auto& req, auto& res, const KeyScope& scope) {
              ollama_chat_handle(s, req, res, scope);
            }));
  http.Post("/api/generate",
            guarded("/api/generate", true, false, [&s](const auto& req, auto& res, const KeyScope& scope) {
              ollama_generate_handle(s, req, res, scope);
            }));
  http.Post("/api/embed", guarded("/api/embed", true, false, [&s](const auto& req, auto& res, const KeyScope& scope) {
              ollama_embed_handle(s, req, res, scope);
            }));
}

void HttpServer::Impl::admin_list(httplib::Response& res) {
  json list = json::array();
  for (const auto& a : state.adapters.list())
    list.push_back({{"name", a.name},
                    {"source", a.source},
                    {"resolved", a.resolved},
                    {"loaded_at", a.loaded_at},
                    {"r", a.r},
                    {"parameters", a.parameters}});
  res.set_content(json{{"adapters", list}}.dump(), "application/json");
}

void HttpServer::Impl::admin_load(const httplib::Request& req, httplib::Response& res) {
  json body;
  try {
    body = io::json_parse_bounded(req.body);
  } catch (const io::JsonTooDeep& e) {
    throw ApiError(400, fmt::format("The request body is {}", e.what()));
  } catch (const json::exception& e) {  // syntax errors, and numbers out of range such as 1e400
    throw ApiError(400, fmt::format("The request body is not valid JSON: {}", e.what()));
  }
  if (!body.is_object() || !body.contains("name") || !body["name"].is_string() || !body.contains("path") ||
      !body["path"].is_string())
    throw ApiError(400, "Expected {\"name\": NAME, \"path\": FOLDER}", "invalid_request_error", "name");
  std::string name = body["name"];
  if (name == state.model_name)
    throw ApiError(400, fmt::format("'{}' is the base model's name", name), "invalid_request_error", "name");
  try {
    auto info = state.adapters.load(name, body["path"].get<std::string>());
    state.metrics.adapter_reload(true);
    log::info("adapter '{}' loaded from {} (admin)", name, info.resolved);
    res.set_content(
        json{{"name", info.name}, {"resolved", info.resolved}, {"r", info.r}, {"parameters", info.parameters}}.dump(),
        "application/json");
  } catch (const Error& e) {
    state.metrics.adapter_reload(false);
    throw ApiError(400, e.what(), "invalid_request_error", "path", "adapter_load_failed");
  }
}

void HttpServer::Impl::admin_unload(const httplib::Request& req, httplib::Response& res) {
  std::string name = req.matches[1];
  if (!state.adapters.unload(name))
    throw ApiError(404, fmt::format("No adapter named '{}' is loaded", name), "invalid_request_error", "name",
                   "model_not_found");
  log::info("adapter '{}' unloaded (admin)", name);
  res.set_content(json{{"name", name}, {"unloaded", true}}.dump(), "application/json");
}

HttpServer::HttpServer(ServeState& state) : impl_(std::make_unique<Impl>(state)) {
  auto& http = impl_->http;
  const auto& c = state.config;
  // Connection admission, the whole-request deadline and write timeouts (connection.h). A waiting request holds
  // its connection, so by default there is one for each row and queue slot, and at least 1024.
  ConnectionLimits limits;
  limits.max_total = server_connections_max(c);
  limits.max_per_client = c.max_connections_per_client;
  limits.request_timeout_s = c.header_timeout_s;
  limits.idle_timeout_s = c.idle_timeout_s;
  limits.write_timeout_s = c.header_timeout_s;
  auto& metrics = state.metrics;
  Impl& impl = *impl_;
  http.limits_set(limits, {[&metrics](int delta) { metrics.connection_open(delta); },
                           [&metrics, &impl](const std::string& reason) {
                             metrics.connection_refused(reason);
                             if (impl.refusals_logged.allow())
                               log::warn("connections refused (503): too many open {} (at most one warning per 10 s; "
                                         "/metrics counts them)",
                                         reason == "total" ? "in all (--max-connections)"
                                                           : "from one address (--max-connections-per-client)");
                           },
                           [&metrics, &impl](const std::string& client) {
                             metrics.request_timed_out();
                             if (impl.timeouts_logged.allow())
                               log::warn("connection from {} closed: its request did not arrive whole within "
                                         "--header-timeout (at most one warning per 10 s; /metrics counts them)",
                                         client);
                           }});
  // httplib's default also sets SO_REUSEPORT, which would let a second server share (and steal from) our port.
  http.set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  http.set_payload_max_length(c.max_body_bytes);
  // The POST routes take JSON bodies only. A form or text body (curl -d's default) is refused here with a clear
  // 415 before its body is read — httplib would otherwise apply its 8 KiB form limit (a puzzling 413) — and a
  // web page cannot post to them with a "simple" CORS request (text/plain, forms).
  http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    const auto& config = impl_->state.config;
    if (!impl_->state.keys.enabled() && host_is_loopback(config.host)) {
      const std::string refusal = keyless_request_refusal(req.get_header_value("Host"), req.get_header_value("Origin"),
                                                          config.host, impl_->bound_port.load(), config.cors_origins);
      if (!refusal.empty()) {
        log::warn("{} {}: refused: {}", req.method, req.path, refusal);
        error_reply(req, res, ApiError(403, refusal, "permission_error", "", "origin_not_allowed"));
        res.set_header("Connection", "close");
        return httplib::Server::HandlerResponse::Handled;
      }
    }
    // CORS preflight (--cors-origin): answered here, before routing, for every route; a listed origin is told what
    // it may send, any other gets a 403 without CORS headers (the browser then blocks the call).
    if (req.method == "OPTIONS") {
      const std::string origin = req.get_header_value("Origin");
      if (!cors_origin_allowed(origin, config.cors_origins)) {
        error_reply(req, res, ApiError(403,
                                  config.cors_origins.empty()
                                      ? "Cross-origin requests are off (start the server with --cors-origin ORIGIN)"
                                      : fmt::format("Origin '{}' is not one of --cors-origin", origin),
                                  "permission_error", "", "origin_not_allowed"));
        return httplib::Server::HandlerResponse::Handled;
      }
      res.status = 204;
      res.set_header("Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS");
      res.set_header("Access-Control-Allow-Headers", "Authorization, Content-Type");
      res.set_header("Access-Control-Max-Age", "600");
      return httplib::Server::HandlerResponse::Handled;  // Allow-Origin: added with every response, below
    }
    if (req.method != "POST") return httplib::Server::HandlerResponse::Unhandled;
    const bool known = req.path == "/v1/chat/completions" || req.path == "/v1/completions" ||
                       req.path == "/v1/embeddings" || req.path == "/admin/adapters" || req.path == "/api/chat" ||
                       req.path == "/api/generate" || req.path == "/api/embed" || req.path == "/api/show";
    auto refuse = [&](const ApiError& e) {
      error_reply(req, res, e);
      if (known) impl_->state.metrics.request_done(req.path, e.status, 0);
      res.set_header("Connection", "close");  // the body was not read
      return httplib::Server::HandlerResponse::Handled;
    };
    // The key is checked on the headers, before a byte of the body is read: an unauthenticated client cannot
    // make the server buffer its body.
    if (known && impl_->state.keys.enabled()) {
      try {
        impl_->authenticate(req, req.path.rfind("/admin/", 0) == 0);
      } catch (const ApiError& e) {
        impl_->state.metrics.rejected("auth");
        return refuse(e);
      }
    }
    // A chunked body has no length to check against --max-body-bytes before reading it (httplib does not bound
    // it): refused, as the OpenAI clients send a Content-Length anyway.
    std::string encoding = req.get_header_value("Transfer-Encoding");
    for (auto& ch : encoding) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (encoding.find("chunked") != std::string::npos)
      return refuse(ApiError(411, "Send the request body with a Content-Length (chunked bodies are not accepted)",
                             "invalid_request_error", "", "length_required"));
    const std::string type = req.get_header_value("Content-Type");
    std::string media = type.substr(0, type.find(';'));
    media.erase(media.find_last_not_of(" \t") + 1);
    for (auto& ch : media) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (type.empty() || media == "application/json") return httplib::Server::HandlerResponse::Unhandled;
    return refuse(ApiError(415,
                           fmt::format("Content-Type must be application/json, got '{}' (with curl: "
                                       "-H 'Content-Type: application/json')",
                                       type),
                           "invalid_request_error", "", "unsupported_media_type"));
  });
  // Every response to a listed origin (streams, errors and preflights too) names it; others carry no CORS header.
  http.set_post_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    const std::string origin = req.get_header_value("Origin");
    if (!cors_origin_allowed(origin, impl_->state.config.cors_origins)) return;
    res.set_header("Access-Control-Allow-Origin", origin);
    res.set_header("Vary", "Origin");
  });
  http.set_error_handler(httplib::Server::HandlerWithResponse([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    std::string message = res.status == 404   ? "Unknown route"
                          : res.status == 413 ? "The request body is too large"
                                              : fmt::format("HTTP {}", res.status);
    error_reply(req, res, ApiError(res.status, message, api_error_type(res.status)));
    return httplib::Server::HandlerResponse::Handled;
  }));
  http.set_exception_handler([](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "unknown error";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    log::error("{} {}: {}", req.method, req.path, what);
    error_reply(req, res, ApiError(500, "Internal server error (the details are in the server's log)", "server_error"));
  });
  impl_->routes();
}

HttpServer::~HttpServer() = default;

namespace {
// Whether this process can run `n` more threads at once: starts n idle threads, then lets them all end. Returns ""
// when it can, else why not.
std::string threads_probe(int n) {
  std::mutex m;
  std::condition_variable cv;
  bool release = false;
  std::vector<std::thread> started;
  started.reserve(static_cast<size_t>(n));
  std::string failure;
  try {
    for (int i = 0; i < n; ++i)
      started.emplace_back([&] {
        std::unique_lock<std::mutex> lock(m);
        cv.wait(lock, [&] { return release; });
      });
  } catch (const std::system_error& e) {
    failure = e.what();
  }
  {
    std::lock_guard<std::mutex> lock(m);
    release = true;
  }
  cv.notify_all();
  for (auto& t : started) t.join();
  return failure;
}
}  // namespace

int HttpServer::bind() {
  const auto& c = impl_->state.config;
  int port = c.port;
  bool ok;
  if (port == 0) {
    port = impl_->http.bind_to_any_port(c.host);
    ok = port > 0;
  } else {
    ok = impl_->http.bind_to_port(c.host, port);
  }
  if (!ok)
    throw ResourceError(
        fmt::format("--host {} --port {}: cannot listen there (address in use, or not an address of "
                    "this machine)",
                    c.host, c.port));
  impl_->http.backlog_set(1024);
  impl_->bound_port = port;
  // A machine that cannot give the connection threads is a clear error now, before "listening" (httplib's pool
  // aborts, or hangs, when a thread fails to start).
  if (auto failure = threads_probe(impl_->http.threads()); !failure.empty())
    throw ResourceError(fmt::format("--max-connections: cannot start {} connection threads ({}); lower "
                                    "--max-connections (default: max({}, --max-batch + --max-queue + 16))",
                                    impl_->http.threads(), failure, kDefaultConnections));
  return port;
}

void HttpServer::listen() { impl_->http.listen_after_bind(); }

void HttpServer::shutdown(int deadline_s) {
  auto& s = impl_->state;
  s.draining = true;
  impl_->http.stop_accepting();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(deadline_s);
  while (s.in_flight > 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  if (s.in_flight > 0) {
    log::warn("shutdown: {} requests still running after {} s; ending them", s.in_flight.load(), deadline_s);
    s.scheduler.abort_all("server shutting down: deadline reached");
    // Let the aborted responses send their error event (their next pump, within a poll interval) before
    // the connections are closed; bounded so a stuck client cannot hold the exit.
    auto grace = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (s.in_flight > 0 && std::chrono::steady_clock::now() < grace)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  impl_->http.close_idle();
}

}  // namespace hearth::serve
