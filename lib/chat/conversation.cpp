// Conversations: turns, trimming, the JSON file. See conversation.h.
#include "chat/conversation.h"

#include <algorithm>

#include <fmt/format.h>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/json_file.h"

namespace hearth::chat {

void Conversation::user_add(std::string content) {
  if (!turns_.empty() && turns_.back().role == "user")
    throw Error("conversation: a user message follows a user message; expected the reply first");
  turns_.push_back({"user", std::move(content), false});
}

void Conversation::assistant_add(std::string content, bool interrupted) {
  if (turns_.empty() || turns_.back().role != "user")
    throw Error("conversation: a reply without a user message before it");
  turns_.push_back({"assistant", std::move(content), interrupted});
}

void Conversation::pending_user_drop() {
  if (!turns_.empty() && turns_.back().role == "user") turns_.pop_back();
}

nlohmann::ordered_json Conversation::messages() const {
  auto out = nlohmann::ordered_json::array();
  if (!system_.empty()) out.push_back({{"role", "system"}, {"content", system_}});
  for (const auto& m : turns_) out.push_back({{"role", m.role}, {"content", m.content}});
  return out;
}

nlohmann::ordered_json Conversation::to_json() const {
  auto out = messages();
  const size_t first = system_.empty() ? 0 : 1;
  for (size_t i = 0; i < turns_.size(); ++i)
    if (turns_[i].interrupted) out[first + i]["interrupted"] = true;
  return out;
}

namespace {

// One message of a conversation file, checked; `index` is its place in the array (for messages).
ChatMessage message_parse(const nlohmann::json& m, size_t index, const std::string& origin) {
  const std::string where = fmt::format("{}: messages[{}]", origin, index);
  if (!m.is_object()) throw FormatError(fmt::format("{}: expected an object, got {}", where, m.type_name()));
  for (const auto& [key, value] : m.items())
    if (key != "role" && key != "content" && key != "interrupted")
      throw FormatError(
          fmt::format("{}: unknown key '{}'; expected role, content and (optional) interrupted", where, key));
  for (const char* key : {"role", "content"})
    if (!m.contains(key) || !m[key].is_string())
      throw FormatError(
          fmt::format("{}: expected a string '{}', got {}", where, key, m.contains(key) ? m[key].type_name() : "none"));
  ChatMessage out{m["role"].get<std::string>(), m["content"].get<std::string>(), false};
  if (m.contains("interrupted")) {
    if (!m["interrupted"].is_boolean() || out.role != "assistant")
      throw FormatError(fmt::format("{}: 'interrupted' is a boolean on an assistant message", where));
    out.interrupted = m["interrupted"].get<bool>();
  }
  return out;
}

}  // namespace

Conversation Conversation::from_json(const nlohmann::json& j, const std::string& origin) {
  const nlohmann::json* list = &j;
  if (j.is_object() && j.contains("messages")) list = &j["messages"];
  if (!list->is_array())
    throw FormatError(fmt::format("{}: expected an array of messages (or an object with \"messages\"), got {}", origin,
                                  list->type_name()));
  Conversation c;
  for (size_t i = 0; i < list->size(); ++i) {
    ChatMessage m = message_parse((*list)[i], i, origin);
    if (m.role == "system" && i == 0) {
      c.system_ = std::move(m.content);
      continue;
    }
    const std::string expected = c.turns_.empty() || c.turns_.back().role == "assistant" ? "user" : "assistant";
    if (m.role != expected)
      throw FormatError(
          fmt::format("{}: messages[{}]: role '{}'; expected '{}' (an optional system message first, "
                      "then user and assistant messages in turn)",
                      origin, i, m.role, expected));
    c.turns_.push_back(std::move(m));
  }
  return c;
}

TrimResult Conversation::trim(const std::function<bool(const nlohmann::ordered_json& messages)>& fits) {
  TrimResult result;
  auto is_user = [](const ChatMessage& m) { return m.role == "user"; };
  while (!fits(messages())) {
    // The oldest turn: the first message (a user message) and every one before the next user message.
    auto next_user = turns_.empty() ? turns_.end() : std::find_if(turns_.begin() + 1, turns_.end(), is_user);
    if (next_user == turns_.end()) {
      result.fits = false;
      return result;
    }
    result.messages += static_cast<size_t>(next_user - turns_.begin());
    result.turns += 1;
    turns_.erase(turns_.begin(), next_user);
  }
  return result;
}

void conversation_save(const Conversation& conversation, const std::filesystem::path& path) {
  io::atomic_write(path, conversation.to_json().dump(2) + "\n");
}

Conversation conversation_load(const std::filesystem::path& path) {
  return Conversation::from_json(io::json_read(path), path.string());
}

}  // namespace hearth::chat
