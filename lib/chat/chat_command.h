// The commands of `hearth chat`'s prompt ("/help", "/save FILE", ...): what a typed line is, and the help
// text. Parsing only; lib/infer/chat_repl.cpp carries them out.
#pragma once

#include <optional>
#include <string>

namespace hearth::chat {

enum class ChatCommandKind { kHelp, kReset, kSystem, kAdapter, kSave, kLoad, kExit, kUnknown };

struct ChatCommand {
  ChatCommandKind kind = ChatCommandKind::kUnknown;
  std::string name;  // as typed, with its "/" ("/save")
  std::string arg;   // the rest of the line, spaces around it removed ("" when none)
};

// A line that starts with "/" is a command: its first word names it, the rest is its argument. Returns
// nullopt for a message: a line not starting with "/", or starting with "//" (a message that starts with
// "/": the caller sends it without the first "/"). An unknown name gives kind kUnknown.
std::optional<ChatCommand> chat_command_parse(const std::string& line);

// The commands, one a line ("/save FILE   write the conversation to FILE (JSON messages)"), for /help.
std::string chat_command_help();
// The command names in one line ("/help /reset /system ..."), for the unknown-command message.
std::string chat_command_names();

}  // namespace hearth::chat
