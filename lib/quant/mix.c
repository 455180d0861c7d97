/* Tensor type policy (see mix.h). */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../tensor.h"
#include "mix.h"

static const kp_quant_mix mixes[] = {
    {"F32", KP_DTYPE_F32, 0, 0},     {"F16", KP_DTYPE_F16, 0, 1},     {"BF16", KP_DTYPE_BF16, 0, 32},
    {"Q8_0", KP_DTYPE_Q8_0, 0, 7},   {"Q4_0", KP_DTYPE_Q4_0, 0, 2},   {"Q4_1", KP_DTYPE_Q4_1, 0, 3},
    {"Q5_0", KP_DTYPE_Q5_0, 0, 8},   {"Q5_1", KP_DTYPE_Q5_1, 0, 9},
    /* plain K types: llama.cpp has no ftype of its own for them; label them as the nearest */
    {"Q4_K", KP_DTYPE_Q4_K, 0, 14},  {"Q5_K", KP_DTYPE_Q5_K, 0, 16},  {"Q6_K", KP_DTYPE_Q6_K, 0, 18},
    {"Q4_K_M", KP_DTYPE_Q4_K, 1, 15}, {"Q5_K_M", KP_DTYPE_Q5_K, 1, 17},
    {"COPY", KP_DTYPE_COUNT, 0, 0},
};

uint32_t kp_quant_file_type_of(kp_dtype t)
{
    for (size_t i = 0; i < sizeof mixes / sizeof mixes[0]; i++)
        if (mixes[i].base == t && !mixes[i].more_bits)
            return mixes[i].file_type;
    return 0;
}

const kp_quant_mix *kp_quant_mix_find(const char *name)
{
    if (!name)
        return NULL;
    for (size_t i = 0; i < sizeof mixes / sizeof mixes[0]; i++)
        if (strcasecmp(name, mixes[i].name) == 0)
            return &mixes[i];
    return NULL;
}

const char *kp_quant_mix_names(void)
{
    return "F32 F16 BF16 Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q4_K Q5_K Q6_K Q4_K_M Q5_K_M COPY";
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* llama.cpp's choice of layers that get more bits in _M mixes. */
static int use_more_bits(int i, int n)
{
    return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

static int layer_of(const char *name)
{
    if (strncmp(name, "blk.", 4) != 0)
        return -1;
    char *end;
    long v = strtol(name + 4, &end, 10);
    return (end != name + 4 && *end == '.' && v >= 0 && v < 1 << 20) ? (int)v : -1;
}

static int is_k(kp_dtype t) { return t == KP_DTYPE_Q4_K || t == KP_DTYPE_Q5_K || t == KP_DTYPE_Q6_K; }

kp_dtype kp_quant_mix_pick(const kp_quant_mix *mx, const kp_quant_tensor_info *ti)
{
    int dims = 0; /* dimensions above 1, as ggml counts them */
    for (int i = 0; i < ti->ndim; i++)
        if (ti->ne[i] > 1)
            dims = i + 1;
    if (!ends_with(ti->name, "weight") || dims < 2 || strcmp(ti->name, "rope_freqs.weight") == 0)
        return KP_DTYPE_F32;
    kp_dtype t = mx->base;
    if (t == KP_DTYPE_COUNT) {
        switch (ti->src_type) {
        case KP_DTYPE_F32: case KP_DTYPE_F16: case KP_DTYPE_BF16: case KP_DTYPE_Q8_0: case KP_DTYPE_Q4_0:
        case KP_DTYPE_Q4_1: case KP_DTYPE_Q5_0: case KP_DTYPE_Q5_1: case KP_DTYPE_Q4_K: case KP_DTYPE_Q5_K:
        case KP_DTYPE_Q6_K: return ti->src_type;
        default: return KP_DTYPE_F32;
        }
    }
    if (kp_dtype_block_elems(t) == 1) /* F32 / F16 / BF16: no per-tensor rules */
        return t;
    const int64_t cols = ti->ne[0];
    const int is_out = strcmp(ti->name, "output.weight") == 0 ||
                       (!ti->has_output && strcmp(ti->name, "token_embd.weight") == 0);
    if (is_out) {
        if (cols % 256)
            t = KP_DTYPE_Q8_0;
        else if (t != KP_DTYPE_Q8_0)
            t = KP_DTYPE_Q6_K;
    } else if (mx->more_bits && (strstr(ti->name, "attn_v.weight") || strstr(ti->name, "ffn_down"))) {
        const int il = layer_of(ti->name);
        if (il >= 0 && use_more_bits(il, ti->n_layer))
            t = KP_DTYPE_Q6_K;
    }
    if (is_k(t) && cols % 256)
        t = t == KP_DTYPE_Q4_K ? KP_DTYPE_Q5_0 : t == KP_DTYPE_Q5_K ? KP_DTYPE_Q5_1 : KP_DTYPE_Q8_0;
    if (cols % kp_dtype_block_elems(t))
        t = KP_DTYPE_F16;
    return t;
}
