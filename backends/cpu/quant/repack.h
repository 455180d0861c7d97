/* KP_LAYOUT_R8: how the CPU backend rearranges Q4_0, Q4_1, Q8_0 and K-quant matrices at load, so that
 * a prompt batch is a register-blocked GEMM instead of one dot product per row and token.
 *
 * Rows are taken 8 at a time (a matrix qualifies when its row count is a multiple of 8). For
 * each group of 8 rows and each 32-element block, the 8 rows' blocks become one unit:
 *     F16 d[8] | (Q4_1) F16 m[8] | qs: piece c (bytes 4c..4c+3) of row r at 32c + 4r
 * so one 32-byte load holds the same 4 bytes of all 8 rows, a row per 32-bit lane. One
 * activation piece broadcast against it is one vpdpbusd for 8 rows, the 8 sums land in the
 * lanes of 8 consecutive outputs (no horizontal sums), and the weights stream sequentially.
 * A unit holds exactly the bytes of the 8 file blocks, so the copy is the file's size, and the
 * mapped file pages are released after packing (one copy in memory). */
#ifndef KP_QUANT_REPACK_H
#define KP_QUANT_REPACK_H

#include "quant.h"

#define KP_R8 8

typedef struct { uint16_t d[KP_R8]; uint8_t qs[KP_R8 * 16]; } kp_r8_q4_0;
typedef struct { uint16_t d[KP_R8], m[KP_R8]; uint8_t qs[KP_R8 * 16]; } kp_r8_q4_1;
typedef struct { uint16_t d[KP_R8]; int8_t qs[KP_R8 * 32]; } kp_r8_q8_0;
/* Q4_K, per 256-element super-block: F16 d[8], dmin[8] | the 6-bit scales and mins as bytes,
 * [sub-block][row] | qs pieces as above (piece p of row r at 32p + 4r). The kernel multiplies by
 * 8 rows' scales at once instead of unpacking 12-byte fields row by row; the unit is 1184 bytes
 * for the file's 1152 (the tensor's nbytes stays the file's; see kp_r8_packed_bytes). */
typedef struct { uint16_t d[KP_R8], dmin[KP_R8]; uint8_t sc[8][KP_R8], m[8][KP_R8]; uint8_t qs[KP_R8 * 128]; } kp_r8_q4_k;
/* Q5_K: as Q4_K, with the fifth bits (qh) interleaved in pieces like qs before qs. */
typedef struct {
    uint16_t d[KP_R8], dmin[KP_R8];
    uint8_t sc[8][KP_R8], m[8][KP_R8];
    uint8_t qh[KP_R8 * 32], qs[KP_R8 * 128];
} kp_r8_q5_k;

/* Q6_K: F16 d[8] | the 16 int8 scales, [sub-block][row] | the value bytes in the order the
 * kernel reads them, so the unit is one forward stream: 16 steps of 96 bytes, step 8h + p (half
 * h, p < 8) = ql piece 16h + p, ql piece 16h + 8 + p, qh piece 8h + p, each 8 rows' pieces as
 * above. (Three separate forward streams ran at half the bandwidth in decode.) Same size as the
 * 8 blocks. */
typedef struct { uint16_t d[KP_R8]; int8_t sc[16][KP_R8]; uint8_t q[16][3][32]; } kp_r8_q6_k;

_Static_assert(sizeof(kp_r8_q4_0) == 8 * sizeof(kp_blk_q4_0), "r8 q4_0 unit");
_Static_assert(sizeof(kp_r8_q4_1) == 8 * sizeof(kp_blk_q4_1), "r8 q4_1 unit");
_Static_assert(sizeof(kp_r8_q8_0) == 8 * sizeof(kp_blk_q8_0), "r8 q8_0 unit");
_Static_assert(sizeof(kp_r8_q4_k) == 1184, "r8 q4_K unit");
_Static_assert(sizeof(kp_r8_q5_k) == 1440, "r8 q5_K unit");
_Static_assert(sizeof(kp_r8_q6_k) == 8 * sizeof(kp_blk_q6_k), "r8 q6_K unit");

/* Whether `w` (file layout, host memory) can be packed: Q4_0, Q4_1, Q8_0, Q4_K, Q5_K or Q6_K, a whole
 * number of blocks per row and of 8-row groups. */
int kp_r8_supported(const kp_tensor *w);
/* Bytes of the packed copy of `w`. */
size_t kp_r8_packed_bytes(const kp_tensor *w);
/* Packs the file-layout data of `w` into dst (w->nbytes bytes). */
void kp_r8_pack(const kp_tensor *w, const void *src, void *dst);
/* Row `r` of a packed tensor back as file blocks (kp_dtype_row_bytes bytes at dst). */
void kp_r8_unpack_row(const kp_tensor *w, int64_t r, void *dst);
/* Row `row` of a packed tensor as floats, equal to the file layout's dequantization. */
void kp_r8_dequant_row(const kp_tensor *w, int64_t row, float *dst);

/* Matmul traits for a packed tensor of dtype t at level isa (the best level at or below it). */
const kp_cpu_wtype *kp_r8_wtype_get(kp_dtype t, kp_isa isa);
#if defined(__x86_64__) || defined(__i386__)
const kp_cpu_wtype *kp_r8_get_avx2(kp_dtype t);
const kp_cpu_wtype *kp_r8_get_avx512vnni(kp_dtype t);
#endif

#endif
