// POST /v1/chat/completions and POST /v1/completions: request -> prompt tokens -> scheduler -> JSON or SSE.
//
// Chat messages become prompt ids through chat_prompt_encode (chat/prompt.h), as in `hearth generate --chat`;
// completion prompts are encoded as `hearth generate --prompt` does. A prompt of --ctx tokens or more is a
// 400 (context_length_exceeded); max_tokens is clamped to the context left. The handler watches its client:
// when it goes away, the completion is cancelled and the scheduler frees its rows.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <httplib.h>

#include "chat/tool_calls.h"
#include "serve/api_keys.h"
#include "serve/completion.h"
#include "serve/echo.h"
#include "serve/request.h"
#include "serve/response.h"
#include "serve/serve_state.h"

namespace hearth::serve {

// Counts a generation request as in flight (SIGTERM waits for these) and records its metrics — `route`, `status`,
// the time from construction — when destroyed. Set `status` to what the client was answered (499: it went away).
struct InFlight {
  InFlight(ServeState& s, std::string route_name);
  ~InFlight();
  InFlight(const InFlight&) = delete;
  InFlight& operator=(const InFlight&) = delete;
  ServeState& state;
  std::string route;
  std::chrono::steady_clock::time_point start;
  int status = 200;
};

// A request's completion, queued in the scheduler.
struct Submission {
  std::shared_ptr<Completion> completion;
  size_t choices = 0;        // sequences: prompts × n, choice i of prompt p is index p * n + i
  size_t prompt_tokens = 0;  // over all prompts
  std::vector<EchoPrefix> echo;  // completions `echo`: per choice, what its text starts with; empty without
  // Chat with tool_choice other than "none" (ResponseMeta's fields of the same names).
  bool tools = false;
  chat::ToolFormat tool_format = chat::ToolFormat::kHermes;
  std::string tool_prefix;
};

// The engine side of a completion request, shared by the OpenAI and the Ollama endpoints: encodes r's prompts
// (chat messages through the model's chat template, as `hearth generate --chat`), checks them against the
// vocabulary and the context (r.ctx when set, else --ctx), builds one sequence per choice for `adapter`
// (nullptr: the base model) and queues them. Throws ApiError: 400 (bad prompt, too long:
// context_length_exceeded, too many choices), 503 (draining, model files changed), 429 (queue full).
// Thread-safe.
Submission completions_submit(ServeState& state, const CompletionRequest& r,
                              const std::shared_ptr<const model::LoraAdapter>& adapter);

// Waits for every choice of a non-streamed completion, watching the client. Returns the choices (each starting
// with its echo prefix), or std::nullopt
// when the client went away (see completion_abandon). Throws ApiError 500 (the engine failed; 503 while
// draining) with the completion's error. `log_id` names the request in the log.
std::optional<std::vector<ChoiceResult>> completions_collect(ServeState& state, const Submission& submission,
                                                             InFlight& flight, const std::string& log_id);

// The client of a running completion went away (`how`: "connection closed", "write failed"): cancels the
// completion (the scheduler frees its rows), logs it, counts the disconnect and answers 499 in the metrics.
void completion_abandon(ServeState& state, Completion& completion, InFlight& flight, const std::string& log_id,
                        const char* how);

// Handles one completion request for a caller with `scope`. Throws ApiError for every refusal (the caller
// turns it into the error body). Thread-safe (called on httplib's connection threads).
void completions_handle(ServeState& state, const httplib::Request& req, httplib::Response& res, Endpoint endpoint,
                        const KeyScope& scope);

}  // namespace hearth::serve
