#include "data/chat_exports.h"

#include <cmath>
#include <unordered_set>

#include <fmt/format.h>

#include "data/text_util.h"

namespace hearth::data {
using nlohmann::json;

namespace {

// Field `key` of `j` when it is a string, else "" (never throws on other types: the input is untrusted).
std::string str_of(const json& j, const char* key) {
  if (!j.is_object()) return "";
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

const json* field(const json& j, const char* key) {
  if (!j.is_object()) return nullptr;
  auto it = j.find(key);
  return it == j.end() ? nullptr : &*it;
}

// ChatGPT's times are seconds since the epoch (floats, or null).
std::string epoch_field(const json& j, const char* key) {
  const json* v = field(j, key);
  if (!v || !v->is_number()) return "";
  double t = v->get<double>();
  if (!std::isfinite(t) || t < 0 || t > 253402300799.0) return "";  // past 9999-12-31
  return iso_utc(static_cast<int64_t>(t));
}

// Appends a turn, merging it into the previous one when the role is the same.
void turn_add(std::vector<Message>& turns, const std::string& role, std::string text) {
  if (trim(text).empty()) return;
  if (!turns.empty() && turns.back().role == role) {
    turns.back().content += "\n\n" + text;
    return;
  }
  turns.push_back({role, std::move(text)});
}

std::string position_of(size_t i, const std::string& title) {
  return title.empty() ? fmt::format("conversation [{}]", i) : fmt::format("conversation [{}] '{}'", i, title);
}

bool first_object_has(const json& j, const char* key) {
  if (!j.is_array()) return false;
  for (const auto& c : j)
    if (c.is_object()) return c.contains(key);
  return false;
}

// ---- ChatGPT ----

// The text of a ChatGPT message worth training on, with its role, or false to skip it.
bool chatgpt_message(const json& msg, std::string* role, std::string* text) {
  if (!msg.is_object()) return false;
  const json* author = field(msg, "author");
  *role = author ? str_of(*author, "role") : "";
  if (*role != "user" && *role != "assistant" && *role != "system") return false;  // tool
  std::string recipient = str_of(msg, "recipient");
  if (!recipient.empty() && recipient != "all") return false;  // an assistant message to a tool (code, search)
  const json* meta = field(msg, "metadata");
  if (meta && meta->is_object()) {
    const json* hidden = field(*meta, "is_visually_hidden_from_conversation");
    if (hidden && hidden->is_boolean() && hidden->get<bool>()) return false;
  }
  const json* content = field(msg, "content");
  if (!content || !content->is_object()) return false;
  std::string type = str_of(*content, "content_type");
  if (type != "text" && type != "multimodal_text") return false;
  const json* parts = field(*content, "parts");
  if (!parts || !parts->is_array()) return false;
  text->clear();
  for (const auto& p : *parts) {  // image and file parts are objects: left out
    if (!p.is_string() || trim(p.get_ref<const std::string&>()).empty()) continue;
    if (!text->empty()) *text += "\n\n";
    *text += p.get<std::string>();
  }
  return !trim(*text).empty();
}

// The node ids of the current branch, root first. `why` is set when the tree is unusable.
std::vector<std::string> chatgpt_branch(const json& mapping, const json& conv, std::string* why) {
  std::string node = str_of(conv, "current_node");
  if (node.empty()) {
    // Older exports and hand-made files may lack current_node: follow the last child from the root.
    for (auto& [id, n] : mapping.items()) {
      const json* parent = field(n, "parent");
      if (!parent || parent->is_null()) {
        node = id;
        break;
      }
    }
    for (size_t steps = 0; !node.empty() && steps <= mapping.size(); ++steps) {
      const json* children = field(mapping[node], "children");
      if (!children || !children->is_array() || children->empty() || !children->back().is_string()) break;
      std::string next = children->back().get<std::string>();
      if (!mapping.contains(next)) break;
      node = next;
    }
  }
  std::vector<std::string> chain;
  std::unordered_set<std::string> seen;
  while (!node.empty()) {
    if (!mapping.contains(node)) {
      *why = fmt::format("mapping: node '{}' is missing; expected every parent of current_node in the mapping", node);
      return {};
    }
    if (!seen.insert(node).second) {
      *why = fmt::format("mapping: node '{}' is its own ancestor; expected a tree", node);
      return {};
    }
    chain.push_back(node);
    node = str_of(mapping[node], "parent");
  }
  return {chain.rbegin(), chain.rend()};
}

bool chatgpt_conversation(const json& conv, Record* out, std::string* why) {
  const json* mapping = field(conv, "mapping");
  if (!mapping || !mapping->is_object()) {
    *why = fmt::format("mapping: expected an object of message nodes, got {}", mapping ? mapping->type_name() : "none");
    return false;
  }
  std::vector<std::string> branch = chatgpt_branch(*mapping, conv, why);
  if (!why->empty()) return false;
  for (const auto& id : branch) {
    std::string role, text;
    const json* msg = field((*mapping)[id], "message");
    if (msg && chatgpt_message(*msg, &role, &text)) turn_add(out->messages, role, std::move(text));
  }
  out->kind = RecordKind::kChat;
  out->provenance.created = epoch_field(conv, "create_time");
  out->provenance.updated = epoch_field(conv, "update_time");
  return true;
}

// ---- Claude ----

bool claude_message(const json& msg, std::string* role, std::string* text, std::string* why) {
  if (!msg.is_object()) {
    *why = fmt::format("expected an object, got {}", msg.type_name());
    return false;
  }
  std::string sender = str_of(msg, "sender");
  if (sender == "human") *role = "user";
  else if (sender == "assistant") *role = "assistant";
  else {
    *why = fmt::format("sender: expected human|assistant, got '{}'", sender);
    return false;
  }
  text->clear();
  const json* content = field(msg, "content");
  if (content && content->is_array() && !content->empty()) {
    for (const auto& block : *content) {  // tool_use, tool_result, thinking, images: left out
      if (str_of(block, "type") != "text") continue;
      std::string t = str_of(block, "text");
      if (trim(t).empty()) continue;
      if (!text->empty()) *text += "\n\n";
      *text += t;
    }
  } else {
    *text = str_of(msg, "text");
  }
  return true;
}

bool claude_conversation(const json& conv, Record* out, std::string* why) {
  const json* msgs = field(conv, "chat_messages");
  if (!msgs || !msgs->is_array()) {
    *why = fmt::format("chat_messages: expected an array, got {}", msgs ? msgs->type_name() : "none");
    return false;
  }
  for (size_t k = 0; k < msgs->size(); ++k) {
    std::string role, text, bad;
    if (!claude_message((*msgs)[k], &role, &text, &bad)) {
      *why = fmt::format("chat_messages[{}]: {}", k, bad);
      return false;
    }
    turn_add(out->messages, role, std::move(text));
  }
  out->kind = RecordKind::kChat;
  out->provenance.created = str_of(conv, "created_at");
  out->provenance.updated = str_of(conv, "updated_at");
  return true;
}

using ConversationReader = bool (*)(const json&, Record*, std::string*);

Extracted conversations_read(const json& j, const char* title_key, ConversationReader read, const char* expected) {
  Extracted ex;
  if (!j.is_array()) {
    ex.issues.push_back({0, fmt::format("expected {}, got a JSON {}", expected, j.type_name())});
    ex.skip_reason = ex.issues.back().reason;
    return ex;
  }
  for (size_t i = 0; i < j.size(); ++i) {
    const json& conv = j[i];
    Record r;
    std::string title = str_of(conv, title_key), why;
    r.provenance.position = position_of(i, title);
    r.provenance.title = title;
    if (!conv.is_object()) why = fmt::format("expected a conversation object, got {}", conv.type_name());
    else read(conv, &r, &why);
    if (!why.empty()) {
      ex.issues.push_back({0, r.provenance.position + ": " + why});
      continue;
    }
    if (!r.messages.empty()) ex.records.push_back(std::move(r));
  }
  return ex;
}

}  // namespace

bool chatgpt_export_detect(const json& j) { return first_object_has(j, "mapping"); }
bool claude_export_detect(const json& j) { return first_object_has(j, "chat_messages"); }

Extracted chatgpt_records(const json& j) {
  Extracted ex = conversations_read(j, "title", chatgpt_conversation,
                                    "a ChatGPT conversations.json (an array of conversations with a 'mapping')");
  ex.format = "chatgpt";
  return ex;
}

Extracted claude_records(const json& j) {
  Extracted ex = conversations_read(j, "name", claude_conversation,
                                    "a Claude conversations.json (an array of conversations with 'chat_messages')");
  ex.format = "claude";
  return ex;
}

}  // namespace hearth::data
