#include "model/compute_threads.h"

#include <omp.h>

#include <exception>
#include <thread>

#include <ATen/Parallel.h>

#include "model/parallel_rows.h"

namespace hearth::model {

thread_local bool t_serial_thread = false;

void compute_serially_on_this_thread() {
  t_serial_thread = true;
  at::get_num_threads();  // ATen's first call on a thread sets OpenMP's count there from its own: done before ours
  omp_set_num_threads(1);
  omp_pause_resource_all(omp_pause_soft);  // this thread's pool, if it has one, ends (libgomp: its workers exit)
}

void run_on_passing_thread(const std::function<void()>& f) {
  std::exception_ptr failure;
  std::thread([&] {
    try {
      f();
    } catch (...) {
      failure = std::current_exception();
    }
  }).join();
  if (failure) std::rethrow_exception(failure);
}

}  // namespace hearth::model
