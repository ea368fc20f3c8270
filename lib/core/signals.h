// Cooperative interruption: SIGINT/SIGTERM set a flag that long-running loops poll.
//
// Long work (generation, training, ingest) checks interrupt_requested() at safe points, finishes what it
// must (e.g. a checkpoint) and then throws InterruptedError. A second signal exits immediately.
#pragma once

namespace hearth {

// Installs the handlers for SIGINT and SIGTERM. Idempotent.
void signals_install();
// True once SIGINT or SIGTERM has been received. Async-signal-safe to call.
bool interrupt_requested();
// The signal number received (SIGINT/SIGTERM), 0 if none.
int interrupt_signal();
// Throws InterruptedError("<where>: interrupted") if a signal was received.
void interrupt_check(const char* where);
// Forgets a received signal, so that the next one is again a first one (not an immediate exit). For an
// interactive loop that answers SIGINT by stopping the current work and carrying on (`hearth chat`).
void interrupt_clear();

// Interruption inside library work that has no safe point of its own (tokenizing one 45 MB text): a thread that
// may stop there opens an InterruptScope; long loops deep in the libraries call interrupt_point(), which throws
// InterruptedError("<where>: interrupted by signal") once a signal was received — on threads inside a scope only.
// Elsewhere (a server's request threads, which finish their work on SIGTERM) interrupt_point() does nothing.
// Cost: a thread-local load; call it every few thousand iterations.
class InterruptScope {
 public:
  explicit InterruptScope(const char* where);
  ~InterruptScope();
  InterruptScope(const InterruptScope&) = delete;
  InterruptScope& operator=(const InterruptScope&) = delete;

 private:
  const char* outer_;
};
void interrupt_point();

}  // namespace hearth
