#include "serve/completions.h"

#include <chrono>
#include <filesystem>
#include <random>

#include <fmt/format.h>

#include "chat/prompt.h"
#include "core/error.h"
#include "core/log.h"
#include "io/mapped_file.h"
#include "serve/connection.h"
#include "serve/response.h"
#include "serve/sse.h"

namespace hearth::serve {
namespace {

using Clock = std::chrono::steady_clock;
constexpr std::chrono::milliseconds kPoll{100};
constexpr int kMaxChoices = 16;

std::vector<infer::TokenId> chat_prompt(ServeState& s, const CompletionRequest& r) {
  chat::ChatPromptOptions options;
  options.add_generation_prompt = true;
  options.tools = r.tools;
  options.origin = (std::filesystem::path(s.model_dir) / "tokenizer_config.json").string();
  try {
    return chat::chat_prompt_encode(s.tokenizer, r.messages, options).ids;
  } catch (const FormatError& e) {
    throw ApiError(400, fmt::format("The chat template could not render these messages: {}", e.what()),
                   "invalid_request_error", "messages");
  }
}

// Every prompt of the request as token ids, checked against the vocabulary and the context.
std::vector<std::vector<infer::TokenId>> prompts_encode(ServeState& s, const CompletionRequest& r) {
  std::vector<std::vector<infer::TokenId>> out;
  if (r.endpoint == Endpoint::kChat) out.push_back(chat_prompt(s, r));
  for (const auto& p : r.prompts) out.push_back(s.tokenizer.encode(p));
  const int64_t vocab = s.model.config().vocab_size;
  const int ctx = std::min(s.scheduler.ctx(), r.ctx.value_or(s.scheduler.ctx()));
  for (const auto& ids : r.prompt_ids) {
    for (auto id : ids)
      if (id >= vocab)
        throw ApiError(400, fmt::format("'prompt' has token id {}; the vocabulary has {} ids", id, vocab),
                       "invalid_request_error", "prompt");
    out.push_back(ids);
  }
  for (auto& ids : out) {
    if (ids.empty()) {
      auto bos = s.tokenizer.bos_id();
      if (!bos)
        throw ApiError(400, "The prompt is empty and the tokenizer has no BOS token", "invalid_request_error",
                       "prompt");
      ids.push_back(*bos);
    }
    if (static_cast<int>(ids.size()) >= ctx)
      throw ApiError(400,
                     fmt::format("This model's maximum context length is {} tokens; the prompt is {} tokens", ctx,
                                 ids.size()),
                     "invalid_request_error", r.endpoint == Endpoint::kChat ? "messages" : "prompt",
                     "context_length_exceeded");
  }
  return out;
}

std::vector<SequenceSpec> specs_build(ServeState& s, const CompletionRequest& r,
                                      const std::vector<std::vector<infer::TokenId>>& prompts,
                                      const std::shared_ptr<const model::LoraAdapter>& adapter) {
  std::vector<SequenceSpec> specs;
  uint64_t seed = r.seed_given ? r.sampling.seed : std::random_device{}() * 0x9e3779b97f4a7c15ull;
  for (const auto& p : prompts)
    for (int j = 0; j < r.n; ++j) {
      SequenceSpec spec;
      spec.request.prompt = p;
      spec.request.max_tokens = r.max_tokens.value_or(s.config.max_tokens_limit);
      if (r.ctx && *r.ctx < s.scheduler.ctx())  // the scheduler clamps to --ctx - prompt itself
        spec.request.max_tokens = std::min(spec.request.max_tokens, *r.ctx - static_cast<int>(p.size()));
      spec.request.sampling = r.sampling;
      spec.request.sampling.seed = seed + specs.size();
      spec.request.stop = r.stop;
      if (r.endpoint == Endpoint::kChat)  // the ChatML fallback's end of turn is text (chat/prompt.h)
        for (auto& stop : chat::chat_stop_strings(s.tokenizer)) spec.request.stop.push_back(stop);
      spec.request.stop_token_ids = s.stop_ids;
      spec.request.logprobs = r.logprobs;
      spec.adapter = adapter;
      specs.push_back(std::move(spec));
    }
  return specs;
}

void respond_whole(ServeState& s, httplib::Response& res, const Submission& sub, const ResponseMeta& meta,
                   InFlight& flight) {
  auto results = completions_collect(s, sub, flight, meta.id);
  if (!results) return;  // the client went away: nothing is sent
  nlohmann::json body = response_full(meta, *results, {sub.prompt_tokens, sub.completion->completion_tokens()});
  res.set_content(body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), "application/json");
}

// State of one SSE response, kept alive by the content provider (and with it the in-flight count).
struct Stream {
  std::shared_ptr<Completion> completion;
  ResponseMeta meta;
  size_t choices = 0, prompt_tokens = 0;
  bool include_usage = false, started = false;
  int fd = -1;
  std::unique_ptr<InFlight> flight;
  ~Stream() {
    if (completion) completion->cancel();  // however the response ended, free the rows
  }
};

// One round of the content provider: writes what is new; false ends the response (client gone).
bool stream_pump(ServeState& s, Stream& st, httplib::DataSink& sink) {
  auto write = [&](const std::string& data) { return sink.write(data.data(), data.size()); };
  bool ok = true;
  if (!st.started) {
    st.started = true;
    if (st.meta.endpoint == Endpoint::kChat)
      for (size_t i = 0; i < st.choices && ok; ++i) ok = write(sse_event(chunk_role(st.meta, i)));
  }
  auto updates = st.completion->take(kPoll);
  for (const auto& u : updates) {
    if (ok && (!u.text.empty() || !u.logprobs.empty()))
      ok = write(sse_event(chunk_text(st.meta, u.index, u.text, u.logprobs)));
    if (ok && u.finished && u.finish_reason != "error")
      ok = write(sse_event(chunk_finish(st.meta, u.index, u.finish_reason)));
  }
  if (!ok || (updates.empty() && peer_closed(st.fd))) {
    completion_abandon(s, *st.completion, *st.flight, st.meta.id, ok ? "connection closed" : "write failed");
    return false;
  }
  if (!st.completion->done()) return true;
  if (!st.completion->error().empty()) {
    // The error object is the stream's last event (docs/serve.md): no usage chunk, no [DONE] after it.
    int status = s.draining ? 503 : 500;
    ok = write(sse_event(api_error_body(ApiError(status, st.completion->error(), api_error_type(status)))));
    st.flight->status = status;
    sink.done();
    return ok;
  }
  if (ok && st.include_usage)
    ok = write(sse_event(chunk_usage(st.meta, {st.prompt_tokens, st.completion->completion_tokens()})));
  if (ok) ok = write(kSseDone);
  sink.done();
  return ok;
}

}  // namespace

