/* GGUF block types: ggml's byte layouts for the weights, our own row layouts for the quantized
 * activations, and the per-ISA kernel tables.
 *
 * Weights stay in the file's blocks. Activations are quantized the way ggml-cpu does before it
 * multiplies (Q8_0 blocks for Q8_0/Q4_0/Q5_0, Q8_1 with its block sum for
 * Q4_1/Q5_1, Q8_K with 16-element sums for the K-quants), so the integer dot products — and
 * therefore the logits — match llama.cpp's to float rounding. */
#ifndef KP_QUANT_H
#define KP_QUANT_H

#include <stddef.h>
#include <stdint.h>

#include "../wtype.h"

#define KP_QK 32   /* elements per Q4_0/Q4_1/Q5_0/Q5_1/Q8_0 block */
#define KP_QKK 256 /* elements per K-quant super-block */

/* ---- ggml weight blocks (all members are bytes or halves, so sizeof is the file size) */

typedef struct { uint16_t d; int8_t qs[32]; } kp_blk_q8_0;
typedef struct { uint16_t d; uint8_t qs[16]; } kp_blk_q4_0;
typedef struct { uint16_t d, m; uint8_t qs[16]; } kp_blk_q4_1;
typedef struct { uint16_t d; uint8_t qh[4]; uint8_t qs[16]; } kp_blk_q5_0;
typedef struct { uint16_t d, m; uint8_t qh[4]; uint8_t qs[16]; } kp_blk_q5_1;
typedef struct { uint16_t d, dmin; uint8_t scales[12]; uint8_t qs[128]; } kp_blk_q4_k;
typedef struct { uint16_t d, dmin; uint8_t scales[12]; uint8_t qh[32]; uint8_t qs[128]; } kp_blk_q5_k;
typedef struct { uint8_t ql[128]; uint8_t qh[64]; int8_t scales[16]; uint16_t d; } kp_blk_q6_k;

_Static_assert(sizeof(kp_blk_q8_0) == 34, "q8_0 block");
_Static_assert(sizeof(kp_blk_q4_0) == 18, "q4_0 block");
_Static_assert(sizeof(kp_blk_q4_1) == 20, "q4_1 block");
_Static_assert(sizeof(kp_blk_q5_0) == 22, "q5_0 block");
_Static_assert(sizeof(kp_blk_q5_1) == 24, "q5_1 block");
_Static_assert(sizeof(kp_blk_q4_k) == 144, "q4_K block");
_Static_assert(sizeof(kp_blk_q5_k) == 176, "q5_K block");
_Static_assert(sizeof(kp_blk_q6_k) == 210, "q6_K block");

/* 6-bit scale and min of sub-block j (0..7) of a Q4_K/Q5_K super-block. */
static inline void kp_k4_scale_min(int j, const uint8_t *s, int *sc, int *m)
{
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4);
        *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

/* ---- quantized activation rows (workspace layout, ours)
 * A row of `cols` values is stored as: int8 qs[cols] | float d[nb] | (Q8_1) float s[nb]
 * | (Q8_0, Q8_1) int32 isum[nb] | (Q8_K) int16 bsums[16 * nb], padded to 64 bytes. isum is the
 * integer sum of each block's values: the row-interleaved kernels take Q4_0's offset of 8 (and
 * the unsigned form of Q8_0 weights) out of the integer products with it. d and s are the values ggml uses after its
 * own rounding (F16 for Q8_0/Q8_1, F32 for Q8_K), kept as floats so kernels need no conversion. */
typedef enum kp_act_kind { KP_ACT_Q8_0, KP_ACT_Q8_1, KP_ACT_Q8_K } kp_act_kind;

size_t kp_act_row_bytes(kp_act_kind k, int64_t cols);
/* Quantizes one row; cols is a multiple of 32 (Q8_0/Q8_1) or 256 (Q8_K). */
void kp_act_quantize_row(kp_act_kind k, const float *x, int64_t cols, void *row);

static inline const float *kp_act_d(const void *row, int64_t cols)
{
    return (const float *)((const uint8_t *)row + cols);
}
static inline const float *kp_act_s(const void *row, int64_t cols)
{
    return kp_act_d(row, cols) + cols / KP_QK;
}
static inline const int32_t *kp_act_isum(kp_act_kind k, const void *row, int64_t cols)
{
    return (const int32_t *)(kp_act_d(row, cols) + (k == KP_ACT_Q8_1 ? 2 : 1) * (cols / KP_QK));
}
static inline const int16_t *kp_act_bsums(const void *row, int64_t cols)
{
    return (const int16_t *)(kp_act_d(row, cols) + cols / KP_QKK);
}

