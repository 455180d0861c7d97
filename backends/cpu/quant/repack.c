/* KP_LAYOUT_R8 (see repack.h): packing, unpacking, and the scalar reference on packed data,
 * which reassembles each file block and uses the file-layout scalar dot on it, so packed and
 * unpacked scalar results are the same floats. */
#include <string.h>

#include "repack.h"

/* A file block of `elems` values: `hw` F16 header words (d, then m or dmin), for the K-quants
 * the 12 bytes of packed scales and `qh` bytes of fifth bits, then `q` bytes of values; `unit`
 * bytes per 8 rows packed. */
typedef struct r8_fmt {
    size_t blk, unit;
    int elems, hw, q, qh;
    int q6; /* Q6_K: values first, then scales and d (see move_q6_k) */
} r8_fmt;

/* the largest file block of a packed type */
#define R8_MAX_BLK sizeof(kp_blk_q6_k)

static int fmt_of(kp_dtype t, r8_fmt *f)
{
    switch (t) {
    case KP_DTYPE_Q4_0: *f = (r8_fmt){sizeof(kp_blk_q4_0), sizeof(kp_r8_q4_0), KP_QK, 1, 16, 0, 0}; return 1;
    case KP_DTYPE_Q4_1: *f = (r8_fmt){sizeof(kp_blk_q4_1), sizeof(kp_r8_q4_1), KP_QK, 2, 16, 0, 0}; return 1;
    case KP_DTYPE_Q8_0: *f = (r8_fmt){sizeof(kp_blk_q8_0), sizeof(kp_r8_q8_0), KP_QK, 1, 32, 0, 0}; return 1;
    case KP_DTYPE_Q4_K: *f = (r8_fmt){sizeof(kp_blk_q4_k), sizeof(kp_r8_q4_k), KP_QKK, 2, 128, 0, 0}; return 1;
    case KP_DTYPE_Q5_K: *f = (r8_fmt){sizeof(kp_blk_q5_k), sizeof(kp_r8_q5_k), KP_QKK, 2, 128, 32, 0}; return 1;
    case KP_DTYPE_Q6_K: *f = (r8_fmt){sizeof(kp_blk_q6_k), sizeof(kp_r8_q6_k), KP_QKK, 0, 128, 64, 1}; return 1;
    default: return 0;
    }
}

int kp_r8_supported(const kp_tensor *w)
{
    r8_fmt f;
    if (!w || !fmt_of(w->dtype, &f) || w->layout != KP_LAYOUT_FILE || w->ndim < 2 || w->ne[0] <= 0 ||
        w->ne[0] % f.elems)
        return 0;
    const int64_t rows = kp_tensor_nrows(w);
    return rows > 0 && rows % KP_R8 == 0 && w->nbytes == (size_t)rows * kp_dtype_row_bytes(w->dtype, w->ne[0]);
}

size_t kp_r8_packed_bytes(const kp_tensor *w)
{
    r8_fmt f;
    if (!fmt_of(w->dtype, &f))
        return 0;
    return (size_t)(kp_tensor_nrows(w) / KP_R8) * (size_t)(w->ne[0] / f.elems) * f.unit;
}

/* Q4_K/Q5_K's 12 scale bytes <-> the 8 scales and 8 mins of row r in a unit (same offsets in
 * both units). Every bit of the 12
 * bytes carries one of the 16 six-bit values, so the way back is exact. */
static void k4_scales(uint8_t *unit, int r, uint8_t *s12, int to_unit)
{
    kp_r8_q4_k *u = (kp_r8_q4_k *)(void *)unit;
    if (to_unit) {
        for (int j = 0; j < 8; j++) {
            int sc, m;
            kp_k4_scale_min(j, s12, &sc, &m);
            u->sc[j][r] = (uint8_t)sc;
            u->m[j][r] = (uint8_t)m;
        }
        return;
    }
    for (int j = 0; j < 4; j++) {
        const uint8_t sh = u->sc[j + 4][r], mh = u->m[j + 4][r];
        s12[j] = (uint8_t)((u->sc[j][r] & 63) | ((sh >> 4) << 6));
        s12[j + 4] = (uint8_t)((u->m[j][r] & 63) | ((mh >> 4) << 6));
        s12[j + 8] = (uint8_t)((sh & 0xF) | ((mh & 0xF) << 4));
    }
}

