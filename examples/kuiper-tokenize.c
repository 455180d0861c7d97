/* kuiper-tokenize: encode JSON lines with any tokenizer libkuiper loads.
 *
 *   kuiper-tokenize -m FILE [--add-special] [--no-parse-special] [--n-vocab N] < in.jsonl > out.jsonl
 *
 * FILE is a tokenizer.json, a SentencePiece .model, a llama2.c tokenizer.bin (needs --n-vocab)
 * or a GGUF. Each input line is an object with "id" (echoed exactly as written, string or
 * number) and "text"; each output line is {"id":...,"ids":[...]}, in input order. Uses only the
 * public API. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kuiper/kuiper.h>

#include "common/minijson.h"

static void usage(void)
{
    fprintf(stderr, "usage: kuiper-tokenize -m FILE [--add-special] [--no-parse-special] [--n-vocab N]"
                    " < cases.jsonl\n");
}

/* Finds "id" (raw span) and "text" (unescaped into text_buf) in one line. Keys match by their
 * raw bytes; the reader is lenient because case files come from many writers. */
static int parse_line(const char *line, size_t n, const char **id, size_t *id_len, char *text_buf, long *text_len)
{
    mj_cursor c = {line, line + n, 1};
    *id = NULL;
    *text_len = -1;
    mj_ws(&c);
    if (!mj_lit(&c, "{"))
        return 0;
    mj_ws(&c);
    if (mj_lit(&c, "}"))
        return 0;
    for (;;) {
        mj_ws(&c);
        int key = mj_lit(&c, "\"id\"") ? 'i' : mj_lit(&c, "\"text\"") ? 't' : mj_string(&c, NULL) >= 0 ? 0 : -1;
        if (key < 0)
            return 0;
        mj_ws(&c);
        if (!mj_lit(&c, ":"))
            return 0;
        mj_ws(&c);
        if (key == 'i') {
            const char *vs = c.p;
            if (!mj_skip_value(&c, 0))
                return 0;
            *id = vs;
            *id_len = (size_t)(c.p - vs);
        } else if (key == 't') {
            if ((*text_len = mj_string(&c, text_buf)) < 0)
                return 0;
        } else if (!mj_skip_value(&c, 0)) {
            return 0;
        }
        mj_ws(&c);
        if (mj_lit(&c, ","))
            continue;
        if (mj_lit(&c, "}"))
            break;
        return 0;
    }
    return *id != NULL && *text_len >= 0;
}

int main(int argc, char **argv)
{
    const char *model = NULL;
    uint32_t flags = KP_TOKENIZE_PARSE_SPECIAL;
    int32_t n_vocab = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-m") && i + 1 < argc)
            model = argv[++i];
        else if (!strcmp(argv[i], "--add-special"))
            flags |= KP_TOKENIZE_ADD_SPECIAL;
        else if (!strcmp(argv[i], "--no-parse-special"))
            flags &= ~KP_TOKENIZE_PARSE_SPECIAL;
        else if (!strcmp(argv[i], "--n-vocab") && i + 1 < argc)
            n_vocab = (int32_t)atoi(argv[++i]);
        else {
            usage();
            return 2;
        }
    }
    if (!model) {
        usage();
        return 2;
    }
    kp_tokenizer_params tp;
    kp_tokenizer_params_init(&tp);
    tp.n_vocab = n_vocab;
    kp_tokenizer *tok = NULL;
    kp_status st = kp_tokenizer_load(model, &tp, &tok);
    if (st) {
        fprintf(stderr, "kuiper-tokenize: %s\n", kp_last_error());
        return 1;
    }
    size_t cap_line = 0, cap_ids = 1024;
    char *line = NULL, *text = NULL;
    int32_t *ids = malloc(cap_ids * sizeof *ids);
    int rc = 0;
    ssize_t got;
    while (ids && (got = getline(&line, &cap_line, stdin)) >= 0) {
        size_t n = (size_t)got;
        while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            n--;
        if (!n)
            continue;
        char *nt = realloc(text, n + 1);
        if (!nt) {
            rc = 1;
            break;
        }
        text = nt;
        const char *id = NULL;
        size_t id_len = 0;
        long text_len = 0;
        if (!parse_line(line, n, &id, &id_len, text, &text_len)) {
            fprintf(stderr, "kuiper-tokenize: cannot read line: %.*s\n", (int)(n > 80 ? 80 : n), line);
            rc = 1;
            continue;
        }
        size_t n_ids = 0;
        st = kp_tokenize(tok, text, (size_t)text_len, flags, ids, cap_ids, &n_ids);
        if (st == KP_ERR_BUFFER_TOO_SMALL) {
            int32_t *bigger = realloc(ids, n_ids * sizeof *ids);
            if (!bigger) {
                rc = 1;
                break;
            }
            ids = bigger;
            cap_ids = n_ids;
            st = kp_tokenize(tok, text, (size_t)text_len, flags, ids, cap_ids, &n_ids);
        }
        printf("{\"id\":%.*s,", (int)id_len, id);
        if (st) {
            printf("\"error\":");
            mj_put_string(stdout, kp_last_error());
            printf("}\n");
            rc = 1;
            continue;
        }
        printf("\"ids\":[");
        for (size_t i = 0; i < n_ids; i++)
            printf(i ? ",%d" : "%d", ids[i]);
        printf("]}\n");
    }
    free(line);
    free(text);
    free(ids);
    kp_tokenizer_free(tok);
    return rc;
}
