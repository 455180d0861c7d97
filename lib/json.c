/* Strict JSON reader: one iterative pass, nodes collected on a stack and copied into the arena
 * as each container closes, so children end up contiguous and no node is ever moved again. */
#include "json.h"
#include "tokenizer/unicode.h"

#include <math.h>
#include <string.h>

#define KP_JSON_MAX_DEPTH 512
/* Arena blocks start small (a request body is a few hundred bytes) and double up to 1 MiB (a
 * tokenizer.json of a real vocabulary holds tens of MiB of nodes). */
#define KP_JSON_BLOCK_MIN (4u << 10)
#define KP_JSON_BLOCK_MAX (1u << 20)
#define KP_JSON_MAX_LEN (1u << 28)

typedef struct arena_block {
    struct arena_block *next;
    size_t size, used; /* size counts the bytes after the header */
} arena_block;

struct kp_json_doc {
    const kp_allocator *a;
    arena_block *blocks;
    kp_json root;
};

static void *arena_get(kp_json_doc *d, size_t n)
{
    n = (n + 7) & ~(size_t)7;
    arena_block *b = d->blocks;
    if (!b || b->size - b->used < n) {
        size_t grow = b ? (b->size < KP_JSON_BLOCK_MAX / 2 ? 2 * b->size : KP_JSON_BLOCK_MAX) : KP_JSON_BLOCK_MIN;
        size_t sz = n > grow ? n : grow;
        size_t total;
        if (!kp_add_ok(sz, sizeof(arena_block), &total))
            return NULL;
        b = kp_alloc(d->a, total);
        if (!b)
            return NULL;
        b->size = sz;
        b->used = 0;
        b->next = d->blocks;
        d->blocks = b;
    }
    void *p = (char *)(b + 1) + b->used;
    b->used += n;
    return p;
}

void kp_json_free(kp_json_doc *d)
{
    if (!d)
        return;
    arena_block *b = d->blocks;
    while (b) {
        arena_block *n = b->next;
        kp_dealloc(d->a, b, b->size + sizeof *b);
        b = n;
    }
    kp_dealloc(d->a, d, sizeof *d);
}

const kp_json *kp_json_root(const kp_json_doc *d) { return d ? &d->root : NULL; }

typedef struct frame {
    size_t start; /* first child's index on the node stack */
    const char *key;
    uint32_t key_len;
    uint8_t type;
} frame;

typedef struct parser {
    const char *begin, *p, *end;
    const char *what;
    kp_json_doc *doc;
    kp_json *nodes;
    size_t n, cap;
    frame frames[KP_JSON_MAX_DEPTH];
    int depth;
} parser;

