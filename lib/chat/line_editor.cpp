// The terminal line editor: libedit's readline API with our own character reader. See line_editor.h.
//
// Why our own reader (rl_getc_function): libedit retries a read() that a signal interrupted, so Ctrl-C would
// do nothing until Enter. Ours returns -1 ("end of input") when a signal has arrived, which ends readline()
// with NULL; the signal flag then tells an interruption from Ctrl-D. libedit's own signal handling is off
// (rl_catch_signals = 0): it re-sends the signal to the whole process group. The reader decodes UTF-8 itself
// because libedit takes each value it returns as one character.
#include "chat/line_editor.h"

#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <clocale>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <editline/readline.h>

#include "core/signals.h"

namespace hearth::chat {
namespace {

// One byte from `fd`: the byte, -1 at end of input or on an error, -2 when a signal arrived. A signal that
// arrived before the wait began (while readline set the terminal up, say) would not interrupt a blocking read(),
// so the wait is a poll() that looks at the signal flag at least every 100 ms.
int byte_read(int fd) {
  for (;;) {
    if (interrupt_requested()) return -2;
    pollfd p{fd, POLLIN, 0};
    const int ready = ::poll(&p, 1, 100);
    if (ready < 0 && errno != EINTR) return -1;
    if (ready <= 0) continue;
    unsigned char c = 0;
    const ssize_t n = ::read(fd, &c, 1);
    if (n == 1) return c;
    if (n == 0) return -1;
    if (errno != EINTR && errno != EAGAIN) return -1;
  }
}

// rl_getc_function: the next character (a Unicode code point) from the input, or -1 to end the read.
int char_read(FILE* in) {
  const int fd = fileno(in);
  const int lead = byte_read(fd);
  if (lead < 0) return -1;
  const int more = (lead & 0xE0) == 0xC0 ? 1 : (lead & 0xF0) == 0xE0 ? 2 : (lead & 0xF8) == 0xF0 ? 3 : 0;
  int cp = more == 0 ? lead : lead & (0x3F >> more);  // the lead byte's payload bits
  for (int i = 0; i < more; ++i) {
    const int b = byte_read(fd);
    if (b < 0) return -1;
    if ((b & 0xC0) != 0x80) return 0xFFFD;  // broken UTF-8: a replacement character, the byte dropped
    cp = (cp << 6) | (b & 0x3F);
  }
  return cp;
}

}  // namespace

LineEditor::LineEditor() {
  std::setlocale(LC_CTYPE, "");
  const char* ctype = std::setlocale(LC_CTYPE, nullptr);
  if (!ctype || (!std::strstr(ctype, "UTF-8") && !std::strstr(ctype, "utf8"))) std::setlocale(LC_CTYPE, "C.UTF-8");
  rl_catch_signals = 0;
  rl_getc_function = char_read;
  rl_readline_name = "hearth";
  rl_initialize();
  using_history();
}

LineEditor::~LineEditor() { clear_history(); }

LineEditor::Result LineEditor::read(const std::string& prompt) {
  char* raw = readline(prompt.c_str());
  Result r;
  if (raw) {
    r.status = Status::kLine;
    r.line = raw;
    std::free(raw);
    return r;
  }
  if (interrupt_signal() == SIGINT) {
    interrupt_clear();
    r.status = Status::kInterrupted;
  } else {
    r.status = interrupt_requested() ? Status::kTerminated : Status::kEof;
  }
  return r;
}

void LineEditor::history_add(const std::string& line) {
  if (line.empty() || line == last_) return;
  add_history(line.c_str());
  last_ = line;
}

}  // namespace hearth::chat
