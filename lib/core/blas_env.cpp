#include "core/blas_env.h"

#include <dlfcn.h>

#include <cstdlib>
#include <cstring>

namespace hearth {

bool openblas_coretype_prepare() {
  if (std::getenv("OPENBLAS_CORETYPE")) return false;
  using Corename = const char* (*)();
  // Found only when OpenBLAS is loaded (e.g. as libtorch's BLAS); any other BLAS has no such question.
  const auto corename = reinterpret_cast<Corename>(dlsym(RTLD_DEFAULT, "openblas_get_corename"));
  const char* current = corename ? corename() : nullptr;
  if (!current || std::strcmp(current, "Prescott") != 0) return false;
  const char* core = nullptr;
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
      __builtin_cpu_supports("avx512vl"))
    core = "SkylakeX";
  else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    core = "Haswell";
  if (!core) return false;  // an old CPU: Prescott's kernels are its own
  setenv("OPENBLAS_CORETYPE", core, 1);
  return true;
}

}  // namespace hearth
