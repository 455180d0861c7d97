/* Hugging Face tokenizer.json (lib/tokenizer/hf_json.c and the pipeline behind it), structure
 * aware: input = text to encode + a tokenizer.json (see kp_fuzz_split). Under libFuzzer a
 * custom mutator edits the JSON as JSON most of the time (replaces, swaps, deletes or
 * transplants values and members, from the document itself and from names the format uses),
 * so that mutants of a real file keep loading and reach the encoder with odd settings; the
 * rest of the time, and for the text, libFuzzer's own byte mutations apply. */
#include "fuzz_tok.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text;
    const uint8_t *file;
    size_t tlen, flen;
    kp_fuzz_split(data, size, &text, &tlen, &file, &flen);
    kp_tokenizer *t = NULL;
    if (kp_tokenizer_hf_json_from_memory(NULL, (const char *)file, flen, NULL, 0, "fuzz.json", &t) == KP_OK) {
        kp_fuzz_use_tokenizer(t, text, tlen);
        kp_tokenizer_free(t);
    } else {
        KP_FUZZ_CHECK(t == NULL);
    }
    return 0;
}

#ifdef KP_FUZZ_ENGINE
size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed);

enum { T_STR, T_NUM, T_LIT, T_OPEN, T_CLOSE, T_COMMA, T_COLON, T_OTHER };

typedef struct jtok {
    uint32_t b, e;
    uint8_t kind, is_key;
} jtok;

#define MAX_TOKS (1 << 17)
static jtok toks[MAX_TOKS];

static size_t lex(const uint8_t *s, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n && k < MAX_TOKS;) {
        uint8_t c = s[i];
        size_t b = i;
        uint8_t kind;
        if (c == ' ' || c == '\n' || c == '\r' || c == '\t') {
            i++;
            continue;
        } else if (c == '"') {
            for (i++; i < n && s[i] != '"'; i++)
                if (s[i] == '\\')
                    i++;
            if (i >= n)
                break;
            i++;
            kind = T_STR;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            while (i < n && (s[i] == '-' || s[i] == '+' || s[i] == '.' || s[i] == 'e' || s[i] == 'E' ||
                             (s[i] >= '0' && s[i] <= '9')))
                i++;
            kind = T_NUM;
        } else if (c >= 'a' && c <= 'z') {
            while (i < n && s[i] >= 'a' && s[i] <= 'z')
                i++;
            kind = T_LIT;
        } else {
            i++;
            kind = c == '{' || c == '[' ? T_OPEN : c == '}' || c == ']' ? T_CLOSE : c == ',' ? T_COMMA
                 : c == ':' ? T_COLON : T_OTHER;
        }
        toks[k++] = (jtok){(uint32_t)b, (uint32_t)i, kind, 0};
    }
    for (size_t i = 0; i + 1 < k; i++)
        toks[i].is_key = toks[i].kind == T_STR && toks[i + 1].kind == T_COLON;
    return k;
}

/* Index of the last token of the value starting at token i (a scalar or a whole container). */
static size_t value_end(size_t i, size_t k)
{
    if (toks[i].kind != T_OPEN)
        return i;
    int depth = 0;
    for (size_t j = i; j < k; j++) {
        depth += toks[j].kind == T_OPEN ? 1 : toks[j].kind == T_CLOSE ? -1 : 0;
        if (depth == 0)
            return j;
    }
    return k - 1;
}

static const char *const names[] = {
    "true", "false", "null", "0", "1", "-1", "2", "255", "256", "65535", "2147483647", "2147483648", "-2147483649",
    "1e308", "0.5", "\"\"", "\" \"", "\"\\u0000\"", "\"\\u2581\"", "\"\\ud83d\\ude00\"", "\"<unk>\"", "\"<s>\"",
    "\"BPE\"", "\"WordPiece\"", "\"Unigram\"", "\"WordLevel\"", "\"ByteLevel\"", "\"Metaspace\"", "\"Split\"",
    "\"Sequence\"", "\"Whitespace\"", "\"Digits\"", "\"Punctuation\"", "\"NFC\"", "\"NFD\"", "\"NFKC\"", "\"NFKD\"",
    "\"Lowercase\"", "\"Strip\"", "\"Replace\"", "\"Prepend\"", "\"Isolated\"", "\"Removed\"",
    "\"MergedWithPrevious\"", "\"MergedWithNext\"", "\"Contiguous\"", "\"first\"", "\"always\"", "\"never\"",
    "\"TemplateProcessing\"", "\"RobertaProcessing\"", "\"BertProcessing\"", "\"ByteFallback\"", "\"Fuse\"",
    "\"\\\\s+\"", "\"(?i:a|b)\"", "\"\\\\p{L}+\"", "\"[\"", "\"(\"", "\"a b\"", "[]", "{}", "[\"a\",\"b\"]",
    "{\"Regex\":\"\\\\s\"}", "{\"String\":\" \"}", "{\"type\":\"ByteLevel\"}", "[{\"type\":\"NFC\"}]",
};

