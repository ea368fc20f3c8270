// A conversation as `hearth chat` keeps it: an optional system message and the turns after it (user,
// assistant, user, ...), trimmed to fit the model's context, saved to and loaded from a JSON file.
//
// A turn is a user message and the assistant's reply to it. Trimming drops whole turns, oldest first, and
// never the system message or the newest user message, so the messages a chat template sees always
// alternate as templates expect. The file format is an OpenAI-style messages array (what `hearth
// chat-template --messages` reads). Not here: prompts and tokens (prompt.h), generation (lib/infer).
// Not thread-safe; one owner.
#pragma once

#include <cstddef>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace hearth::chat {

struct ChatMessage {
  std::string role;  // "user" or "assistant" (the system message is kept apart)
  std::string content;
  bool interrupted = false;  // an assistant reply stopped before its end (Ctrl-C); its text is what was generated
};

// What trimming dropped (both 0 when the conversation already fitted).
struct TrimResult {
  size_t turns = 0;     // user messages dropped (each with the reply that followed it)
  size_t messages = 0;  // messages dropped in all
  bool fits = true;     // false: even the system message and the newest user message alone do not fit
};

class Conversation {
 public:
  const std::string& system() const { return system_; }
  // Sets the system message; "" removes it. The turns stay.
  void system_set(std::string text) { system_ = std::move(text); }
  const std::vector<ChatMessage>& turns() const { return turns_; }

  // Appends a user message. Throws hearth::Error (internal) when the last message is already a user message.
  void user_add(std::string content);
  // Appends the reply to the pending user message. Throws hearth::Error (internal) when there is none.
  void assistant_add(std::string content, bool interrupted = false);
  // Removes the last message when it is a user message (one that got no reply); otherwise does nothing.
  void pending_user_drop();
  // Drops every turn; the system message stays (/reset).
  void turns_clear() { turns_.clear(); }

  // The messages as a chat template takes them: [{"role", "content"}], the system message first when set.
  nlohmann::ordered_json messages() const;
  // The messages as /save writes them: messages() plus "interrupted": true on interrupted replies.
  nlohmann::ordered_json to_json() const;
  // A conversation from to_json()'s format: an array of messages, or an object with a "messages" array (as
  // `hearth chat-template --messages` reads). Each message an object with a string "role" and "content" (and
  // an optional boolean "interrupted" on an assistant message); "system" only first; then "user" and
  // "assistant" alternating, starting with "user". Throws FormatError naming `origin`, the message's index
  // and what is wrong.
  static Conversation from_json(const nlohmann::json& j, const std::string& origin);

  // Drops the oldest turns until `fits(messages())` holds, keeping the system message and the newest user
  // message with what follows it. `fits` is called once per try, first with the conversation as it is.
  // Returns what was dropped; `fits` false when the kept messages alone still do not fit (they stay).
  TrimResult trim(const std::function<bool(const nlohmann::ordered_json& messages)>& fits);

 private:
  std::string system_;
  std::vector<ChatMessage> turns_;
};

// Writes to_json() (pretty-printed) to `path` atomically (io/atomic_file.h). Throws IoError naming the path.
void conversation_save(const Conversation& conversation, const std::filesystem::path& path);
// Reads a conversation file. Throws IoError (missing, unreadable) or FormatError (not JSON, or not a valid
// conversation: see from_json) naming the path.
Conversation conversation_load(const std::filesystem::path& path);

}  // namespace hearth::chat
