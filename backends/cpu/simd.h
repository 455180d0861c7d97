/* Private seam between the dispatch tables (wtype.c, ops) and the kernels compiled per ISA.
 * Each simd_*.c file is built with its own -m flags and only called after detection says the
 * CPU has them, so these files must not share non-static inline code with the rest. */
#ifndef KP_CPU_SIMD_H
#define KP_CPU_SIMD_H

#include <stddef.h>
#include <stdint.h>

#include "kernels.h"
#include "wtype.h"

/* The portable table (wtype_scalar.c): F32, F16, BF16, I8G; NULL for other types. */
const kp_cpu_wtype *kp_cpu_wtype_scalar(kp_dtype t);

/* ---- shared scalar pieces (wtype_scalar.c), reused by the SIMD tables */
void kp_cpu_f32_dequant_row(const kp_tensor *w, int64_t row, float *dst);
void kp_cpu_f16_dequant_row(const kp_tensor *w, int64_t row, float *dst);
size_t kp_cpu_f16_work_size(int64_t cols, int n);
void kp_cpu_f16_prepare(void *work, const float *x, int n, int64_t cols, const kp_tensor *w);
/* BF16 shares the F16 workspace (one 16-bit value per activation); prepare rounds to nearest
 * even and quiets NaNs, as ggml's activation conversion does. */
void kp_cpu_bf16_dequant_row(const kp_tensor *w, int64_t row, float *dst);
void kp_cpu_bf16_prepare(void *work, const float *x, int n, int64_t cols, const kp_tensor *w);
void kp_cpu_i8g_dequant_row(const kp_tensor *w, int64_t row, float *dst);
size_t kp_cpu_i8g_work_size(int64_t cols, int n);
void kp_cpu_i8g_prepare(void *work, const float *x, int n, int64_t cols, const kp_tensor *w);
void kp_cpu_i8g_rows_scalar(float *y, const kp_tensor *w, const void *work, const float *x, int n,
                            int64_t r0, int64_t r1);

/* I8G activation workspace: n*cols int8 values, then (from a 64-byte boundary) the float
 * scales. The scale area is sized for group 1 because work_size() does not see the group. */
static inline size_t kp_cpu_i8g_scales_offset(int64_t cols, int n)
{
    return ((size_t)cols * (size_t)n + 63) & ~(size_t)63;
}
/* runq arithmetic applies when whole groups tile every row; otherwise the activations stay
 * float and scales are indexed by flattened element (KuiperLLama's int8 kernel). */
static inline int kp_cpu_i8g_quantizes(const kp_tensor *w)
{
    return !w->f32_acts && w->group > 0 && w->ne[0] % w->group == 0;
}

/* F16, BF16 and I8G weights with f32_acts set (wtype_widen.c). */
extern const kp_cpu_wtype kp_cpu_widen;

/* ---- per-ISA tables; present only in x86 builds */
#if defined(KP_CPU_X86)
extern const kp_cpu_wtype kp_cpu_f32_avx2, kp_cpu_f16_avx2, kp_cpu_bf16_avx2, kp_cpu_i8g_avx2;
extern const kp_cpu_wtype kp_cpu_f32_avx512, kp_cpu_f16_avx512, kp_cpu_bf16_avx512;
extern const kp_cpu_wtype kp_cpu_i8g_avx512_vnni, kp_cpu_bf16_avx512_bf16;
extern const kp_cpu_vec kp_cpu_vec_avx2, kp_cpu_vec_avx512;
/* The F16C store of kp_cpu_vec.to_f16 (simd_avx2.c), which the AVX-512 level uses too. */
void kp_cpu_to_f16_f16c(uint16_t *dst, const float *src, size_t n);
#endif

#endif
