// A chat with a model, as `hearth chat` holds it: the conversation (chat/conversation.h), the LoRA adapters
// loaded for it, and replies generated from the whole conversation rendered with the model's chat template
// (chat/prompt.h), the engine of sequence.h run for one sequence.
//
// Before each reply the conversation is trimmed so that the prompt leaves room for a reply of `max_tokens`
// tokens (at most half the context): the oldest turns go first, the system message never. Each reply
// prefills the whole conversation again (no cache is kept between turns). Stops as `hearth generate --chat`
// stops: the model's stop tokens, the ChatML fallback's "<|im_end|>" (chat_stop_strings) and `stop`. Not
// here: the terminal, commands and printing (chat_repl.h). Not thread-safe; one owner.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "chat/conversation.h"
#include "infer/sequence.h"

namespace hearth::infer {

struct ChatSessionOptions {
  int max_tokens = 256;  // per reply
  SamplingParams sampling;
  std::vector<std::string> stop;                 // stop strings besides the model's
  std::string origin = "tokenizer_config.json";  // names the chat template in error messages
  torch::Device device = torch::kCPU;            // where adapters are loaded
};

struct ChatReply {
  std::string text;             // what was generated (cut before a stop string)
  std::vector<TokenId> tokens;  // generated ids, without a stop token
  std::string finish_reason;    // "stop", "length" or "interrupted" (stop_requested)
  size_t prompt_tokens = 0;
  chat::TrimResult dropped;  // turns trimmed off the conversation to make room
  double prefill_seconds = 0, decode_seconds = 0;
};

// What a reply reports while it is made; each may be empty.
struct ChatReplyCallbacks {
  std::function<void(const chat::TrimResult&)> on_trim;  // turns were dropped (before generating)
  std::function<void(const std::string&)> on_text;       // text that became final
  // Called before each token: true ends the reply there as "interrupted" (it is kept, marked interrupted). It
  // may throw (e.g. InterruptedError) to abandon the reply, which then leaves the conversation as it was.
  std::function<bool()> stop_requested;
};

class ChatSession {
 public:
  // The model and tokenizer must outlive the session. Renders a one-message conversation with the chat template
  // to check it. Throws ConfigError for options out of range, FormatError from the chat template.
  ChatSession(const model::CausalLM& model, const tokenizer::Tokenizer& tokenizer, ChatSessionOptions options);

  // Adds `message` as the user's turn, trims the conversation (see the file comment), generates the reply and
  // adds it as the assistant's turn. Throws ConfigError when the system message and `message` alone fill the
  // context, FormatError from the chat template; the conversation is then as it was.
  ChatReply reply(const std::string& message, const ChatReplyCallbacks& callbacks = {});

  chat::Conversation& conversation() { return conversation_; }
  int64_t context() const { return ctx_; }

  // `arg`: "none" (the base model), the name of an adapter loaded before (its folder's name), or a PEFT
  // adapter folder to load. Returns the name now in use ("" for none). Throws IoError/FormatError (lora.h's
  // load errors) when loading fails; the adapter in use stays.
  std::string adapter_use(const std::string& arg);
  const std::string& adapter_name() const { return active_name_; }  // "" for none
  // "NAME (PATH)" for each loaded adapter, one a line, the one in use marked with "*".
  std::string adapters_describe() const;

 private:
  struct LoadedAdapter {
    std::string name, path;
    std::unique_ptr<model::LoraAdapter> adapter;
  };
  // A conversation's prompt ids (with the generation prompt).
  std::vector<TokenId> prompt_encode(const chat::Conversation& conversation) const;
  void generate_into(ChatReply& reply, std::vector<TokenId> prompt, const ChatReplyCallbacks& callbacks) const;

  const model::CausalLM& model_;
  const tokenizer::Tokenizer& tokenizer_;
  ChatSessionOptions options_;
  int64_t ctx_ = 0;
  std::vector<TokenId> stop_ids_;
  std::vector<std::string> stop_strings_;
  chat::Conversation conversation_;
  std::vector<LoadedAdapter> adapters_;
  const model::LoraAdapter* active_ = nullptr;
  std::string active_name_;
};

}  // namespace hearth::infer