/* ---- per-type dot products: one weight row (cols elements) with one activation row */
typedef float (*kp_qdot_fn)(const void *w, const void *act, int64_t cols);

float kp_qdot_q8_0_scalar(const void *w, const void *act, int64_t cols);
float kp_qdot_q4_0_scalar(const void *w, const void *act, int64_t cols);
float kp_qdot_q4_1_scalar(const void *w, const void *act, int64_t cols);
float kp_qdot_q5_0_scalar(const void *w, const void *act, int64_t cols);
float kp_qdot_q5_1_scalar(const void *w, const void *act, int64_t cols);
float kp_qdot_q4_k_scalar(const void *w, const void *act, int64_t cols);
float kp_qdot_q5_k_scalar(const void *w, const void *act, int64_t cols);
float kp_qdot_q6_k_scalar(const void *w, const void *act, int64_t cols);

/* Dequantizes `cols` elements of one weight row, computing each value as ggml's
 * dequantize_row_* does (same operation order), so embeddings looked up from quantized tables
 * are the same floats. */
void kp_qdequant(kp_dtype t, const void *w, int64_t cols, float *dst);

/* Which activation quantization a weight type uses; -1 if not a block type handled here. */
int kp_act_kind_for(kp_dtype t);

/* ---- the kp_cpu_wtype pieces every ISA level shares: activation quantization (scalar on
 * purpose: it is O(cols) per row against O(rows*cols) for the products, and one code path keeps
 * every level bit-identical) and dequantization */
size_t kp_quant_work_size_q8_0(int64_t cols, int n);
size_t kp_quant_work_size_q8_1(int64_t cols, int n);
size_t kp_quant_work_size_q8_k(int64_t cols, int n);
void kp_quant_prepare_q8_0(void *work, const float *x, int n, int64_t cols, const kp_tensor *w);
void kp_quant_prepare_q8_1(void *work, const float *x, int n, int64_t cols, const kp_tensor *w);
void kp_quant_prepare_q8_k(void *work, const float *x, int n, int64_t cols, const kp_tensor *w);
void kp_quant_dequant_row(const kp_tensor *w, int64_t row, float *dst);

/* Kernel tables per level: traits for dtype t, NULL if that level has no kernel for it. */
const kp_cpu_wtype *kp_quant_scalar_get(kp_dtype t);
#if defined(__x86_64__) || defined(__i386__)
#define KP_QUANT_X86 1
#define KP_QUANT_DECLARE_LEVEL(sfx)                                                 \
    const kp_cpu_wtype *kp_quant_get_##sfx(kp_dtype t);                             \
    float kp_qdot_q8_0_##sfx(const void *w, const void *act, int64_t cols);         \
    float kp_qdot_q4_0_##sfx(const void *w, const void *act, int64_t cols);         \
    float kp_qdot_q4_1_##sfx(const void *w, const void *act, int64_t cols);         \
    float kp_qdot_q5_0_##sfx(const void *w, const void *act, int64_t cols);         \
    float kp_qdot_q5_1_##sfx(const void *w, const void *act, int64_t cols);         \
    float kp_qdot_q4_k_##sfx(const void *w, const void *act, int64_t cols);         \
    float kp_qdot_q5_k_##sfx(const void *w, const void *act, int64_t cols);         \
    float kp_qdot_q6_k_##sfx(const void *w, const void *act, int64_t cols);
KP_QUANT_DECLARE_LEVEL(avx2)
KP_QUANT_DECLARE_LEVEL(avx512vnni)
#endif

/* The matmul row loop every level uses around its dot: y[t*rows + r] for r in [r0, r1), t < n. */
#define KP_QUANT_DEFINE_ROWS(fname, dotfn, kind)                                                   \
    static void fname(float *y, const kp_tensor *w, const void *work, const float *x, int n,       \
                      int64_t r0, int64_t r1)                                                      \
    {                                                                                              \
        (void)x;                                                                                   \
        const int64_t cols = w->ne[0], rows = w->ne[1];                                            \
        const size_t wrb = kp_dtype_row_bytes(w->dtype, cols), arb = kp_act_row_bytes(kind, cols); \
        for (int64_t r = r0; r < r1; r++) {                                                        \
            const uint8_t *wr = (const uint8_t *)w->data + (size_t)r * wrb;                        \
            for (int t = 0; t < n; t++)                                                            \
                y[(size_t)t * (size_t)rows + (size_t)r] =                                          \
                    dotfn(wr, (const uint8_t *)work + (size_t)t * arb, cols);                      \
        }                                                                                          \
    }

#endif
