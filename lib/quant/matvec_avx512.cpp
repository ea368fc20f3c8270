// AVX-512 F/BW/VL variant (see matvec_avx512.inc).
#define HEARTH_KERNELS_FN kernels_avx512
#include "quant/matvec_avx512.inc"
