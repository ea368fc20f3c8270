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

}  // namespace hearth
