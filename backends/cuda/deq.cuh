// One weight element as float, for every weight type: the block layouts are ggml's (see
// backends/cpu/quant/quant.h) and llama2.c's int8 groups. Blocks are not aligned (18, 34 ...
// bytes), so halves are read byte by byte.
#ifndef KP_CUDA_DEQ_CUH
#define KP_CUDA_DEQ_CUH

#include <cuda_fp16.h>

#include "cuda_be.cuh"

__device__ __forceinline__ float kc_h2f(const uint8_t *p)
{
    return __half2float(__ushort_as_half((unsigned short)(p[0] | (p[1] << 8))));
}

__device__ __forceinline__ void kc_k4_scale_min(int j, const uint8_t *s, int *sc, int *m)
{
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4);
        *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

// Element (r, c) of weight w, whose type is DT (a kp_dtype value).
template <int DT>
__device__ __forceinline__ float kc_deq(const kc_weight &w, int64_t r, int64_t c)
{
    const uint8_t *row = w.data + (size_t)r * w.row_bytes;
    if (DT == KP_DTYPE_F32)
        return ((const float *)row)[c];
    if (DT == KP_DTYPE_F16)
        return __half2float(((const __half *)row)[c]);
    if (DT == KP_DTYPE_BF16)
        return __uint_as_float((unsigned)((const unsigned short *)row)[c] << 16);
    if (DT == KP_DTYPE_I8G) {
        const int64_t e = r * w.cols + c; // groups run over the flattened tensor
        return (float)((const int8_t *)w.data)[e] * w.scales[e / w.group];
    }
    if (DT == KP_DTYPE_Q8_0) {
        const uint8_t *b = row + (c >> 5) * 34;
        return kc_h2f(b) * (float)(int8_t)b[2 + (c & 31)];
    }
    if (DT == KP_DTYPE_Q4_0 || DT == KP_DTYPE_Q4_1) {
        const int bs = DT == KP_DTYPE_Q4_0 ? 18 : 20, qo = DT == KP_DTYPE_Q4_0 ? 2 : 4;
        const uint8_t *b = row + (c >> 5) * bs;
        const int j = (int)(c & 31);
        const int q = j < 16 ? (b[qo + j] & 0xF) : (b[qo + j - 16] >> 4);
        if (DT == KP_DTYPE_Q4_0)
            return (float)(q - 8) * kc_h2f(b);
        return (float)q * kc_h2f(b) + kc_h2f(b + 2);
    }
    if (DT == KP_DTYPE_Q5_0 || DT == KP_DTYPE_Q5_1) {
        const int bs = DT == KP_DTYPE_Q5_0 ? 22 : 24, ho = DT == KP_DTYPE_Q5_0 ? 2 : 4;
        const uint8_t *b = row + (c >> 5) * bs;
        const int j = (int)(c & 31);
        const uint32_t qh = b[ho] | (b[ho + 1] << 8) | (b[ho + 2] << 16) | ((uint32_t)b[ho + 3] << 24);
        const int lo = j < 16 ? (b[ho + 4 + j] & 0xF) : (b[ho + 4 + j - 16] >> 4);
        const int q = lo | (int)(((qh >> j) & 1) << 4);
        if (DT == KP_DTYPE_Q5_0)
            return (float)(q - 16) * kc_h2f(b);
        return (float)q * kc_h2f(b) + kc_h2f(b + 2);
    }
    if (DT == KP_DTYPE_Q4_K || DT == KP_DTYPE_Q5_K) {
        const int bs = DT == KP_DTYPE_Q4_K ? 144 : 176;
        const uint8_t *b = row + (c >> 8) * bs;
        const int j = (int)(c & 255), quarter = j >> 6, within = j & 63, sub = 2 * quarter + (within >> 5),
                  l = within & 31;
        int sc, m;
        kc_k4_scale_min(sub, b + 4, &sc, &m);
        const uint8_t *qs = b + (DT == KP_DTYPE_Q4_K ? 16 : 48);
        const uint8_t q8 = qs[quarter * 32 + l];
        int q = within < 32 ? (q8 & 0xF) : (q8 >> 4);
        if (DT == KP_DTYPE_Q5_K)
            q += (b[16 + l] >> sub) & 1 ? 16 : 0;
        return kc_h2f(b) * (float)sc * (float)q - kc_h2f(b + 2) * (float)m;
    }
    if (DT == KP_DTYPE_Q6_K) {
        const uint8_t *b = row + (c >> 8) * 210;
        const int j = (int)(c & 255), h = j >> 7, rr = j & 127, quarter = rr >> 5, l = rr & 31;
        const uint8_t *ql = b + 64 * h, *qh = b + 128 + 32 * h;
        const int8_t *sc = (const int8_t *)(b + 192) + 8 * h;
        const int lo = quarter & 1 ? ql[l + 32] : ql[l];
        const int nib = quarter < 2 ? (lo & 0xF) : (lo >> 4);
        const int q = (nib | (((qh[l] >> (2 * quarter)) & 3) << 4)) - 32;
        return kc_h2f(b + 208) * (float)sc[(l >> 4) + 2 * quarter] * (float)q;
    }
    return 0.0f;
}

// Runs the statement (the variadic part, commas allowed) with the constant DT set to the
// weight type `dt`; runs BAD for other types.
#define KC_CASE(T, ...)           \
    case T: {                     \
        constexpr int DT = T;     \
        __VA_ARGS__;              \
    } break;
#define KC_DISPATCH(dt, BAD, ...)                                                               \
    switch (dt) {                                                                               \
        KC_CASE(KP_DTYPE_F32, __VA_ARGS__) KC_CASE(KP_DTYPE_F16, __VA_ARGS__)                   \
        KC_CASE(KP_DTYPE_BF16, __VA_ARGS__) KC_CASE(KP_DTYPE_I8G, __VA_ARGS__)                  \
        KC_CASE(KP_DTYPE_Q8_0, __VA_ARGS__) KC_CASE(KP_DTYPE_Q4_0, __VA_ARGS__)                 \
        KC_CASE(KP_DTYPE_Q4_1, __VA_ARGS__) KC_CASE(KP_DTYPE_Q5_0, __VA_ARGS__)                 \
        KC_CASE(KP_DTYPE_Q5_1, __VA_ARGS__) KC_CASE(KP_DTYPE_Q4_K, __VA_ARGS__)                 \
        KC_CASE(KP_DTYPE_Q5_K, __VA_ARGS__) KC_CASE(KP_DTYPE_Q6_K, __VA_ARGS__)                 \
    default: BAD; break;                                                                        \
    }

#endif