static kp_status perr(parser *ps, const char *at, const char *msg)
{
    size_t line = 1, col = 1;
    for (const char *q = ps->begin; q < at && q < ps->end; q++) {
        if (*q == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    if (at >= ps->end)
        return kp_fail(KP_ERR_FORMAT, "%s: JSON ends early (line %zu, column %zu): %s", ps->what, line, col,
                       msg);
    return kp_fail(KP_ERR_FORMAT, "%s: invalid JSON at line %zu, column %zu: %s", ps->what, line, col, msg);
}

static kp_status push_node(parser *ps, const kp_json *n)
{
    if (ps->n == ps->cap) {
        size_t nc = ps->cap ? ps->cap * 2 : 1024;
        kp_json *d = kp_realloc(ps->doc->a, ps->nodes, ps->cap * sizeof *d, nc * sizeof *d);
        if (!d)
            return KP_ERR_OUT_OF_MEMORY;
        ps->nodes = d;
        ps->cap = nc;
    }
    ps->nodes[ps->n++] = *n;
    return KP_OK;
}

static void skip_ws(parser *ps)
{
    const char *p = ps->p, *e = ps->end;
    while (p < e && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    ps->p = p;
}

/* Length of the valid UTF-8 sequence starting at p (lead byte >= 0x80), or 0. */
static size_t utf8_valid_len(const unsigned char *p, const unsigned char *e)
{
    unsigned c = p[0];
    size_t n;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else
        return 0;
    if ((size_t)(e - p) < n)
        return 0;
    if (p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if ((p[i] & 0xC0) != 0x80)
            return 0;
    return n;
}

static int hex4(const char *p, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return 0;
    }
    *out = v;
    return 1;
}

#define ONES 0x0101010101010101ull
#define HIGHS 0x8080808080808080ull

/* Non-zero if the 8 bytes hold a '"', a '\\' or a byte below 0x20 (the only bytes a string scan
 * has to stop at, once the whole input is known to be valid UTF-8). */
static inline uint64_t special8(uint64_t x)
{
    uint64_t q = x ^ (ONES * '"'), b = x ^ (ONES * '\\');
    return (((q - ONES) & ~q) | ((b - ONES) & ~b) | ((x - ONES * 0x20) & ~x)) & HIGHS;
}

/* ps->p is just after the opening quote. The input was validated as UTF-8 up front. */
static kp_status parse_string(parser *ps, const char **str, uint32_t *len)
{
    const char *start = ps->p, *p = start, *e = ps->end;
    for (;;) {
        while (e - p >= 8) {
            uint64_t x;
            memcpy(&x, p, 8);
            if (special8(x))
                break;
            p += 8;
        }
        if (p >= e)
            return perr(ps, p, "unterminated string");
        unsigned char c = (unsigned char)*p;
        if (c == '"') {
            if ((size_t)(p - start) >= KP_JSON_MAX_LEN)
                return perr(ps, start, "string longer than 256 MiB");
            *str = start;
            *len = (uint32_t)(p - start);
            ps->p = p + 1;
            return KP_OK;
        }
        if (c == '\\')
            break;
        if (c < 0x20)
            return perr(ps, p, "control character in string (must be escaped)");
        p++;
    }
    /* Escapes: find the end first, then decode into the arena (never longer than the source). */
    const char *q = p;
    while (q < e && *q != '"') {
        if (*q == '\\')
            q++;
        q++;
    }
    if (q >= e)
        return perr(ps, q, "unterminated string");
    size_t cap = (size_t)(q - start);
    if (cap >= KP_JSON_MAX_LEN)
        return perr(ps, start, "string longer than 256 MiB");
    char *buf = arena_get(ps->doc, cap ? cap : 1);
    if (!buf)
        return KP_ERR_OUT_OF_MEMORY;
    size_t o = (size_t)(p - start);
    memcpy(buf, start, o);
    while (p < q) {
        unsigned char c = (unsigned char)*p;
        if (c == '\\') {
            char k = p[1];
            const char *esc = p;
            p += 2;
            switch (k) {
            case '"': buf[o++] = '"'; break;
            case '\\': buf[o++] = '\\'; break;
            case '/': buf[o++] = '/'; break;
            case 'b': buf[o++] = '\b'; break;
            case 'f': buf[o++] = '\f'; break;
            case 'n': buf[o++] = '\n'; break;
            case 'r': buf[o++] = '\r'; break;
            case 't': buf[o++] = '\t'; break;
            case 'u': {
                unsigned cp;
                if (q - p < 4 || !hex4(p, &cp))
                    return perr(ps, esc, "bad \\u escape");
                p += 4;
                if (cp >= 0xDC00 && cp <= 0xDFFF)
                    return perr(ps, esc, "lone low surrogate in \\u escape");
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    unsigned lo;
                    if (q - p < 6 || p[0] != '\\' || p[1] != 'u' || !hex4(p + 2, &lo) || lo < 0xDC00 ||
                        lo > 0xDFFF)
                        return perr(ps, esc, "high surrogate not followed by a low surrogate");
                    p += 6;
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                }
                o += kp_utf8_encode(cp, buf + o);
                break;
            }
            default:
                return perr(ps, esc, "unknown escape sequence");
            }
        } else if (c < 0x20) {
            return perr(ps, p, "control character in string (must be escaped)");
        } else {
            buf[o++] = (char)c;
            p++;
        }
    }
    *str = buf;
    *len = (uint32_t)o;
    ps->p = q + 1;
    return KP_OK;
}

static const double pow10_exact[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                     1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                     1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* Grammar-checked number. Integers up to 19 digits are exact; other values are computed from
 * the first 19 significant digits, which may differ from strtod in the last bit (tokenizer
 * files only use numbers as ids, counts and flags). strtod is avoided since it follows the
 * process locale. */
static kp_status parse_number(parser *ps, double *out)
{
    const char *p = ps->p, *e = ps->end, *s = p;
    int neg = 0;
    if (p < e && *p == '-') {
        neg = 1;
        p++;
    }
    if (p >= e || *p < '0' || *p > '9')
        return perr(ps, s, "bad number");
    uint64_t m = 0;
    int nd = 0, e10 = 0;
    if (*p == '0') {
        p++;
        if (p < e && *p >= '0' && *p <= '9')
            return perr(ps, s, "number with a leading zero");
    } else {
        while (p < e && *p >= '0' && *p <= '9') {
            if (nd < 19) {
                m = m * 10 + (uint64_t)(*p - '0');
                if (m)
                    nd++;
            } else {
                e10++;
            }
            p++;
        }
    }
    if (p < e && *p == '.') {
        p++;
        if (p >= e || *p < '0' || *p > '9')
            return perr(ps, s, "bad number: no digits after the decimal point");
        while (p < e && *p >= '0' && *p <= '9') {
            if (nd < 19) {
                m = m * 10 + (uint64_t)(*p - '0');
                if (m)
                    nd++;
                e10--;
            }
            p++;
        }
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
        p++;
        int eneg = 0;
        if (p < e && (*p == '+' || *p == '-')) {
            eneg = *p == '-';
            p++;
        }
        if (p >= e || *p < '0' || *p > '9')
            return perr(ps, s, "bad number: no digits in the exponent");
        int x = 0;
        while (p < e && *p >= '0' && *p <= '9') {
            if (x < 100000)
                x = x * 10 + (*p - '0');
            p++;
        }
        e10 += eneg ? -x : x;
    }
    double v = (double)m;
    if (m == 0)
        v = 0;
    else if (e10 >= 0 && e10 <= 22)
        v *= pow10_exact[e10];
    else if (e10 < 0 && e10 >= -22)
        v /= pow10_exact[-e10];
    else
        v *= pow(10.0, e10);
    *out = neg ? -v : v;
    ps->p = p;
    return KP_OK;
}

/* JSON text is UTF-8 throughout (outside strings it is ASCII), so one pass over everything
 * replaces per-string checks. */
static kp_status validate_utf8(parser *ps)
{
    const unsigned char *p = (const unsigned char *)ps->begin, *e = (const unsigned char *)ps->end;
    while (p < e) {
        if (e - p >= 8) {
            uint64_t x;
            memcpy(&x, p, 8);
            if (!(x & HIGHS)) {
                p += 8;
                continue;
            }
        }
        if (*p < 0x80) {
            p++;
            continue;
        }
        /* two-byte sequences (most of a byte-level vocabulary) inline */
        if (p[0] >= 0xC2 && p[0] <= 0xDF && e - p >= 2 && (p[1] & 0xC0) == 0x80) {
            p += 2;
            continue;
        }
        size_t n = utf8_valid_len(p, e);
        if (!n)
            return perr(ps, (const char *)p, "invalid UTF-8");
        p += n;
    }
    return KP_OK;
}

static kp_status close_container(parser *ps)
{
    frame *f = &ps->frames[--ps->depth];
    size_t k = ps->n - f->start;
    if (k >= KP_JSON_MAX_LEN)
        return perr(ps, ps->p, "container with more than 2^28 members");
    kp_json node;
    memset(&node, 0, sizeof node);
    node.type = f->type;
    node.key = f->key;
    node.key_len = f->key_len;
    node.len = (uint32_t)k;
    if (k) {
        kp_json *kids = arena_get(ps->doc, k * sizeof *kids);
        if (!kids)
            return KP_ERR_OUT_OF_MEMORY;
        memcpy(kids, ps->nodes + f->start, k * sizeof *kids);
        node.u.kids = kids;
    }
    ps->n = f->start;
    return push_node(ps, &node);
}

/* Parses `"key" :` inside an object; leaves ps->p after the colon. */
static kp_status parse_key(parser *ps, const char **key, uint32_t *klen)
{
    skip_ws(ps);
    if (ps->p >= ps->end || *ps->p != '"')
        return perr(ps, ps->p, "expected a string key");
    ps->p++;
    kp_status st = parse_string(ps, key, klen);
    if (st)
        return st;
    skip_ws(ps);
    if (ps->p >= ps->end || *ps->p != ':')
        return perr(ps, ps->p, "expected ':' after key");
    ps->p++;
    return KP_OK;
}

static kp_status run(parser *ps)
{
    const char *key = NULL;
    uint32_t klen = 0;
    kp_status st;
    for (;;) {
        /* a value is expected */
        skip_ws(ps);
        if (ps->p >= ps->end)
            return perr(ps, ps->p, "expected a value");
        kp_json node;
        memset(&node, 0, sizeof node);
        node.key = key;
        node.key_len = klen;
        char c = *ps->p;
        if (c == '{' || c == '[') {
            if (ps->depth == KP_JSON_MAX_DEPTH)
                return perr(ps, ps->p, "nesting deeper than 512 levels");
            frame *f = &ps->frames[ps->depth++];
            f->start = ps->n;
            f->key = key;
            f->key_len = klen;
            f->type = c == '{' ? KP_JSON_OBJECT : KP_JSON_ARRAY;
            ps->p++;
            skip_ws(ps);
            if (ps->p < ps->end && *ps->p == (c == '{' ? '}' : ']')) {
                ps->p++;
                if ((st = close_container(ps)))
                    return st;
            } else if (c == '{') {
                if ((st = parse_key(ps, &key, &klen)))
                    return st;
                continue;
            } else {
                key = NULL;
                klen = 0;
                continue;
            }
        } else {
            if (c == '"') {
                ps->p++;
                node.type = KP_JSON_STRING;
                uint32_t sl;
                if ((st = parse_string(ps, &node.u.str, &sl)))
                    return st;
                node.len = sl;
            } else if (c == '-' || (c >= '0' && c <= '9')) {
                node.type = KP_JSON_NUMBER;
                if ((st = parse_number(ps, &node.u.num)))
                    return st;
            } else if (ps->end - ps->p >= 4 && memcmp(ps->p, "true", 4) == 0) {
                node.type = KP_JSON_TRUE;
                ps->p += 4;
            } else if (ps->end - ps->p >= 5 && memcmp(ps->p, "false", 5) == 0) {
                node.type = KP_JSON_FALSE;
                ps->p += 5;
            } else if (ps->end - ps->p >= 4 && memcmp(ps->p, "null", 4) == 0) {
                node.type = KP_JSON_NULL;
                ps->p += 4;
            } else {
                return perr(ps, ps->p, "unexpected character");
            }
            if ((st = push_node(ps, &node)))
                return st;
        }
        /* after a value: close containers or move to the next member */
        for (;;) {
            if (ps->depth == 0) {
                skip_ws(ps);
                if (ps->p != ps->end)
                    return perr(ps, ps->p, "trailing characters after the JSON value");
                return KP_OK;
            }
            skip_ws(ps);
            if (ps->p >= ps->end)
                return perr(ps, ps->p, "unterminated object or array");
            frame *f = &ps->frames[ps->depth - 1];
            char d = *ps->p++;
            if (d == ',') {
                if (f->type == KP_JSON_OBJECT) {
                    if ((st = parse_key(ps, &key, &klen)))
                        return st;
                } else {
                    key = NULL;
                    klen = 0;
                }
                break;
            }
            if ((d == '}' && f->type == KP_JSON_OBJECT) || (d == ']' && f->type == KP_JSON_ARRAY)) {
                if ((st = close_container(ps)))
                    return st;
                continue;
            }
            return perr(ps, ps->p - 1, f->type == KP_JSON_OBJECT ? "expected ',' or '}'" : "expected ',' or ']'");
        }
    }
}

kp_status kp_json_parse(const kp_allocator *a, const char *text, size_t len, const char *what,
                        kp_json_doc **out)
{
    *out = NULL;
    a = kp_allocator_or_default(a);
    kp_json_doc *d = kp_calloc(a, 1, sizeof *d);
    if (!d)
        return KP_ERR_OUT_OF_MEMORY;
    d->a = a;
    parser *ps = kp_calloc(a, 1, sizeof *ps);
    if (!ps) {
        kp_json_free(d);
        return KP_ERR_OUT_OF_MEMORY;
    }
    ps->begin = ps->p = text ? text : "";
    ps->end = ps->begin + (text ? len : 0);
    ps->what = what ? what : "JSON";
    ps->doc = d;
    kp_status st = validate_utf8(ps);
    if (!st)
        st = run(ps);
    if (!st)
        d->root = ps->nodes[0];
    kp_dealloc(a, ps->nodes, ps->cap * sizeof *ps->nodes);
    kp_dealloc(a, ps, sizeof *ps);
    if (st) {
        kp_json_free(d);
        return st;
    }
    *out = d;
    return KP_OK;
}

const kp_json *kp_json_get(const kp_json *obj, const char *key)
{
    if (!obj || obj->type != KP_JSON_OBJECT)
        return NULL;
    size_t kl = strlen(key);
    for (uint32_t i = 0; i < obj->len; i++) {
        const kp_json *k = &obj->u.kids[i];
        if (k->key_len == kl && memcmp(k->key, key, kl) == 0)
            return k;
    }
    return NULL;
}

const kp_json *kp_json_get_type(const kp_json *obj, const char *key, kp_json_type type)
{
    const kp_json *v = kp_json_get(obj, key);
    return v && v->type == type ? v : NULL;
}

int kp_json_str_eq(const kp_json *v, const char *s)
{
    size_t n = strlen(s);
    return v && v->type == KP_JSON_STRING && v->len == n && memcmp(v->u.str, s, n) == 0;
}

int kp_json_int(const kp_json *v, int64_t lo, int64_t hi, int64_t *out)
{
    if (!v || v->type != KP_JSON_NUMBER)
        return 0;
    double d = v->u.num;
    if (!(d >= (double)lo && d <= (double)hi) || d != floor(d))
        return 0;
    *out = (int64_t)d;
    return 1;
}

int kp_json_bool(const kp_json *v, int dflt)
{
    if (v && v->type == KP_JSON_TRUE)
        return 1;
    if (v && v->type == KP_JSON_FALSE)
        return 0;
    return dflt;
}
