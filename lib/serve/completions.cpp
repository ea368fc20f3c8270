#include "serve/completions.h"

#include <chrono>
#include <filesystem>
#include <random>

#include <fmt/format.h>

#include "chat/prompt.h"
#include "chat/tool_calls.h"
#include "constrain/json_schema.h"
#include "core/error.h"
#include "core/log.h"
#include "io/mapped_file.h"
#include "serve/connection.h"
#include "serve/echo.h"
#include "serve/response.h"
#include "serve/sse.h"

namespace hearth::serve {
namespace {

using Clock = std::chrono::steady_clock;
constexpr std::chrono::milliseconds kPoll{100};
constexpr int kMaxChoices = 16;

// How a chat request with tools is served: the model's tool-call format; with tool_choice "required" or a named
// function the grammar the reply must follow and the text the prompt ends with (Mistral's [TOOL_CALLS]).
struct ToolPlan {
  bool active = false;  // tool_choice other than "none": replies are parsed for calls
  chat::ToolStyle style;
  std::string prefix;
  std::shared_ptr<const constrain::Grammar> grammar;
};

ToolPlan tool_plan(ServeState& s, const CompletionRequest& r) {
  ToolPlan plan;
  plan.style = chat::tool_style_detect(s.tokenizer.config());
  plan.active = r.endpoint == Endpoint::kChat && r.tool_choice != "none";
  if (r.tool_choice != "required" && r.tool_choice != "function") return plan;
  try {
    plan.grammar = std::make_shared<const constrain::Grammar>(
        chat::tool_call_grammar(plan.style.format, r.tools, r.tool_name, r.parallel_tool_calls));
  } catch (const constrain::SchemaError& e) {
    throw ApiError(400, fmt::format("{}: {}", e.where, e.what()), "invalid_request_error", e.where);
  }
  plan.prefix = chat::tool_call_prefix(plan.style.format);
  return plan;
}

std::vector<infer::TokenId> chat_prompt(ServeState& s, const CompletionRequest& r, const ToolPlan& plan) {
  chat::ChatPromptOptions options;
  options.add_generation_prompt = true;
  options.tools = r.tools;
  options.origin = (std::filesystem::path(s.model_dir) / "tokenizer_config.json").string();
  // A template that knows no tools: hearth describes them, and writes earlier calls and results as text.
  const bool rewrite = !plan.style.template_has_tools;
  try {
    auto ids = chat::chat_prompt_encode(s.tokenizer, rewrite ? chat::tool_messages_fallback(r.messages, r.tools) : r.messages,
                                        options)
                   .ids;
    if (!plan.prefix.empty()) {
      const auto more = s.tokenizer.encode(plan.prefix, {false, true});
      ids.insert(ids.end(), more.begin(), more.end());
    }
    return ids;
  } catch (const FormatError& e) {
    throw ApiError(400, fmt::format("The chat template could not render these messages: {}", e.what()),
                   "invalid_request_error", "messages");
  }
}

// Every prompt of the request as token ids, checked against the vocabulary and the context.
std::vector<std::vector<infer::TokenId>> prompts_encode(ServeState& s, const CompletionRequest& r,
                                                        const ToolPlan& plan) {
  std::vector<std::vector<infer::TokenId>> out;
  if (r.endpoint == Endpoint::kChat) out.push_back(chat_prompt(s, r, plan));
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

// `output`: the grammar replies must follow (response_format, or a required tool call); nullptr for free text.
std::vector<SequenceSpec> specs_build(ServeState& s, const CompletionRequest& r,
                                      const std::vector<std::vector<infer::TokenId>>& prompts,
                                      const std::shared_ptr<const model::LoraAdapter>& adapter,
                                      const std::shared_ptr<const constrain::Grammar>& output) {
  std::vector<SequenceSpec> specs;
  uint64_t seed = r.seed_given ? r.sampling.seed : std::random_device{}() * 0x9e3779b97f4a7c15ull;
  std::shared_ptr<const constrain::TokenGrammar> grammar;  // one for all the request's sequences
  if (output) grammar = std::make_shared<const constrain::TokenGrammar>(*output, token_trie(s), s.stop_ids);
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
      spec.request.grammar = grammar;
      spec.adapter = adapter;
      specs.push_back(std::move(spec));
    }
  return specs;
}

// With `echo`: each choice's prompt part (echo_prefix), prompt i's shared by its n choices (specs_build's order);
// empty without it.
std::vector<EchoPrefix> echo_build(ServeState& s, const CompletionRequest& r,
                                   const std::vector<std::vector<infer::TokenId>>& prompts,
                                   const model::LoraAdapter* adapter) {
  std::vector<EchoPrefix> out;
  if (!r.echo) return out;
  if (r.logprobs >= 0 && !io::mapped_files_check().empty())  // before the forward, as embeddings
    throw ApiError(503, kModelFilesChanged, "service_unavailable", "", "model_files_changed");
  for (size_t i = 0; i < prompts.size(); ++i) {
    const std::string* text = i < r.prompts.size() ? &r.prompts[i] : nullptr;  // prompts_encode's order
    auto prefix = echo_prefix(s.model, s.tokenizer, prompts[i], text, adapter, r.logprobs);
    if (io::mapped_files_damaged())  // computed from zeros
      throw ApiError(503, kModelFilesChanged, "service_unavailable", "", "model_files_changed");
    for (int j = 0; j < r.n; ++j) out.push_back(prefix);
  }
  return out;
}

// A generated token's text_offset counts from the start of the choice's text, which an echo prefix begins.
void offsets_shift(std::vector<infer::TokenLogprob>& tokens, const std::vector<EchoPrefix>& echo, size_t choice) {
  if (echo.empty()) return;
  for (auto& t : tokens) t.text_offset += echo[choice].chars;
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
  std::vector<EchoPrefix> echo;  // per choice; empty without echo
  size_t choices = 0, prompt_tokens = 0;
  bool include_usage = false, started = false;
  std::vector<chat::ToolStream> tool_streams;  // per choice, with meta.tools
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
    for (size_t i = 0; i < st.echo.size() && ok; ++i)  // each choice's text begins with its prompt's
      if (!st.echo[i].text.empty() || !st.echo[i].logprobs.empty())
        ok = write(sse_event(chunk_text(st.meta, i, st.echo[i].text, st.echo[i].logprobs)));
  }
  auto updates = st.completion->take(kPoll);
  for (auto& u : updates) {
    offsets_shift(u.logprobs, st.echo, u.index);
    // With tools, text that may be part of a call is held back until the call is whole (chat/tool_calls.h).
    const std::string text = st.meta.tools ? st.tool_streams[u.index].push(u.text) : u.text;
    if (ok && (!text.empty() || !u.logprobs.empty()))
      ok = write(sse_event(chunk_text(st.meta, u.index, text, u.logprobs)));
    std::string reason = u.finish_reason;
    if (ok && u.finished && st.meta.tools && reason != "error") {
      chat::ToolReply reply = st.tool_streams[u.index].finish();
      if (reply.calls.empty() && reply.content.rfind(st.meta.tool_prefix, 0) == 0)
        reply.content.erase(0, st.meta.tool_prefix.size());  // the prefix came from the prompt
      if (!reply.content.empty()) ok = write(sse_event(chunk_text(st.meta, u.index, reply.content)));
      if (ok && !reply.calls.empty()) {
        ok = write(sse_event(chunk_tool_calls(st.meta, u.index, reply.calls)));
        reason = "tool_calls";
      }
    }
    if (ok && u.finished && reason != "error") ok = write(sse_event(chunk_finish(st.meta, u.index, reason)));
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

// Hands the sequences to the scheduler; ApiError 429 (queue full) or 503 when it takes none. An echo with
// max_tokens 0 generates nothing: its choices end at once ("length", as OpenAI and vLLM).
void engine_start(ServeState& s, const CompletionRequest& r, const std::shared_ptr<Completion>& completion,
                  std::vector<SequenceSpec> specs) {
  if (!io::mapped_files_check().empty())
    throw ApiError(503, kModelFilesChanged, "service_unavailable", "", "model_files_changed");
  if (r.max_tokens == 0) {
    for (size_t i = 0; i < specs.size(); ++i) completion->finish(i, "length");
    return;
  }
  if (s.scheduler.submit(completion, std::move(specs))) return;
  s.metrics.rejected(s.draining ? "draining" : "queue_full");
  if (s.draining) throw ApiError(503, "The server is shutting down", "service_unavailable", "", "shutting_down");
  throw ApiError(429, "The server is busy (its request queue is full); retry later", "rate_limit_error", "",
                 "queue_full");
}

void respond_stream(ServeState& s, httplib::Response& res, std::shared_ptr<Stream> st) {
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");
  res.set_chunked_content_provider(
      "text/event-stream", [&s, st](size_t, httplib::DataSink& sink) { return stream_pump(s, *st, sink); },
      [st](bool) { st->completion->cancel(); });  // no-op once finished
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
  const ToolPlan plan = tool_plan(s, r);
  auto prompts = prompts_encode(s, r, plan);
  if (static_cast<int>(prompts.size()) * r.n > max_n)
    throw ApiError(400, fmt::format("{} prompts × n = {} choices; at most {} per request", prompts.size(), r.n, max_n),
                   "invalid_request_error", "n");
  Submission sub;
  for (const auto& p : prompts) sub.prompt_tokens += p.size();
  sub.echo = echo_build(s, r, prompts, adapter.get());
  auto specs = specs_build(s, r, prompts, adapter, plan.grammar ? plan.grammar : r.grammar);
  sub.choices = specs.size();
  sub.completion = std::make_shared<Completion>(sub.choices);
  sub.tools = plan.active;
  sub.tool_format = plan.style.format;
  sub.tool_prefix = plan.prefix;
  engine_start(s, r, sub.completion, std::move(specs));
  return sub;
}

std::optional<std::vector<ChoiceResult>> completions_collect(ServeState& s, const Submission& sub, InFlight& flight,
                                                             const std::string& log_id) {
  const int fd = connection_fd_current();
  const auto& c = sub.completion;
  std::vector<ChoiceResult> results(sub.choices);
  for (size_t i = 0; i < sub.echo.size(); ++i) {
    results[i].text = sub.echo[i].text;
    results[i].logprobs = sub.echo[i].logprobs;
  }
  while (!c->done()) {
    for (auto& u : c->take(kPoll)) {
      results[u.index].text += u.text;
      offsets_shift(u.logprobs, sub.echo, u.index);
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
    meta.tools = sub.tools;
    meta.tool_format = sub.tool_format;
    meta.tool_prefix = sub.tool_prefix;
    if (!r.stream) {
      respond_whole(s, res, sub, meta, *flight);
      return;
    }
    auto st = std::make_shared<Stream>();
    st->completion = sub.completion;
    st->meta = meta;
    st->echo = std::move(sub.echo);
    st->choices = sub.choices;
    st->prompt_tokens = sub.prompt_tokens;
    st->include_usage = r.include_usage;
    if (meta.tools) {
      st->tool_streams.assign(sub.choices, chat::ToolStream(meta.tool_format));
      for (auto& ts : st->tool_streams) ts.push(meta.tool_prefix);
    }
    st->fd = fd;
    st->flight = std::move(flight);
    respond_stream(s, res, std::move(st));
  } catch (const ApiError& e) {
    if (flight) flight->status = e.status;
    throw;
  } catch (const std::exception&) {
    if (flight) flight->status = 500;  // counted as sent (it was counted as 200)
    throw;
  }
}

}  // namespace hearth::serve