/* Replaces bytes [b, e) of data with `with` (wn bytes); returns the new size or 0 if too big. */
static size_t splice(uint8_t *data, size_t size, size_t max_size, size_t b, size_t e, const uint8_t *with,
                     size_t wn)
{
    if (size - (e - b) + wn > max_size)
        return 0;
    memmove(data + b + wn, data + e, size - e);
    if (wn)
        memcpy(data + b, with, wn);
    return size - (e - b) + wn;
}

static size_t mutate_json(uint8_t *data, size_t size, size_t max_size, uint64_t *rng)
{
    static uint8_t tmp[1 << 16];
    size_t k = lex(data, size);
    if (k < 2)
        return 0;
    size_t i = kp_fuzz_next(rng) % k, j = kp_fuzz_next(rng) % k;
    while (i < k && (toks[i].kind == T_CLOSE || toks[i].kind == T_COLON || toks[i].kind == T_COMMA))
        i++;
    if (i >= k)
        return 0;
    size_t ie = value_end(i, k);
    switch (kp_fuzz_next(rng) % 5) {
    case 0: { /* a value or key becomes a name from the format */
        const char *w = names[kp_fuzz_next(rng) % (sizeof names / sizeof *names)];
        if (toks[i].is_key && w[0] != '"')
            return 0;
        return splice(data, size, max_size, toks[i].b, toks[ie].e, (const uint8_t *)w, strlen(w));
    }
    case 1: { /* a value becomes a copy of another value of the document */
        while (j < k && (toks[j].kind == T_CLOSE || toks[j].kind == T_COLON || toks[j].kind == T_COMMA || toks[j].is_key))
            j++;
        if (j >= k || toks[i].is_key)
            return 0;
        size_t je = value_end(j, k), wn = toks[je].e - toks[j].b;
        if (wn > sizeof tmp)
            return 0;
        memcpy(tmp, data + toks[j].b, wn);
        return splice(data, size, max_size, toks[i].b, toks[ie].e, tmp, wn);
    }
    case 2: { /* delete a member or element: from a comma through the value after it */
        while (i < k && toks[i].kind != T_COMMA)
            i++;
        if (i + 1 >= k)
            return 0;
        size_t v = toks[i + 1].is_key && i + 3 < k ? i + 3 : i + 1;
        return splice(data, size, max_size, toks[i].b, toks[value_end(v, k)].e, NULL, 0);
    }
    case 3: { /* duplicate a member or element after itself */
        while (i < k && toks[i].kind != T_COMMA)
            i++;
        if (i + 1 >= k)
            return 0;
        size_t v = toks[i + 1].is_key && i + 3 < k ? i + 3 : i + 1;
        size_t b = toks[i].b, e = toks[value_end(v, k)].e;
        if (e - b > sizeof tmp)
            return 0;
        memcpy(tmp, data + b, e - b);
        return splice(data, size, max_size, e, e, tmp, e - b);
    }
    default: { /* a string gets a byte-level mutation inside its quotes */
        if (toks[i].kind != T_STR || toks[i].e - toks[i].b < 2)
            return 0;
        size_t b = toks[i].b + 1, e = toks[i].e - 1, n = e - b;
        if (n + 8 > sizeof tmp || size + 8 > max_size)
            return 0;
        memcpy(tmp, data + b, n);
        size_t m = LLVMFuzzerMutate(tmp, n, n + 8);
        return splice(data, size, max_size, b, e, tmp, m);
    }
    }
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
    uint64_t rng = seed;
    uint32_t what = kp_fuzz_next(&rng) % 8;
    if (size >= 2 && what < 6) {
        const char *text;
        const uint8_t *file;
        size_t tlen, flen;
        kp_fuzz_split(data, size, &text, &tlen, &file, &flen);
        size_t off = (size_t)(file - data);
        if (what < 4) { /* the JSON */
            size_t r = mutate_json(data + off, flen, max_size - off, &rng);
            if (r)
                return off + r;
        } else if (tlen + 16 <= (size_t)1 << 15 && size + 16 <= max_size) { /* the text */
            uint8_t *t = (uint8_t *)data + 2;
            memmove(t + tlen + 16, t + tlen, flen);
            size_t m = LLVMFuzzerMutate(t, tlen, tlen + 16);
            memmove(t + m, t + tlen + 16, flen);
            data[0] = (uint8_t)m;
            data[1] = (uint8_t)(m >> 8);
            return 2 + m + flen;
        }
    }
    return LLVMFuzzerMutate(data, size, max_size);
}
#endif
