// hearth serve's HTTP layer: routes, authentication, limits, error bodies, graceful shutdown.
//
// Routes (docs/serve.md): GET /health, GET /metrics, GET /v1/models, POST /v1/chat/completions,
// POST /v1/completions, POST /v1/embeddings, GET|POST /admin/adapters, DELETE /admin/adapters/{name}, GET / (the
// chat page); Ollama's GET /api/tags, GET /api/version, POST /api/show, /api/chat, /api/generate, /api/embed.
// With API keys, every route but /health and / needs "Authorization: Bearer KEY" (the page holds no data and
// asks for a key itself); the admin routes need a key without a model list. Every refusal is an HTTP 4xx/5xx
// with an OpenAI error body ({"error": "..."}, Ollama's, on /api/ paths); handler exceptions become a 500 and the
// server keeps serving.
// Not here: generation (scheduler.h), request parsing (request.h, ollama_request.h), completion handling
// (completions.h, ollama_api.h).
#pragma once

#include <memory>
#include <string>

#include "serve/serve_state.h"

namespace hearth::serve {

class HttpServer {
 public:
  explicit HttpServer(ServeState& state);
  ~HttpServer();

  // Binds config.host:config.port (port 0: any free port). Returns the port. Throws ResourceError when the
  // address cannot be bound (in use, not local).
  int bind();
  // Serves until shutdown() has finished; call after bind(). Blocks; run it on its own thread.
  void listen();
  // Graceful stop, from another thread: refuse new requests (503), stop accepting connections, wait up to
  // `deadline_s` for in-flight completions, then fail the rest and close idle connections. listen() returns
  // afterwards.
  void shutdown(int deadline_s);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace hearth::serve