InFlight::InFlight(ServeState& s, std::string route_name)
    : state(s), route(std::move(route_name)), start(Clock::now()) {
  ++state.in_flight;
}

InFlight::~InFlight() {
  --state.in_flight;
  state.metrics.request_done(route, status, std::chrono::duration<double>(Clock::now() - start).count());
}

Submission completions_submit(ServeState& s, const CompletionRequest& r,
                              const std::shared_ptr<const model::LoraAdapter>& adapter) {
  if (s.draining) throw ApiError(503, "The server is shutting down", "service_unavailable", "", "shutting_down");
  const int max_n = std::min(kMaxChoices, std::max(1, s.config.max_queue));
  auto prompts = prompts_encode(s, r);
  if (static_cast<int>(prompts.size()) * r.n > max_n)
    throw ApiError(400, fmt::format("{} prompts × n = {} choices; at most {} per request", prompts.size(), r.n, max_n),
                   "invalid_request_error", "n");
  Submission sub;
  for (const auto& p : prompts) sub.prompt_tokens += p.size();
  auto specs = specs_build(s, r, prompts, adapter);
  sub.choices = specs.size();
  sub.completion = std::make_shared<Completion>(sub.choices);
  if (!io::mapped_files_check().empty())
    throw ApiError(503, kModelFilesChanged, "service_unavailable", "", "model_files_changed");
  if (!s.scheduler.submit(sub.completion, std::move(specs))) {
    s.metrics.rejected(s.draining ? "draining" : "queue_full");
    if (s.draining) throw ApiError(503, "The server is shutting down", "service_unavailable", "", "shutting_down");
    throw ApiError(429, "The server is busy (its request queue is full); retry later", "rate_limit_error", "",
                   "queue_full");
  }
  return sub;
}

