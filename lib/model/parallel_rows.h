// Row-parallel loops for the model's own kernels: at::parallel_for with hearth's thread count (--threads).
//
// at::parallel_for is inline OpenMP (ATen/ParallelOpenMP.h), so it runs in the OpenMP runtime this library is
// compiled against. Debian's libtorch shares that runtime; a pip-installed libtorch bundles its own libgomp, whose
// at::set_num_threads does not reach ours, so the count is copied over before each loop (a no-op when shared).
// Only for files of hearth_model, which is compiled with OpenMP.
#pragma once

#include <omp.h>

#include <cstdint>

#include <ATen/Parallel.h>

namespace hearth::model {

template <typename F>
void parallel_rows(int64_t begin, int64_t end, int64_t grain, const F& f) {
  const int threads = at::get_num_threads();
  if (omp_get_max_threads() != threads) omp_set_num_threads(threads);
  at::parallel_for(begin, end, grain, f);
}

}  // namespace hearth::model
