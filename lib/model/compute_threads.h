// Which threads run the model's parallel loops.
//
// libgomp gives every thread that starts a parallel region a pool of worker threads of its own, and when the process
// holds more such workers (plus the initial thread) than it has CPUs, every worker spins only ~100 times at a barrier
// before it sleeps. A server that loads the model on its main thread and steps it on a scheduler thread holds two
// pools: with --threads equal to the core count (the default) its workers then slept and woke between nearly every two
// parallel regions of a decode step (6,000 voluntary context switches a second on 2 cores at 16 streams).
#pragma once

#include <functional>

namespace hearth::model {

// From now on this thread runs libtorch's and hearth's parallel loops on itself alone (OpenMP's thread count 1 here,
// parallel_rows serial): it starts no pool of workers. For a thread that only coordinates (a server's main thread).
void compute_serially_on_this_thread();

// Runs f on a thread of its own and waits for it: the worker pool f's parallel loops create ends with that thread.
// f's exception, if it throws one, is rethrown here.
void run_on_passing_thread(const std::function<void()>& f);

}  // namespace hearth::model
