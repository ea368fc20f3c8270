// The environment OpenBLAS reads when it is loaded (so before main(): a process that changes it must execute itself
// again, or set it for its children).
#pragma once

namespace hearth {

// OpenBLAS (the float32 matrix products) chooses its kernels from the CPU model when it is loaded, and gives a model it
// does not know its generic SSE3 kernels ("Prescott"): Debian 12's 0.3.21 does so on Intel's Emerald Rapids, where
// float32 decode then ran 1.8× and prefill 3.5× slower (bench/README.md). Unless OPENBLAS_CORETYPE is set already,
// and when the loaded OpenBLAS fell back that way, sets it to the kernels of the instructions the CPU has (SkylakeX
// with AVX-512, Haswell with AVX2). Returns whether it set it: the process's own OpenBLAS keeps its kernels; its
// children, or the process executed again, get the new ones.
bool openblas_coretype_prepare();

}  // namespace hearth
