/* Added / special tokens matched as literal text in the input before anything else runs. */
#ifndef KP_TOK_ADDED_H
#define KP_TOK_ADDED_H

#include "regex.h"

typedef struct kp_added_tok {
    char *text;
    uint32_t len;
    int32_t id;
    uint8_t special;     /* matched only with KP_TOKENIZE_PARSE_SPECIAL */
    uint8_t lstrip, rstrip, single_word;
} kp_added_tok;

typedef enum kp_added_mode {
    /* Hugging Face: leftmost match, longest at that position (Aho-Corasick LeftmostLongest);
     * a special token skipped for lack of PARSE_SPECIAL still hides what overlaps it. */
    KP_ADDED_LEFTMOST_LONGEST = 0,
    /* llama.cpp: tokens by decreasing length, each splitting every remaining stretch of text. */
    KP_ADDED_LONGEST_FIRST = 1
} kp_added_mode;

typedef struct kp_added_set {
    const kp_allocator *a;
    kp_added_tok *tok;
    int32_t n, cap;
    kp_added_mode mode;
    /* byte trie over the texts: node 0 is the root */
    struct kp_trie_node *node;
    int32_t n_node, node_cap;
    uint8_t first[256]; /* bytes that start some token */
} kp_added_set;

void kp_added_init(kp_added_set *s, const kp_allocator *a, kp_added_mode mode);
/* Copies `text`. Empty texts are ignored. */
kp_status kp_added_add(kp_added_set *s, const char *text, size_t len, int32_t id, int special, int lstrip,
                       int rstrip, int single_word);
/* Builds the lookup structures once every token is added. */
kp_status kp_added_finish(kp_added_set *s);
void kp_added_free(kp_added_set *s);

/* One stretch of the input: an added token (id >= 0) or plain text (id = -1). */
typedef struct kp_added_seg {
    size_t start, end;
    int32_t id;
} kp_added_seg;

typedef struct kp_seg_vec {
    kp_added_seg *data;
    size_t len, cap;
    const kp_allocator *alloc;
} kp_seg_vec;

void kp_seg_vec_free(kp_seg_vec *v);

/* Index (into set->tok) of the longest token that starts at s[i], and its end; -1 if none. */
int32_t kp_added_longest_at(const kp_added_set *set, const unsigned char *s, size_t n, size_t i, size_t *end);

/* Splits s[0..n) into plain stretches and added tokens (appended to `out`, in order, covering
 * the whole input; plain stretches may be empty only when the input is). */
kp_status kp_added_split(const kp_added_set *set, const char *s, size_t n, int parse_special, kp_seg_vec *out);

#endif