/* Moves block b of row r (file block at `blk`) into or out of its unit. */
static void move_pieces(uint8_t *uq, uint8_t *bq, int bytes, int r, int to_unit)
{
    for (int c = 0; c < bytes / 4; c++)
        to_unit ? memcpy(uq + 32 * c + 4 * r, bq + 4 * c, 4) : memcpy(bq + 4 * c, uq + 32 * c + 4 * r, 4);
}

static void move_q6_k(uint8_t *unit, int r, uint8_t *blk, int to_unit)
{
    kp_r8_q6_k *u = (kp_r8_q6_k *)(void *)unit;
    kp_blk_q6_k *b = (kp_blk_q6_k *)(void *)blk;
    for (int c = 0; c < 32; c++) { /* ql piece c: half c / 16, step piece c % 8, slot (c / 8) % 2 */
        uint8_t *up = u->q[8 * (c >> 4) + (c & 7)][(c >> 3) & 1] + 4 * r;
        to_unit ? memcpy(up, b->ql + 4 * c, 4) : memcpy(b->ql + 4 * c, up, 4);
    }
    for (int c = 0; c < 16; c++) {
        uint8_t *up = u->q[c][2] + 4 * r; /* qh piece c: half c / 8, step piece c % 8 */
        to_unit ? memcpy(up, b->qh + 4 * c, 4) : memcpy(b->qh + 4 * c, up, 4);
    }
    for (int j = 0; j < 16; j++)
        to_unit ? (void)(u->sc[j][r] = b->scales[j]) : (void)(b->scales[j] = u->sc[j][r]);
    to_unit ? (void)(u->d[r] = b->d) : (void)(b->d = u->d[r]);
}

static void move_block(const r8_fmt *f, uint8_t *unit, int r, uint8_t *blk, int to_unit)
{
    if (f->q6) {
        move_q6_k(unit, r, blk, to_unit);
        return;
    }
    for (int k = 0; k < f->hw; k++) {
        uint8_t *u = unit + (size_t)(k * KP_R8 + r) * 2;
        to_unit ? memcpy(u, blk + 2 * k, 2) : memcpy(blk + 2 * k, u, 2);
    }
    uint8_t *bq = blk + 2 * f->hw, *uq = unit + (size_t)f->hw * KP_R8 * 2;
    if (f->elems == KP_QKK) { /* Q4_K, Q5_K: scales, then the fifth bits */
        k4_scales(unit, r, bq, to_unit);
        bq += 12;
        uq = ((kp_r8_q4_k *)(void *)unit)->qs;
        move_pieces(uq, bq, f->qh, r, to_unit);
        bq += f->qh;
        uq += (size_t)f->qh * KP_R8;
    }
    move_pieces(uq, bq, f->q, r, to_unit);
}

void kp_r8_pack(const kp_tensor *w, const void *src, void *dst)
{
    r8_fmt f;
    if (!fmt_of(w->dtype, &f))
        return;
    const int64_t nb = w->ne[0] / f.elems, rows = kp_tensor_nrows(w);
    const size_t rb = (size_t)nb * f.blk;
    for (int64_t g = 0; g < rows / KP_R8; g++)
        for (int64_t b = 0; b < nb; b++) {
            uint8_t *unit = (uint8_t *)dst + (size_t)(g * nb + b) * f.unit;
            for (int r = 0; r < KP_R8; r++)
                move_block(&f, unit, r, (uint8_t *)src + (size_t)(g * KP_R8 + r) * rb + (size_t)b * f.blk, 1);
        }
}

static void unpack_block(const kp_tensor *w, const r8_fmt *f, int64_t r, int64_t b, void *blk)
{
    const int64_t nb = w->ne[0] / f->elems;
    uint8_t *unit = (uint8_t *)w->data + (size_t)((r / KP_R8) * nb + b) * f->unit;
    move_block(f, unit, (int)(r % KP_R8), blk, 0);
}

void kp_r8_unpack_row(const kp_tensor *w, int64_t r, void *dst)
{
    r8_fmt f;
    if (!fmt_of(w->dtype, &f))
        return;
    for (int64_t b = 0; b < w->ne[0] / f.elems; b++)
        unpack_block(w, &f, r, b, (uint8_t *)dst + (size_t)b * f.blk);
}

