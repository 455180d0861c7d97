/* Session state files (kp_session_load) for the stories260K model. Input byte 0 holds flags:
 * bit 0 rewrites the 64-byte header to fit this model (magic, version, fingerprint, sizes, KV
 * type, a position count that matches the file's length, logits present when bit 3 is set),
 * bit 1 loads into an f16 session instead of f32, bit 2 recomputes the trailing checksum, so
 * that mutations reach the checks behind each of those. The rest is the file. A state that
 * loads must give a session that evaluates. */
#include <kuiper/kuiper.h>

#include "fuzz_util.h"

static kp_model *model;
static kp_session *sess[2];
static uint8_t header[2][64]; /* of an empty saved state: f32, f16 */

static uint64_t fnv1a64(uint64_t h, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char mp[1024], tp[1024];
    snprintf(mp, sizeof mp, "%s/models/stories260K/stories260K.bin", kp_test_data_dir());
    snprintf(tp, sizeof tp, "%s/models/stories260K/tok512.bin", kp_test_data_dir());
    kp_model_params p;
    kp_model_params_init(&p);
    p.n_threads = 1;
    p.tokenizer_path = tp;
    if (kp_model_load(mp, &p, &model) != KP_OK) {
        fprintf(stderr, "fuzz_session_state: cannot load %s (%s); the target does nothing\n", mp, kp_last_error());
        return 0;
    }
    for (int k = 0; k < 2; k++) {
        kp_session_params sp;
        kp_session_params_init(&sp);
        sp.n_ctx = 16;
        sp.kv_type = k ? KP_KV_F16 : KP_KV_F32;
        char path[] = "/tmp/kp_fuzz_state_XXXXXX";
        int fd = mkstemp(path);
        if (fd < 0 || kp_session_new(model, &sp, &sess[k]) != KP_OK || kp_session_save(sess[k], path) != KP_OK ||
            pread(fd, header[k], 64, 0) != 64)
            abort();
        close(fd);
        unlink(path);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!model || size < 1)
        return 0;
    uint8_t flags = data[0];
    int k = (flags >> 1) & 1;
    kp_session *s = sess[k];
    size_t n = size - 1;
    uint8_t *f = malloc(n + 64 + 8);
    memcpy(f, data + 1, n);
    if ((flags & 1) && n >= 72) {
        int32_t L = (int32_t)kp_model_info_get(model, KP_INFO_N_LAYER), V = (int32_t)kp_model_info_get(model, KP_INFO_N_VOCAB);
        int32_t kv_dim = (int32_t)(kp_model_info_get(model, KP_INFO_N_EMBD) / kp_model_info_get(model, KP_INFO_N_HEAD) *
                                   kp_model_info_get(model, KP_INFO_N_HEAD_KV));
        int32_t has_logits = (flags >> 3) & 1;
        size_t per_pos = 4 + 2 * (size_t)L * (size_t)kv_dim * (k ? 2 : 4), fixed = 64 + 8 + (has_logits ? (size_t)V * 4 : 0);
        if (n < fixed)
            has_logits = 0, fixed = 72;
        int32_t n_past = (int32_t)((n - fixed) / per_pos);
        if (n_past > 16)
            n_past = 16;
        n = fixed + (size_t)n_past * per_pos;
        memcpy(f, header[k], 40);
        memcpy(f + 32, &n_past, 4);
        memcpy(f + 36, &has_logits, 4);
        for (int32_t i = 0; i < n_past; i++) { /* token ids in range, as saved ones are */
            int32_t id;
            memcpy(&id, f + 64 + 4 * i, 4);
            id = (int32_t)((uint32_t)id % (uint32_t)V);
            memcpy(f + 64 + 4 * i, &id, 4);
        }
    }
    if ((flags & 4) && n >= 8) {
        uint64_t sum = fnv1a64(0xcbf29ce484222325ull, f, n - 8);
        memcpy(f + n - 8, &sum, 8);
    }
    const char *path = kp_fuzz_path_for(f, n);
    int32_t before = kp_session_n_past(s);
    kp_status st = path ? kp_session_load(s, path) : KP_ERR_IO;
    if (st == KP_OK) {
        int32_t np = kp_session_n_past(s);
        KP_FUZZ_CHECK(np >= 0 && np <= kp_session_n_ctx(s));
        if (np < kp_session_n_ctx(s)) {
            int32_t id = 1;
            KP_FUZZ_CHECK(kp_session_eval(s, &id, 1, KP_EVAL_LOGITS_LAST) == KP_OK);
        }
        KP_FUZZ_CHECK(kp_session_truncate(s, 0) == KP_OK);
    } else {
        KP_FUZZ_CHECK(kp_session_n_past(s) == before);
    }
    free(f);
    return 0;
}
