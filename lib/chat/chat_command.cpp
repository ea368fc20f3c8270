// `hearth chat`'s commands. See chat_command.h.
#include "chat/chat_command.h"

#include <fmt/format.h>

namespace hearth::chat {
namespace {

struct CommandInfo {
  ChatCommandKind kind;
  const char* name;
  const char* usage;
  const char* what;
};

constexpr CommandInfo kCommands[] = {
    {ChatCommandKind::kHelp, "/help", "/help", "this list"},
    {ChatCommandKind::kReset, "/reset", "/reset", "forget the conversation (the system message stays)"},
    {ChatCommandKind::kSystem, "/system", "/system [TEXT|none]", "set, show or remove the system message"},
    {ChatCommandKind::kAdapter, "/adapter", "/adapter [NAME|PATH|none]",
     "use a loaded or another LoRA adapter, or the base model; alone: the adapters"},
    {ChatCommandKind::kSave, "/save", "/save FILE", "write the conversation to FILE (JSON messages)"},
    {ChatCommandKind::kLoad, "/load", "/load FILE", "continue a conversation saved with /save"},
    {ChatCommandKind::kExit, "/exit", "/exit", "leave (so does Ctrl-D on an empty line)"},
};

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

}  // namespace

std::optional<ChatCommand> chat_command_parse(const std::string& line) {
  if (line.empty() || line[0] != '/' || line.rfind("//", 0) == 0) return std::nullopt;
  const auto end = line.find_first_of(" \t");
  ChatCommand c;
  c.name = line.substr(0, end);
  c.arg = end == std::string::npos ? "" : trim(line.substr(end));
  for (const auto& info : kCommands)
    if (c.name == info.name) c.kind = info.kind;
  return c;
}

std::string chat_command_help() {
  std::string out;
  for (const auto& info : kCommands) out += fmt::format("  {:<27} {}\n", info.usage, info.what);
  out += "  Ctrl-C stops a reply; a line starting with // sends a message that starts with /\n";
  return out;
}

std::string chat_command_names() {
  std::string out;
  for (const auto& info : kCommands) out += (out.empty() ? "" : " ") + std::string(info.name);
  return out;
}

}  // namespace hearth::chat
