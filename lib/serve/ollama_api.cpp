#include "serve/ollama_api.h"

#include <atomic>
#include <ctime>
#include <optional>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/log.h"
#include "serve/completions.h"
#include "serve/connection.h"
#include "serve/embeddings.h"
#include "serve/ollama_request.h"

namespace hearth::serve {
namespace {

using json = nlohmann::ordered_json;  // keys in the order Ollama writes them
using Clock = std::chrono::steady_clock;
constexpr std::chrono::milliseconds kPoll{100};
constexpr const char* kNdjson = "application/x-ndjson";

int64_t nanoseconds(Clock::duration d) { return std::chrono::duration_cast<std::chrono::nanoseconds>(d).count(); }

// One line of an NDJSON stream. Invalid UTF-8 in strings is replaced (U+FFFD), never thrown on.
std::string ndjson_line(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n"; }

// Ollama's logprobs: [{"token", "logprob", "bytes", "top_logprobs": [{"token", "logprob", "bytes"}]}] (the same
// values as the OpenAI endpoints'; top_logprobs left out when none were asked for, as Ollama omits it).
json logprobs_json(const std::vector<infer::TokenLogprob>& tokens) {
  auto entry = [](const infer::TokenProb& t) {
    return json{{"token", t.text}, {"logprob", t.logprob}, {"bytes", token_bytes_json(t)}};
  };
  json out = json::array();
  for (const auto& t : tokens) {
    json e = entry(t.chosen);
    if (!t.top.empty()) {
      e["top_logprobs"] = json::array();
      for (const auto& a : t.top) e["top_logprobs"].push_back(entry(a));
    }
    out.push_back(std::move(e));
  }
  return out;
}

// One response object of a generation: a streamed piece (done false) or the last one (see done_set).
json generation_json(const OllamaGeneration& g, const std::string& text, const std::vector<infer::TokenLogprob>& lp) {
  json j = {{"model", g.model}, {"created_at", ollama_timestamp(std::chrono::system_clock::now())}};
  if (g.chat) j["message"] = {{"role", "assistant"}, {"content", text}};
  else j["response"] = text;
  j["done"] = false;
  if (g.request.logprobs >= 0) j["logprobs"] = logprobs_json(lp);
  return j;
}

// The request's statistics, as Ollama's last object carries them.
struct Stats {
  Clock::time_point arrived;
  std::optional<Clock::time_point> first_token;
  size_t prompt_tokens = 0, eval_tokens = 0;
};

void done_set(json& j, const std::string& reason, const Stats& st) {
  const auto now = Clock::now();
  const auto first = st.first_token.value_or(now);
  j["done"] = true;
  j["done_reason"] = reason;
  j["total_duration"] = nanoseconds(now - st.arrived);
  j["load_duration"] = 0;
  j["prompt_eval_count"] = st.prompt_tokens;
  j["prompt_eval_duration"] = nanoseconds(first - st.arrived);
  j["eval_count"] = st.eval_tokens;
  j["eval_duration"] = nanoseconds(now - first);
}

// State of one NDJSON response, kept alive by the content provider (and with it the in-flight count).
struct OllamaStream {
  OllamaGeneration g;
  Submission sub;
  std::string log_id, reason;
  int fd = -1;
  std::unique_ptr<InFlight> flight;
  ~OllamaStream() {
    if (sub.completion) sub.completion->cancel();  // however the response ended, free the row
  }
};

// One round of the content provider: writes what is new; false ends the response (client gone).
bool stream_pump(ServeState& s, OllamaStream& st, httplib::DataSink& sink) {
  auto write = [&](const json& j) {
    const std::string line = ndjson_line(j);
    return sink.write(line.data(), line.size());
  };
  const auto& c = st.sub.completion;
  bool ok = true;
  auto updates = c->take(kPoll);
  for (const auto& u : updates) {
    if (ok && (!u.text.empty() || !u.logprobs.empty())) ok = write(generation_json(st.g, u.text, u.logprobs));
    if (u.finished) st.reason = u.finish_reason;
  }
  if (!ok || (updates.empty() && peer_closed(st.fd))) {
    completion_abandon(s, *c, *st.flight, st.log_id, ok ? "connection closed" : "write failed");
    return false;
  }
  if (!c->done()) return true;
  if (!c->error().empty()) {  // the error object is the stream's last line
    const int status = s.draining ? 503 : 500;
    ok = write(ollama_error_body(ApiError(status, c->error())));
    st.flight->status = status;
    sink.done();
    return ok;
  }
  json last = generation_json(st.g, "", {});
  last.erase("logprobs");
  done_set(last, st.reason, {st.flight->start, c->first_token(), st.sub.prompt_tokens, c->completion_tokens()});
  ok = write(last);
  sink.done();
  return ok;
}

// Ollama's answer to a request with nothing to generate ("load the model"): one object, done_reason "load". The
// model is always loaded, so there is nothing to do (keep_alive has no effect either).
void respond_load(const OllamaGeneration& g, httplib::Response& res) {
  json j = generation_json(g, "", {});
  j.erase("logprobs");
  j["done"] = true;
  j["done_reason"] = "load";
  res.set_content(ndjson_line(j), g.stream ? kNdjson : "application/json; charset=utf-8");
}

void respond_whole(ServeState& s, const OllamaGeneration& g, const Submission& sub, InFlight& flight,
                   const std::string& log_id, httplib::Response& res) {
  auto results = completions_collect(s, sub, flight, log_id);
  if (!results) return;  // the client went away: nothing is sent
  const auto& choice = (*results)[0];
  json j = generation_json(g, choice.text, choice.logprobs);
  done_set(j, choice.finish_reason,
           {flight.start, sub.completion->first_token(), sub.prompt_tokens, sub.completion->completion_tokens()});
  res.set_content(j.dump(-1, ' ', false, json::error_handler_t::replace), "application/json; charset=utf-8");
}

void respond_stream(ServeState& s, OllamaGeneration g, Submission sub, std::unique_ptr<InFlight> flight,
                    const std::string& log_id, httplib::Response& res) {
  auto st = std::make_shared<OllamaStream>();
  st->g = std::move(g);
  st->sub = std::move(sub);
  st->log_id = log_id;
  st->fd = connection_fd_current();
  st->flight = std::move(flight);
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");
  res.set_chunked_content_provider(
      kNdjson, [&s, st](size_t, httplib::DataSink& sink) { return stream_pump(s, *st, sink); },
      [st](bool) { st->sub.completion->cancel(); });  // no-op once finished
}

// /api/chat and /api/generate: parse (inside the in-flight count, so refusals are counted as what they are), resolve
// the model, submit, answer.
template <typename Parse>
void generation_handle(ServeState& s, const httplib::Request& req, httplib::Response& res, const KeyScope& scope,
                       Parse parse) {
  auto flight = std::make_unique<InFlight>(s, req.path);
  try {
    if (s.draining) throw ApiError(503, "The server is shutting down", "service_unavailable", "", "shutting_down");
    OllamaGeneration g = parse(req.body, s.config.max_tokens_limit);
    auto adapter = ollama_model_resolve(s, g.model, scope);
    if (g.load_only) return respond_load(g, res);
    auto sub = completions_submit(s, g.request, adapter);
    static std::atomic<uint64_t> counter{0};
    const std::string log_id = fmt::format("ollama-{}", ++counter);
    if (!g.stream) return respond_whole(s, g, sub, *flight, log_id, res);
    respond_stream(s, std::move(g), std::move(sub), std::move(flight), log_id, res);
  } catch (const ApiError& e) {
    if (flight) flight->status = e.status;
    throw;
  } catch (const std::exception&) {
    if (flight) flight->status = 500;
    throw;
  }
}

}  // namespace

std::string ollama_timestamp(std::chrono::system_clock::time_point t) {
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
  const std::time_t secs = static_cast<std::time_t>(us / 1000000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                     tm.tm_hour, tm.tm_min, tm.tm_sec, us % 1000000);
}

std::shared_ptr<const model::LoraAdapter> ollama_model_resolve(ServeState& s, const std::string& name,
                                                               const KeyScope& scope) {
  try {
    return model_resolve(s, ollama_model_name(name), scope);
  } catch (const ApiError& e) {
    if (e.status != 404) throw;
    throw ApiError(404, fmt::format("model '{}' not found", name), e.type, e.param, e.code);
  }
}

void ollama_chat_handle(ServeState& s, const httplib::Request& req, httplib::Response& res, const KeyScope& scope) {
  generation_handle(s, req, res, scope, ollama_chat_parse);
}

void ollama_generate_handle(ServeState& s, const httplib::Request& req, httplib::Response& res, const KeyScope& scope) {
  generation_handle(s, req, res, scope, ollama_generate_parse);
}

void ollama_embed_handle(ServeState& s, const httplib::Request& req, httplib::Response& res, const KeyScope& scope) {
  const auto arrived = Clock::now();
  if (s.draining) throw ApiError(503, "The server is shutting down", "service_unavailable", "", "shutting_down");
  const auto e = ollama_embed_parse(req.body);
  auto adapter = ollama_model_resolve(s, e.model, scope);
  const int64_t hidden = s.model.config().hidden_size;
  if (e.dimensions && *e.dimensions != hidden)
    throw ApiError(400,
                   fmt::format("'dimensions': this model's embeddings have {} dimensions; other sizes are not "
                               "supported",
                               hidden),
                   "invalid_request_error", "dimensions", "unsupported_parameter");
  const int window = std::min(s.scheduler.ctx(), e.ctx.value_or(s.scheduler.ctx()));
  std::vector<std::vector<infer::TokenId>> inputs;
  size_t tokens = 0;
  for (const auto& text : e.inputs) {
    auto ids = s.tokenizer.encode(text);
    if (static_cast<int>(ids.size()) > window) {
      if (!e.truncate)
        throw ApiError(400,
                       fmt::format("An input of {} tokens; the context is {} tokens (send \"truncate\": true to cut "
                                   "inputs to it)",
                                   ids.size(), window),
                       "invalid_request_error", "input", "context_length_exceeded");
      ids.resize(static_cast<size_t>(window));
    }
    tokens += ids.size();
    inputs.push_back(std::move(ids));
  }
  auto vectors = embeddings_compute(s, inputs, adapter.get());
  json body = {{"model", e.model},
               {"embeddings", std::move(vectors)},
               {"total_duration", nanoseconds(Clock::now() - arrived)},
               {"load_duration", 0},
               {"prompt_eval_count", tokens}};
  res.set_content(body.dump(), "application/json; charset=utf-8");
}

}  // namespace hearth::serve
