// A chat with a model: trimming, replies, adapters. See chat_session.h.
#include "infer/chat_session.h"

#include <algorithm>
#include <chrono>
#include <filesystem>

#include <fmt/format.h>

#include "chat/prompt.h"
#include "core/error.h"

namespace hearth::infer {
namespace {

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

ChatSession::ChatSession(const model::CausalLM& model, const tokenizer::Tokenizer& tokenizer,
                         ChatSessionOptions options)
    : model_(model),
      tokenizer_(tokenizer),
      options_(std::move(options)),
      ctx_(model.config().max_position_embeddings),
      stop_ids_(stop_ids_default(model, tokenizer)),
      stop_strings_(options_.stop) {
  if (options_.max_tokens < 0)
    throw ConfigError(fmt::format("--max-tokens: expected >= 0, got {}", options_.max_tokens));
  options_.sampling.validate();
  for (auto& s : chat::chat_stop_strings(tokenizer)) stop_strings_.push_back(s);
  // The chat template's errors (and the fallback's warning) now, not at the first message.
  chat::Conversation probe;
  probe.user_add("Hello");
  prompt_encode(probe);
}

std::vector<TokenId> ChatSession::prompt_encode(const chat::Conversation& conversation) const {
  chat::ChatPromptOptions o;
  o.add_generation_prompt = true;
  o.origin = options_.origin;
  return chat::chat_prompt_encode(tokenizer_, conversation.messages(), o).ids;
}

ChatReply ChatSession::reply(const std::string& message, const ChatReplyCallbacks& callbacks) {
  // Room kept for the reply: --max-tokens, but at most half the context, so that a large -n still leaves
  // some history; and at least one token.
  const int64_t room = std::max<int64_t>(1, std::min<int64_t>(options_.max_tokens, ctx_ / 2));
  const chat::Conversation before = conversation_;
  conversation_.user_add(message);
  ChatReply reply;
  std::vector<TokenId> prompt;
  try {
    reply.dropped = conversation_.trim([&](const nlohmann::ordered_json&) {
      prompt = prompt_encode(conversation_);
      return static_cast<int64_t>(prompt.size()) + room <= ctx_;
    });
    if (!reply.dropped.fits && static_cast<int64_t>(prompt.size()) >= ctx_)
      throw ConfigError(fmt::format("chat: the message makes a prompt of {} tokens{}; the context is {} tokens",
                                    prompt.size(), conversation_.system().empty() ? "" : " with the system message",
                                    ctx_));
    if (reply.dropped.turns > 0 && callbacks.on_trim) callbacks.on_trim(reply.dropped);
    generate_into(reply, prompt, callbacks);
  } catch (...) {
    conversation_ = before;  // as if the message had not been sent
    throw;
  }
  conversation_.assistant_add(reply.text, reply.finish_reason == "interrupted");
  return reply;
}

// One sequence through the engine (prefill, then a decode step per token), as infer::generate runs it, with
// a stop check between tokens.
void ChatSession::generate_into(ChatReply& reply, std::vector<TokenId> prompt,
                                const ChatReplyCallbacks& callbacks) const {
  GenerationRequest request;
  request.prompt = std::move(prompt);
  request.max_tokens = options_.max_tokens;
  request.sampling = options_.sampling;
  request.stop = stop_strings_;
  request.stop_token_ids = stop_ids_;
  request.adapter = active_;
  const auto n_prompt = static_cast<int64_t>(request.prompt.size());
  Sequence seq(std::move(request), tokenizer_, ctx_);
  auto emit = [&](const std::string& text) {
    reply.text += text;
    if (callbacks.on_text && !text.empty()) callbacks.on_text(text);
  };
  auto on_token = [&](size_t, const TokenEvent& event) { emit(event.text); };

  c10::InferenceMode guard;
  auto cache = model_.cache_new(1, n_prompt + seq.budget());
  auto t0 = std::chrono::steady_clock::now();
  auto logits = prefill_prompts(model_, cache, {&seq});
  reply.prefill_seconds = seconds_since(t0);
  auto t1 = std::chrono::steady_clock::now();
  if (seq.budget() == 0) emit(seq.finish("length"));
  bool first = true;
  while (!seq.finished()) {
    if (callbacks.stop_requested && callbacks.stop_requested()) {
      emit(seq.finish("interrupted"));
      break;
    }
    if (first) sample_rows({&seq}, logits, on_token);
    else decode_step(model_, cache, {&seq}, on_token);
    first = false;
  }
  reply.decode_seconds = seconds_since(t1);
  reply.tokens = seq.generated();
  reply.finish_reason = seq.finish_reason();
  reply.prompt_tokens = static_cast<size_t>(n_prompt);
}

std::string ChatSession::adapter_use(const std::string& arg) {
  if (arg == "none") {
    active_ = nullptr;
    active_name_.clear();
    return active_name_;
  }
  auto use = [this](const LoadedAdapter& a) {
    active_ = a.adapter.get();
    active_name_ = a.name;
    return active_name_;
  };
  for (const auto& a : adapters_)
    if (a.name == arg) return use(a);
  std::error_code ec;
  auto path = std::filesystem::weakly_canonical(arg, ec);
  if (ec) path = arg;
  for (const auto& a : adapters_)
    if (a.path == path.string()) return use(a);
  auto adapter = std::make_unique<model::LoraAdapter>(model::LoraAdapter::load(path, model_.config(), options_.device));
  adapters_.push_back({path.filename().string(), path.string(), std::move(adapter)});
  return use(adapters_.back());
}

std::string ChatSession::adapters_describe() const {
  std::string out;
  for (const auto& a : adapters_)
    out += fmt::format("{} {} ({})\n", a.adapter.get() == active_ ? "*" : " ", a.name, a.path);
  out += fmt::format("{} none (the base model)\n", active_ ? " " : "*");
  return out;
}

}  // namespace hearth::infer
