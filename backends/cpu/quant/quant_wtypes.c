/* GGUF block-type kernels: the best level at or below the one asked for. */
#include "quant.h"

const kp_cpu_wtype *kp_cpu_quant_wtype_get(kp_dtype t, kp_isa isa)
{
    const kp_cpu_wtype *w = NULL;
#ifdef KP_QUANT_X86
    if (isa >= KP_ISA_AVX512_VNNI)
        w = kp_quant_get_avx512vnni(t);
    /* plain AVX-512 gains nothing over the 256-bit kernels for these block sizes */
    if (!w && isa >= KP_ISA_AVX2)
        w = kp_quant_get_avx2(t);
#else
    (void)isa;
#endif
    if (!w)
        w = kp_quant_scalar_get(t);
    return w;
}
