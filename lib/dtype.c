/* Element types: names and block geometry (GGUF block layouts for the quantized ones). */
#include <string.h>

#include "internal.h"
#include "tensor.h"

static const struct {
    const char *name;
    int64_t block_elems;
    size_t block_bytes;
} dtypes[KP_DTYPE_COUNT] = {
    [KP_DTYPE_F32] = {"f32", 1, 4},
    [KP_DTYPE_F16] = {"f16", 1, 2},
    [KP_DTYPE_BF16] = {"bf16", 1, 2},
    [KP_DTYPE_Q8_0] = {"q8_0", 32, 34},
    [KP_DTYPE_Q4_0] = {"q4_0", 32, 18},
    [KP_DTYPE_Q4_1] = {"q4_1", 32, 20},
    [KP_DTYPE_Q5_0] = {"q5_0", 32, 22},
    [KP_DTYPE_Q5_1] = {"q5_1", 32, 24},
    [KP_DTYPE_Q4_K] = {"q4_k", 256, 144},
    [KP_DTYPE_Q5_K] = {"q5_k", 256, 176},
    [KP_DTYPE_Q6_K] = {"q6_k", 256, 210},
    [KP_DTYPE_Q8_K] = {"q8_k", 256, 292},
    [KP_DTYPE_I8G] = {"i8g", 1, 1},
    [KP_DTYPE_I32] = {"i32", 1, 4},
};

const char *kp_dtype_name(kp_dtype t)
{
    return ((unsigned)t < KP_DTYPE_COUNT) ? dtypes[t].name : "invalid";
}

int64_t kp_dtype_block_elems(kp_dtype t)
{
    return ((unsigned)t < KP_DTYPE_COUNT) ? dtypes[t].block_elems : 0;
}

size_t kp_dtype_block_bytes(kp_dtype t)
{
    return ((unsigned)t < KP_DTYPE_COUNT) ? dtypes[t].block_bytes : 0;
}

size_t kp_dtype_row_bytes(kp_dtype t, int64_t n)
{
    int64_t be = kp_dtype_block_elems(t);
    if (be <= 0 || n < 0 || n % be)
        return 0;
    return (size_t)(n / be) * kp_dtype_block_bytes(t);
}

/* Half precision: exact conversions written out so results do not depend on F16C. */
float kp_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t man = h & 0x3ff;
    uint32_t bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: normalise */
            int e = -1;
            do {
                e++;
                man <<= 1;
            } while (!(man & 0x400));
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ff) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t kp_f32_to_f16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000;
    uint32_t absx = x & 0x7fffffff;
    if (absx >= 0x7f800000u) /* inf or nan */
        return (uint16_t)(sign | 0x7c00 | (absx > 0x7f800000u ? 0x200 : 0));
    if (absx >= 0x477ff000u) /* rounds to >= 65520: overflow to inf */
        return (uint16_t)(sign | 0x7c00);
    if (absx < 0x38800000u) { /* below the smallest normal half: subnormal or zero */
        if (absx < 0x33000000u)
            return (uint16_t)sign;
        uint32_t e = absx >> 23;
        uint32_t m = (absx & 0x7fffff) | 0x800000;
        uint32_t shift = 126 - e; /* 14 + (113 - e) */
        uint32_t r = m >> shift;
        uint32_t rem = m & ((1u << shift) - 1);
        uint32_t half = 1u << (shift - 1);
        if (rem > half || (rem == half && (r & 1)))
            r++;
        return (uint16_t)(sign | r);
    }
    uint32_t r = absx - 0x38000000u; /* rebias exponent 127 -> 15 */
    uint32_t rem = r & 0x1fff;
    r >>= 13;
    if (rem > 0x1000 || (rem == 0x1000 && (r & 1)))
        r++;
    return (uint16_t)(sign | r);
}

float kp_bf16_to_f32(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}