std::optional<std::vector<ChoiceResult>> completions_collect(ServeState& s, const Submission& sub, InFlight& flight,
                                                             const std::string& log_id) {
  const int fd = connection_fd_current();
  const auto& c = sub.completion;
  std::vector<ChoiceResult> results(sub.choices);
  while (!c->done()) {
    for (auto& u : c->take(kPoll)) {
      results[u.index].text += u.text;
      auto& lp = results[u.index].logprobs;
      lp.insert(lp.end(), std::make_move_iterator(u.logprobs.begin()), std::make_move_iterator(u.logprobs.end()));
      if (u.finished) results[u.index].finish_reason = u.finish_reason;
    }
    if (!c->done() && peer_closed(fd)) {
      completion_abandon(s, *c, flight, log_id, "connection closed");
      return std::nullopt;
    }
  }
  if (!c->error().empty()) throw ApiError(s.draining ? 503 : 500, c->error(), api_error_type(s.draining ? 503 : 500));
  return results;
}

void completion_abandon(ServeState& s, Completion& c, InFlight& flight, const std::string& log_id, const char* how) {
  log::info("request {}: client went away ({}); generation stopped", log_id, how);
  c.cancel();
  s.metrics.disconnect();
  flight.status = 499;  // nginx's "client closed request"; nothing more is sent
}

void completions_handle(ServeState& s, const httplib::Request& req, httplib::Response& res, Endpoint endpoint,
                        const KeyScope& scope) {
  auto flight = std::make_unique<InFlight>(s, req.path);
  try {
    if (s.draining) throw ApiError(503, "The server is shutting down", "service_unavailable", "", "shutting_down");
    int max_n = std::min(kMaxChoices, std::max(1, s.config.max_queue));
    auto r = request_parse(req.body, endpoint, s.config.max_tokens_limit, max_n);
    auto adapter = model_resolve(s, r.model, scope);
    auto sub = completions_submit(s, r, adapter);
    int fd = connection_fd_current();
    auto meta = response_meta(endpoint, r.model);
    meta.logprobs = r.logprobs;
    if (!r.stream) {
      respond_whole(s, res, sub, meta, *flight);
      return;
    }
    auto st = std::make_shared<Stream>();
    st->completion = sub.completion;
    st->meta = meta;
    st->choices = sub.choices;
    st->prompt_tokens = sub.prompt_tokens;
    st->include_usage = r.include_usage;
    st->fd = fd;
    st->flight = std::move(flight);
    res.set_header("Cache-Control", "no-cache");
    res.set_header("X-Accel-Buffering", "no");
    res.set_chunked_content_provider(
        "text/event-stream", [&s, st](size_t, httplib::DataSink& sink) { return stream_pump(s, *st, sink); },
        [st](bool) { st->completion->cancel(); });  // no-op once finished
  } catch (const ApiError& e) {
    if (flight) flight->status = e.status;
    throw;
  } catch (const std::exception&) {
    if (flight) flight->status = 500;  // counted as sent (it was counted as 200)
    throw;
  }
}

}  // namespace hearth::serve
