/* Chat rendering (kp_chat_format_template) of random conversations with the repository's
 * templates, the family names, and random template text. Input: byte 0 picks the template
 * (the last choice takes the template text from the input's first NUL-separated field), byte 1
 * sets add_assistant, then NUL-separated messages whose first byte picks the role. */
#include <kuiper/kuiper.h>

#include "fuzz_util.h"

static const char *const template_files[] = {"chatml.jinja", "llama2-chat.jinja", "llama3.1-instruct-core.jinja",
                                             "qwen2.5.jinja", "smollm2.jinja"};
static const char *const families[] = {"llama3", "chatml", "llama2", "", "llama4"};
#define N_FILES (sizeof template_files / sizeof *template_files)
#define N_FAMILIES (sizeof families / sizeof *families)
static char *templates[N_FILES];
static const char *const roles[] = {"system", "user", "assistant", "tool", "", "User"};
#define N_ROLES (sizeof roles / sizeof *roles)

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    for (size_t i = 0; i < N_FILES; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/chat/templates/%s", KP_FUZZ_TESTS_DIR, template_files[i]);
        if (!(templates[i] = kp_test_slurp(path, NULL)))
            fprintf(stderr, "fuzz_chat: cannot read %s\n", path);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2 || size > 1 << 16)
        return 0;
    char *s = malloc(size + 1); /* NUL-terminated fields */
    memcpy(s, data + 2, size - 2);
    s[size - 2] = 0;
    size_t end = size - 2, pos = 0;
    const char *tmpl;
    size_t pick = data[0] % (N_FILES + N_FAMILIES + 1);
    if (pick < N_FILES) {
        tmpl = templates[pick];
    } else if (pick < N_FILES + N_FAMILIES) {
        tmpl = families[pick - N_FILES];
    } else {
        tmpl = s;
        pos = strlen(s) + 1;
    }
    kp_chat_msg msgs[64];
    size_t n = 0;
    while (pos < end && n < 64) {
        const char *f = s + pos;
        size_t l = strlen(f);
        msgs[n].role = roles[(unsigned char)f[0] % N_ROLES];
        msgs[n].content = l ? f + 1 : f;
        n++;
        pos += l + 1;
    }
    if (tmpl) {
        size_t need = 0, len = 0;
        kp_status st = kp_chat_format_template(tmpl, msgs, n, data[1] & 1, NULL, 0, &need);
        if (st == KP_OK || st == KP_ERR_BUFFER_TOO_SMALL) {
            char *buf = malloc(need + 1);
            KP_FUZZ_CHECK(kp_chat_format_template(tmpl, msgs, n, data[1] & 1, buf, need + 1, &len) == KP_OK);
            KP_FUZZ_CHECK(len == need && buf[len] == 0);
            /* exactly the length fits (no NUL then); a byte less is refused with the size */
            size_t again = 0;
            KP_FUZZ_CHECK(kp_chat_format_template(tmpl, msgs, n, data[1] & 1, buf, need, &again) == KP_OK &&
                          again == need);
            if (need)
                KP_FUZZ_CHECK(kp_chat_format_template(tmpl, msgs, n, data[1] & 1, buf, need - 1, &again) ==
                                  KP_ERR_BUFFER_TOO_SMALL && again == need);
            free(buf);
        }
    }
    free(s);
    return 0;
}
