/* Weight-type dispatch: our own tables for the plain types and I8G, the quant/ tables for the
 * GGUF blocks. A level without an entry falls back to the next lower level that has one. */
#include "quant/repack.h"
#include "simd.h"

static const kp_cpu_wtype *own(kp_dtype t, kp_isa isa)
{
    if (isa == KP_ISA_SCALAR)
        return kp_cpu_wtype_scalar(t);
#if defined(KP_CPU_X86)
    switch (isa) {
    case KP_ISA_AVX2:
        return t == KP_DTYPE_F32 ? &kp_cpu_f32_avx2
             : t == KP_DTYPE_F16 ? &kp_cpu_f16_avx2
             : t == KP_DTYPE_BF16 ? &kp_cpu_bf16_avx2
             : t == KP_DTYPE_I8G ? &kp_cpu_i8g_avx2
             : NULL;
    case KP_ISA_AVX512:
        return t == KP_DTYPE_F32 ? &kp_cpu_f32_avx512
             : t == KP_DTYPE_F16 ? &kp_cpu_f16_avx512
             : t == KP_DTYPE_BF16 ? &kp_cpu_bf16_avx512
             : NULL;
    case KP_ISA_AVX512_VNNI:
        return t == KP_DTYPE_I8G                                  ? &kp_cpu_i8g_avx512_vnni
             : t == KP_DTYPE_BF16 && kp_cpu_has_avx512_bf16() ? &kp_cpu_bf16_avx512_bf16
                                                              : NULL;
    default:
        return NULL;
    }
#else
    return NULL;
#endif
}

const kp_cpu_wtype *kp_cpu_wtype_get_isa(kp_dtype t, kp_isa isa)
{
    /* Never hand out code the CPU cannot run, whatever the caller asks for. */
    kp_isa hw = kp_cpu_isa_detected();
    if ((int)isa > (int)hw)
        isa = hw;
    for (int l = (int)isa; l >= 0; l--) {
        const kp_cpu_wtype *w = own(t, (kp_isa)l);
        if (!w)
            w = kp_cpu_quant_wtype_get(t, (kp_isa)l);
        if (w)
            return w;
    }
    return NULL;
}

const kp_cpu_wtype *kp_cpu_wtype_get(kp_dtype t) { return kp_cpu_wtype_get_isa(t, kp_cpu_isa()); }

const kp_cpu_wtype *kp_cpu_wtype_for(const kp_tensor *w)
{
    if (w->f32_acts && (w->dtype == KP_DTYPE_F16 || w->dtype == KP_DTYPE_BF16 || w->dtype == KP_DTYPE_I8G))
        return &kp_cpu_widen;
    if (w->layout == KP_LAYOUT_R8) {
        kp_isa isa = kp_cpu_isa(), hw = kp_cpu_isa_detected();
        return kp_r8_wtype_get(w->dtype, isa < hw ? isa : hw);
    }
    return kp_cpu_wtype_get(w->dtype);
}
