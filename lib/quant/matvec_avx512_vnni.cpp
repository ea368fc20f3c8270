// AVX-512 F/BW/VL + VNNI variant (see matvec_avx512.inc).
#define HEARTH_VNNI 1
#define HEARTH_KERNELS_FN kernels_avx512_vnni
#include "quant/matvec_avx512.inc"
