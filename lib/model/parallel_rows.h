// Row-parallel loops for the model's own kernels, on hearth's thread count (--threads).
//
// OpenMP directly, in the runtime this library is compiled against. Debian's libtorch shares that runtime; a
// pip-installed libtorch bundles its own libgomp, whose at::set_num_threads does not reach ours, so the count is
// copied over before each loop (a no-op when shared). Only for files of hearth_model, which is compiled with OpenMP.
#pragma once

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>
#include <mutex>

#include <ATen/Parallel.h>

namespace hearth::model {

// Set by compute_serially_on_this_thread (compute_threads.h).
extern thread_local bool t_serial_thread;

// f(r0, r1) over [begin, end) in tasks of at least `grain` rows, on up to the intra-op thread count. The threads take
// tasks as they come free (up to 4 per thread) rather than one fixed share each: on a machine whose cores also run
// other work (a VM's neighbours, serve's connection threads) one slow core no longer holds up the step — measured
// on 2 vCPUs, a float32 decode step's products split evenly left one thread waiting for the other 13% of the time.
// f must not depend on how the rows are cut (the kernels give each row the same result whatever its range). The
// first exception f throws is rethrown here once every thread has stopped; nested calls run on the calling thread.
template <typename F>
void parallel_rows(int64_t begin, int64_t end, int64_t grain, const F& f) {
  if (begin >= end) return;
  if (t_serial_thread) return f(begin, end);
  const int threads = at::get_num_threads();
  if (omp_get_max_threads() != threads) omp_set_num_threads(threads);
  const int64_t n = end - begin, step = std::max<int64_t>(grain, 1), most_tasks = (n + step - 1) / step;
  const int team = static_cast<int>(std::min<int64_t>(threads, most_tasks));
  if (team <= 1 || omp_in_parallel()) return f(begin, end);
  const int64_t tasks = std::min<int64_t>(most_tasks, int64_t(4) * team), size = (n + tasks - 1) / tasks;
  std::atomic<int64_t> next{0};
  std::exception_ptr failure;
  std::mutex failure_mu;
#pragma omp parallel num_threads(team)
  {
    for (int64_t t = next.fetch_add(1, std::memory_order_relaxed); t < tasks;
         t = next.fetch_add(1, std::memory_order_relaxed)) {
      const int64_t r0 = begin + t * size;
      if (r0 >= end) break;
      try {
        f(r0, std::min(end, r0 + size));
      } catch (...) {
        std::lock_guard<std::mutex> lock(failure_mu);
        if (!failure) failure = std::current_exception();
        next.store(tasks, std::memory_order_relaxed);  // the others stop at their next task
      }
    }
  }
  if (failure) std::rethrow_exception(failure);
}

}  // namespace hearth::model
