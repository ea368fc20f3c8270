#include "core/signals.h"

#include <unistd.h>

#include <atomic>
#include <csignal>
#include <string>

#include "core/error.h"

namespace hearth {
namespace {
std::atomic<int> g_signal{0};

extern "C" void on_signal(int sig) {
  if (g_signal.exchange(sig) != 0) _exit(128 + sig);  // second signal: stop now
}
}  // namespace

void signals_install() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  // A write past the file-size limit (ulimit -f) then fails with EFBIG, which the writers report and clean up
  // after, instead of the default action killing the process with a half-written temporary left behind.
  std::signal(SIGXFSZ, SIG_IGN);
}

bool interrupt_requested() { return g_signal.load() != 0; }
int interrupt_signal() { return g_signal.load(); }
void interrupt_clear() { g_signal.store(0); }

void interrupt_check(const char* where) {
  if (interrupt_requested()) throw InterruptedError(std::string(where) + ": interrupted by signal");
}

namespace {
thread_local const char* t_interrupt_scope = nullptr;  // the innermost InterruptScope's `where`
}  // namespace

InterruptScope::InterruptScope(const char* where) : outer_(t_interrupt_scope) { t_interrupt_scope = where; }
InterruptScope::~InterruptScope() { t_interrupt_scope = outer_; }

void interrupt_point() {
  if (t_interrupt_scope) interrupt_check(t_interrupt_scope);
}

}  // namespace hearth
