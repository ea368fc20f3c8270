// `hearth chat`'s loop: read a line, run it as a command (chat/chat_command.h) or send it as a message
// (chat_session.h), print the reply; until /exit or the end of input.
//
// Two modes. Interactive (stdin a terminal): a prompt with line editing and history (chat/line_editor.h),
// replies streamed to stdout, Ctrl-C stopping a reply (kept as the assistant's turn, marked interrupted) or
// clearing the line at the prompt, Ctrl-D on an empty line leaving, a failed command or message reported on
// the terminal and the loop going on. Lines (stdin a pipe or file, or --json): no prompt or echo; each line a
// message or command; each reply printed to stdout and ended with a newline, or as one JSON object a line;
// notices and command output on stderr; the first error ends the run (thrown). Spec: docs/cli.md, "hearth chat".
#pragma once

#include <string>

#include "infer/chat_session.h"

namespace hearth::infer {

struct ChatReplOptions {
  bool interactive = true;  // a terminal (see the file comment)
  bool json = false;        // lines mode: one JSON object per reply
  std::string banner;       // shown first in interactive mode
};

// Runs the loop on stdin and stdout. Returns at /exit or the end of input. Throws InterruptedError on SIGTERM
// (and on SIGINT in lines mode); in lines mode also the first command's or message's error (hearth::Error).
void chat_repl_run(ChatSession& session, const ChatReplOptions& options);

}  // namespace hearth::infer
