// Reading a line from the terminal with editing and history, for `hearth chat`'s prompt: libedit through its
// readline-compatible API (Debian's libedit-dev, editline/readline.h).
//
// Ctrl-C (SIGINT, with core/signals.h's handler installed) ends the read as kInterrupted: the typed line is
// dropped and the signal forgotten (interrupt_clear), so the caller shows a fresh prompt. Ctrl-D on an empty
// line is kEof. SIGTERM ends the read as kTerminated (the signal is kept for the caller to act on). Input is
// read as UTF-8 whatever the locale: LC_CTYPE is set from the environment, or to C.UTF-8 when that is not a
// UTF-8 one. Not for pipes (the caller reads those with std::getline). libedit's state is global: one
// LineEditor at a time, on one thread.
#pragma once

#include <string>

namespace hearth::chat {

class LineEditor {
 public:
  enum class Status { kLine, kInterrupted, kEof, kTerminated };
  struct Result {
    Status status = Status::kEof;
    std::string line;  // with kLine: the line, without its newline
  };

  LineEditor();
  ~LineEditor();
  LineEditor(const LineEditor&) = delete;
  LineEditor& operator=(const LineEditor&) = delete;

  // Shows `prompt` and reads a line from stdin (a terminal), echoing to stdout.
  Result read(const std::string& prompt);
  // Adds a line to the history that the up and down arrows walk (empty lines and repeats are skipped).
  void history_add(const std::string& line);

 private:
  std::string last_;
};

}  // namespace hearth::chat