void kp_r8_dequant_row(const kp_tensor *w, int64_t row, float *dst)
{
    r8_fmt f;
    if (!fmt_of(w->dtype, &f))
        return;
    uint8_t blk[R8_MAX_BLK];
    for (int64_t b = 0; b < w->ne[0] / f.elems; b++) {
        unpack_block(w, &f, row, b, blk);
        kp_qdequant(w->dtype, blk, f.elems, dst + b * f.elems);
    }
}

/* The scalar dot of one block, through the file-layout scalar kernel on a one-block activation
 * row (0 + term is exact, so the sums below equal the whole-row kernel's). */
static void r8_rows_scalar(float *y, const kp_tensor *w, const void *work, const float *x, int n, int64_t r0,
                           int64_t r1)
{
    (void)x;
    r8_fmt f;
    if (!fmt_of(w->dtype, &f))
        return;
    const kp_qdot_fn dot = w->dtype == KP_DTYPE_Q4_0 ? kp_qdot_q4_0_scalar
                         : w->dtype == KP_DTYPE_Q4_1 ? kp_qdot_q4_1_scalar
                         : w->dtype == KP_DTYPE_Q4_K ? kp_qdot_q4_k_scalar
                         : w->dtype == KP_DTYPE_Q5_K ? kp_qdot_q5_k_scalar
                         : w->dtype == KP_DTYPE_Q6_K ? kp_qdot_q6_k_scalar : kp_qdot_q8_0_scalar;
    const kp_act_kind kind = (kp_act_kind)kp_act_kind_for(w->dtype);
    const int64_t cols = w->ne[0], rows = kp_tensor_nrows(w), e = f.elems;
    const size_t arb = kp_act_row_bytes(kind, cols);
    uint8_t blk[R8_MAX_BLK];
    _Alignas(64) uint8_t a1[KP_QKK + 64]; /* q[e] | d | s (Q8_1) or bsums[16] (Q8_K) */
    for (int64_t r = r0; r < r1; r++)
        for (int t = 0; t < n; t++) {
            const uint8_t *act = (const uint8_t *)work + (size_t)t * arb;
            float sum = 0.f;
            for (int64_t b = 0; b < cols / e; b++) {
                unpack_block(w, &f, r, b, blk);
                memcpy(a1, act + b * e, (size_t)e);
                memcpy(a1 + e, kp_act_d(act, cols) + b, 4);
                if (kind == KP_ACT_Q8_1)
                    memcpy(a1 + e + 4, kp_act_s(act, cols) + b, 4);
                if (kind == KP_ACT_Q8_K)
                    memcpy(a1 + e + 4, kp_act_bsums(act, cols) + 16 * b, 32);
                sum += dot(blk, a1, e);
            }
            y[(size_t)t * (size_t)rows + (size_t)r] = sum;
        }
}

static const kp_cpu_wtype r8_scalar_q8_0 = {kp_quant_work_size_q8_0, kp_quant_prepare_q8_0, r8_rows_scalar,
                                             kp_r8_dequant_row};
static const kp_cpu_wtype r8_scalar_q8_1 = {kp_quant_work_size_q8_1, kp_quant_prepare_q8_1, r8_rows_scalar,
                                             kp_r8_dequant_row};
static const kp_cpu_wtype r8_scalar_q8_k = {kp_quant_work_size_q8_k, kp_quant_prepare_q8_k, r8_rows_scalar,
                                             kp_r8_dequant_row};

const kp_cpu_wtype *kp_r8_wtype_get(kp_dtype t, kp_isa isa)
{
    r8_fmt f;
    if (!fmt_of(t, &f))
        return NULL;
    const kp_cpu_wtype *w = NULL;
#if defined(__x86_64__) || defined(__i386__)
    if (isa >= KP_ISA_AVX512_VNNI)
        w = kp_r8_get_avx512vnni(t);
    if (!w && isa >= KP_ISA_AVX2)
        w = kp_r8_get_avx2(t);
#else
    (void)isa;
#endif
    return w ? w : t == KP_DTYPE_Q4_1 ? &r8_scalar_q8_1
         : t == KP_DTYPE_Q4_K || t == KP_DTYPE_Q5_K || t == KP_DTYPE_Q6_K ? &r8_scalar_q8_k : &r8_scalar_q8_0;
}
