/* AVX-512 VNNI: the I8G kernel with vpdpbusd doing the multiply-add of four byte pairs in one
 * instruction (256-bit form, AVX512VL). The rest of this level uses simd_avx512.c. */
#include <immintrin.h>

#include "simd.h"

#define KP_DOT4(acc, u, s) _mm256_dpbusd_epi32((acc), (u), (s))
#include "i8g_avx_body.h"

const kp_cpu_wtype kp_cpu_i8g_avx512_vnni = {kp_cpu_i8g_work_size, kp_cpu_i8g_prepare, i8g_rows,
                                             kp_cpu_i8g_dequant_row};
