/*
 * libkuiper: LLM inference for Llama-family models, with a stable C ABI.
 *
 * Conventions that hold for every function below unless its comment says otherwise:
 * - Every fallible call returns a kp_status. On failure the calling thread's kp_last_error()
 *   holds a one-line message naming the file, tensor, offset or token at fault, and every
 *   `*out` pointer is left NULL; nothing is leaked.
 * - `kp_x_new`/`kp_x_load` return an object the caller owns and releases with `kp_x_free`;
 *   `kp_x_free(NULL)` is a no-op. Functions with `_borrow` return pointers owned by the
 *   argument; their lifetime is stated with each one.
 * - Output buffers are caller-owned (buf, cap, *len). A too-small buffer returns
 *   KP_ERR_BUFFER_TOO_SMALL with *len set to the size needed.
 * - Params structs start with their own size (`struct_size`) so fields can be appended
 *   without breaking the ABI: always fill them with the matching `_init` function first.
 * - Thread safety: a kp_model and a kp_tokenizer are immutable after loading and may be used
 *   from any number of threads at once, and so may the sessions made from one model, each by
 *   its own thread (a CPU model's compute threads then serve one call at a time). A kp_session
 *   or kp_sampler must be used by one thread at a time (kp_session_cancel is the exception).
 * - The library never prints: messages go to the log callback given in the params, if any.
 */
#ifndef KUIPER_KUIPER_H
#define KUIPER_KUIPER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32) && defined(KP_BUILDING_LIBRARY)
#define KP_API __declspec(dllexport)
#elif defined(__GNUC__) && defined(KP_BUILDING_LIBRARY)
#define KP_API __attribute__((visibility("default")))
#else
#define KP_API
#endif

/* ---------------------------------------------------------------- version */

#define KP_VERSION_MAJOR 0
#define KP_VERSION_MINOR 1
#define KP_VERSION_PATCH 0
#define KP_VERSION_NUMBER (KP_VERSION_MAJOR * 10000 + KP_VERSION_MINOR * 100 + KP_VERSION_PATCH)

/* The library's version as "MAJOR.MINOR.PATCH"; a static string. Thread-safe. Compare with
 * KP_VERSION_* to detect a header/library mismatch. */
KP_API const char *kp_version(void);
/* KP_VERSION_NUMBER of the library actually loaded. Thread-safe. */
KP_API int kp_version_number(void);

/* ---------------------------------------------------------------- errors */

/* Values are stable: new codes are only ever appended. */
typedef enum kp_status {
    KP_OK = 0,
    KP_ERR_INVALID_ARG = 1,       /* NULL handle, bad option value, bad flag */
    KP_ERR_OUT_OF_MEMORY = 2,     /* the allocator returned NULL */
    KP_ERR_IO = 3,                /* file could not be opened, mapped or read */
    KP_ERR_FORMAT = 4,            /* the file is malformed, truncated or inconsistent */
    KP_ERR_UNSUPPORTED = 5,       /* well-formed, but a feature we do not implement */
    KP_ERR_BUFFER_TOO_SMALL = 6,  /* output buffer too small; *len says what is needed */
    KP_ERR_TOKEN_OUT_OF_RANGE = 7,/* a token id outside [0, n_vocab) */
    KP_ERR_CONTEXT_FULL = 8,      /* evaluation would exceed the session's context */
    KP_ERR_TOKENIZER_MISMATCH = 9,/* tokenizer does not fit the model (e.g. vocab size) */
    KP_ERR_CANCELLED = 10,        /* kp_session_cancel() or a callback stopped the work */
    KP_ERR_INTERNAL = 11,         /* a bug in libkuiper: please report it */
    KP_ERR_NOT_FOUND = 12,        /* a named item (key, tensor, template) does not exist */
    KP_ERR_MODEL_MISMATCH = 13,   /* saved state or data made with another model */
    KP_ERR_BUSY = 14              /* the session is in use by a kp_generate that is calling back */
} kp_status;

/* Static text for a status code ("KP_ERR_FORMAT: malformed model file"); never NULL. */
KP_API const char *kp_status_str(kp_status status);

/* The detailed message of the last failing kp_ call made by the calling thread ("" if none).
 * The pointer stays valid until the next kp_ call on this thread. */
KP_API const char *kp_last_error(void);

/* ---------------------------------------------------------------- hooks */

/* Every host allocation the library makes goes through this allocator. `alloc` returns memory
 * aligned to `alignment` (a power of two, at most 4096) or NULL; `free` receives the size that
 * was asked for. Both may be called from any thread the library runs on. Memory-mapped model
 * files are not allocations and do not go through it. */
typedef struct kp_allocator {
    void *(*alloc)(void *user, size_t size, size_t alignment);
    void (*free)(void *user, void *ptr, size_t size);
    void *user;
} kp_allocator;

typedef enum kp_log_level {
    KP_LOG_ERROR = 0,
    KP_LOG_WARN = 1,
    KP_LOG_INFO = 2,
    KP_LOG_DEBUG = 3
} kp_log_level;

/* Receives one message (no trailing newline); `msg` lives until the callback returns. */
typedef void (*kp_log_fn)(void *user, kp_log_level level, const char *msg);

/* ---------------------------------------------------------------- handles */

typedef struct kp_model kp_model;         /* weights + config + tokenizer, immutable */
typedef struct kp_tokenizer kp_tokenizer; /* vocabulary and encode/decode rules, immutable */
typedef struct kp_session kp_session;     /* KV cache and scratch for one conversation */
typedef struct kp_sampler kp_sampler;     /* sampling settings and RNG state */
typedef struct kp_tensor kp_tensor;       /* typed n-d array on a device */

typedef enum kp_device {
    KP_DEVICE_CPU = 0,
    KP_DEVICE_CUDA = 1
} kp_device;

/* ---------------------------------------------------------------- model */

typedef struct kp_model_params {
    size_t struct_size;            /* sizeof(kp_model_params), set by kp_model_params_init */
    const kp_allocator *allocator; /* NULL: malloc/free. Copied; must outlive the model */
    kp_log_fn log;                 /* NULL: silent */
    void *log_user;
    kp_log_level log_level;        /* messages above this level are dropped; default WARN */
    const char *tokenizer_path;    /* NULL: the tokenizer stored in the model file. Required for
                                      llama2.c checkpoints (they store none). Copied. */
    int n_threads;                 /* worker threads for compute; 0: one per online CPU */
    kp_device device;              /* default KP_DEVICE_CPU */
    /* KuiperLLama .bin files store no architecture: "llama2" (interleaved rope, theta 1e4,
     * eps 1e-5), "llama3" (rotate-half, theta 5e5, eps 1e-5) or "qwen2" (rotate-half, theta 1e6,
     * eps 1e-6, q/k/v biases in fp32 files). NULL: from a config.json beside the file, else an
     * error naming the choices. Ignored for every other format. Copied. */
    const char *family;
} kp_model_params;

/* Fills `p` with the defaults. */
KP_API void kp_model_params_init(kp_model_params *p);

/* Loads a model: a GGUF file, a Hugging Face model folder (config.json, *.safetensors, tokenizer
 * files), a llama2.c checkpoint (legacy v0, v1 fp32, v2 Q8_0) or a KuiperLLama .bin (fp32 or
 * int8; see `family`), detected from the path and the file's first bytes. The file is memory-mapped and stays mapped until kp_model_free. `p` may be
 * NULL for defaults. On success *out owns the model; free it with kp_model_free after every
 * session made from it has been freed. */
KP_API kp_status kp_model_load(const char *path, const kp_model_params *p, kp_model **out);
KP_API void kp_model_free(kp_model *m);

/* The tokenizer the model was loaded with; owned by the model, valid until kp_model_free. */
KP_API const kp_tokenizer *kp_model_tokenizer_borrow(const kp_model *m);

typedef enum kp_model_info {
    KP_INFO_N_VOCAB = 0,   /* rows of the output layer */
    KP_INFO_N_CTX = 1,     /* maximum positions the model was trained for */
    KP_INFO_N_EMBD = 2,
    KP_INFO_N_LAYER = 3,
    KP_INFO_N_HEAD = 4,
    KP_INFO_N_HEAD_KV = 5,
    KP_INFO_N_PARAMS = 6,  /* parameter count */
    KP_INFO_N_BYTES = 7    /* bytes of weights */
} kp_model_info;

/* Reads one integer fact about the model; -1 for an unknown key. Thread-safe. */
KP_API int64_t kp_model_info_get(const kp_model *m, kp_model_info key);

/* Architecture name ("llama", "qwen2"); owned by the model. */
KP_API const char *kp_model_arch_borrow(const kp_model *m);

/* ---------------------------------------------------------------- conversion */

typedef struct kp_quantize_params {
    size_t struct_size;            /* sizeof(kp_quantize_params), set by kp_quantize_params_init */
    /* Output type, case-insensitive: "F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0",
     * "Q5_1", "Q4_K", "Q5_K", "Q6_K", or llama.cpp's mixes "Q4_K_M", "Q5_K_M". Weight
     * matrices get that type, adjusted per tensor as llama-quantize does (the classifier Q6_K,
     * the _M layers, fallbacks for rows that do not fill a block); norms, biases and
     * rope_freqs stay F32. "COPY" keeps each matrix's own type (F32 for types GGUF lacks).
     * Default "Q8_0". Not copied; read during the call only. */
    const char *type;
    int n_threads;                 /* threads for quantizing; 0: one per online CPU */
    const kp_allocator *allocator; /* NULL: malloc/free */
    kp_log_fn log;                 /* NULL: silent */
    void *log_user;
    kp_log_level log_level;        /* default WARN */
    const char *tokenizer_path;    /* as kp_model_params, for inputs that store no tokenizer */
    const char *family;            /* as kp_model_params, for KuiperLLama .bin inputs */
} kp_quantize_params;

/* Fills `p` with the defaults. */
KP_API void kp_quantize_params_init(kp_quantize_params *p);

/* Writes the model at `in_path` (anything kp_model_load reads) as a GGUF v3 file at `out_path`
 * that llama.cpp and libkuiper load: llama.cpp's architecture metadata, tokenizer
 * (tokenizer.ggml.*) and chat template, tensors under llama.cpp's names. `p` may be NULL for
 * defaults. The file is written beside `out_path` under a temporary name and renamed when
 * complete, so on failure nothing is left behind and an existing `out_path` is untouched.
 * Errors: KP_ERR_INVALID_ARG for an unknown type, the loader's status for an unreadable input,
 * KP_ERR_IO when the output cannot be written, KP_ERR_UNSUPPORTED for a tokenizer or layout
 * GGUF cannot express; the message names the file and the problem. */
KP_API kp_status kp_model_quantize(const char *in_path, const char *out_path, const kp_quantize_params *p);

/* ---------------------------------------------------------------- tokenizer */

typedef struct kp_tokenizer_params {
    size_t struct_size;
    const kp_allocator *allocator; /* NULL: malloc/free */
    int32_t n_vocab;               /* needed for llama2.c tokenizer.bin (it stores no count); 0 otherwise */
} kp_tokenizer_params;

KP_API void kp_tokenizer_params_init(kp_tokenizer_params *p);

/* Loads a tokenizer on its own: Hugging Face tokenizer.json, SentencePiece .model, llama2.c
 * tokenizer.bin or the vocabulary stored in a GGUF file. Free with kp_tokenizer_free. */
KP_API kp_status kp_tokenizer_load(const char *path, const kp_tokenizer_params *p, kp_tokenizer **out);
KP_API void kp_tokenizer_free(kp_tokenizer *t);

KP_API int32_t kp_tokenizer_n_vocab(const kp_tokenizer *t);
/* Special ids; -1 when the tokenizer has none. */
KP_API int32_t kp_tokenizer_bos(const kp_tokenizer *t);
KP_API int32_t kp_tokenizer_eos(const kp_tokenizer *t);
/* Non-zero if generation should stop at `id` (EOS, EOT, or model-specific end markers). */
KP_API int kp_tokenizer_is_eog(const kp_tokenizer *t, int32_t id);

#define KP_TOKENIZE_ADD_SPECIAL   (1u << 0) /* add BOS/EOS as the tokenizer's post-processor says */
#define KP_TOKENIZE_PARSE_SPECIAL (1u << 1) /* special-token text in the input becomes special ids */

/* Encodes `len` bytes of `text` (NUL is an ordinary byte). Writes at most `cap` ids; *n_ids gets
 * the count (also on KP_ERR_BUFFER_TOO_SMALL, where it is the count needed). Invalid UTF-8:
 * byte-level vocabularies encode the raw bytes; other vocabularies see U+FFFD in its place. */
KP_API kp_status kp_tokenize(const kp_tokenizer *t, const char *text, size_t len, uint32_t flags,
                             int32_t *ids, size_t cap, size_t *n_ids);

/* The raw bytes of one token as it appears in decoded text (byte-fallback tokens give their one
 * byte, byte-level tokens their bytes; no space stripping). */
KP_API kp_status kp_token_to_piece(const kp_tokenizer *t, int32_t id, char *buf, size_t cap,
                                   size_t *len);

/* Decodes a whole id sequence to text, applying the tokenizer's decoder (leading-space strip,
 * byte fusion). Special tokens are rendered as their text. */
KP_API kp_status kp_detokenize(const kp_tokenizer *t, const int32_t *ids, size_t n, char *buf,
                               size_t cap, size_t *len);

/* ---------------------------------------------------------------- sampler */

typedef enum kp_sampler_opt {
    KP_SAMPLER_TEMPERATURE = 0,        /* [0, 100]; 0 = greedy (first maximum wins). default 1 */
    KP_SAMPLER_TOP_P = 1,              /* [0, 1]; 0 or 1 = off. default 1 */
    KP_SAMPLER_SEED = 2,               /* [0, 2^53], an integer; 0 = from the clock. default 0x5eed */
    KP_SAMPLER_TOP_K = 3,              /* [0, 2^31-1], an integer; 0 = off. default 0 */
    KP_SAMPLER_MIN_P = 4,              /* [0, 1]: drop tokens below min_p * the top probability; 0 = off */
    KP_SAMPLER_REPEAT_PENALTY = 5,     /* [0.01, 100]: a logit of a token in the window is divided by
                                          it when positive, multiplied when negative; 1 = off */
    KP_SAMPLER_FREQUENCY_PENALTY = 6,  /* [-100, 100]: subtracted once per occurrence in the window */
    KP_SAMPLER_PRESENCE_PENALTY = 7,   /* [-100, 100]: subtracted once if present in the window */
    KP_SAMPLER_PENALTY_WINDOW = 8      /* [0, 65536], an integer: how many of the last accepted
                                          tokens the penalties look at. default 64 */
} kp_sampler_opt;

/* Makes a sampler. The RNG is llama2.c's xorshift*, so with only temperature, top-p and seed set
 * it reproduces llama2.c's `run -t T -p P -s SEED` choices exactly. Otherwise the chain is:
 * penalties on the logits, temperature, softmax, top-k, min-p, top-p, then one draw.
 * `allocator` may be NULL. */
KP_API kp_status kp_sampler_new(const kp_allocator *allocator, kp_sampler **out);
KP_API void kp_sampler_free(kp_sampler *s);
/* Sets one option. Out-of-bounds or non-integer values (for integer options) return
 * KP_ERR_INVALID_ARG and change nothing. Setting the seed also resets the RNG state. */
KP_API kp_status kp_sampler_set(kp_sampler *s, kp_sampler_opt opt, double value);
/* The inclusive bounds of an option. Thread-safe. */
KP_API kp_status kp_sampler_bounds(kp_sampler_opt opt, double *lo, double *hi);
/* Picks one id from `n` logits (not modified). Advances the RNG once unless greedy. */
KP_API kp_status kp_sampler_sample(kp_sampler *s, const float *logits, size_t n, int32_t *id);
/* Records a token in the penalty window (kp_generate does this for the prompt and for every
 * generated token). Negative ids are rejected. */
KP_API kp_status kp_sampler_accept(kp_sampler *s, int32_t id);
/* Forgets the penalty window and restarts the RNG from the seed; settings stay. */
KP_API void kp_sampler_reset(kp_sampler *s);

/* ---------------------------------------------------------------- session */

typedef enum kp_kv_type {
    KP_KV_F32 = 0,
    KP_KV_F16 = 1
} kp_kv_type;

typedef struct kp_session_params {
    size_t struct_size;
    int32_t n_ctx;       /* positions to hold, at most the model's maximum; 0: the model's
                            maximum or 4096, whichever is smaller */
    kp_kv_type kv_type;  /* default KP_KV_F32 */
} kp_session_params;

KP_API void kp_session_params_init(kp_session_params *p);

/* A session holds the KV cache of one token sequence. It borrows `m`, which must outlive it. */
KP_API kp_status kp_session_new(kp_model *m, const kp_session_params *p, kp_session **out);
KP_API void kp_session_free(kp_session *s);

#define KP_EVAL_LOGITS_NONE 0u      /* only fill the KV cache */
#define KP_EVAL_LOGITS_LAST (1u << 0) /* logits of the last position (the usual) */
#define KP_EVAL_LOGITS_ALL  (1u << 1) /* logits of every position of this call */

/* Appends `n` tokens at the session's current position, evaluating them as one batch.
 * Fails with KP_ERR_TOKEN_OUT_OF_RANGE or KP_ERR_CONTEXT_FULL before changing anything. */
KP_API kp_status kp_session_eval(kp_session *s, const int32_t *ids, size_t n, uint32_t flags);

/* Logits of row `i` of the last kp_session_eval (row 0 with KP_EVAL_LOGITS_LAST; rows 0..n-1
 * with KP_EVAL_LOGITS_ALL); NULL if not computed. n_vocab floats, owned by the session, valid
 * until its next eval, reset or free. */
KP_API const float *kp_session_logits_borrow(const kp_session *s, size_t i);

/* Evaluates one token for each of `n` sessions of the same model in one forward pass: the
 * weight matmuls see all n rows at once (one pass over the weights serves every session), while
 * each session keeps its own KV cache, position and attention. tokens[i] is appended to
 * sessions[i]; with KP_EVAL_LOGITS_LAST (or _ALL) kp_session_logits_borrow(sessions[i], 0) then
 * gives its logits, equal to those of kp_session_eval on that session alone up to float
 * rounding (1e-5 relative). Sampling stays with the caller, one sampler per session.
 * The caller must own every session for the call (none in use by another thread); they must be
 * distinct and made from one model. Fails with KP_ERR_INVALID_ARG, KP_ERR_CONTEXT_FULL,
 * KP_ERR_TOKEN_OUT_OF_RANGE or (called from a kp_generate callback on one of them) KP_ERR_BUSY
 * before changing any session (the message names the index; the failing session's
 * kp_session_last_error has it too). kp_session_cancel does not stop it: a
 * scheduler drops cancelled sessions from its next batch instead. n == 0 does nothing. */
KP_API kp_status kp_batch_decode(kp_session *const *sessions, const int32_t *tokens, size_t n,
                                 uint32_t flags);

/* kp_batch_decode with any number of tokens per session: n_tokens[i] tokens from tokens[i] are
 * appended to sessions[i] (0 leaves that session and its logits alone), all sessions' rows
 * sharing forward passes of up to 256 rows, so a new request's prompt and the running
 * sessions' next tokens cost one pass over the weights together. With KP_EVAL_LOGITS_LAST row 0
 * of kp_session_logits_borrow(sessions[i], .) is the logits after its last token; with _ALL rows
 * 0..n_tokens[i]-1 are every token's. Equal to kp_session_eval on each session alone up to float
 * rounding. Same ownership rules and failures as kp_batch_decode (KP_ERR_CONTEXT_FULL when a
 * session's tokens do not fit), checked before any session changes. */
KP_API kp_status kp_batch_eval(kp_session *const *sessions, const int32_t *const *tokens,
                               const size_t *n_tokens, size_t n, uint32_t flags);

/* Positions held (tokens evaluated so far). */
KP_API int32_t kp_session_n_past(const kp_session *s);
KP_API int32_t kp_session_n_ctx(const kp_session *s);
/* Forgets every position from `n_keep` on (0 clears the session). */
KP_API kp_status kp_session_truncate(kp_session *s, int32_t n_keep);
/* Asks a running kp_session_eval or kp_generate to stop with KP_ERR_CANCELLED: before the next
 * generated token, or after the current 256-token chunk of a prompt (what was evaluated stays in
 * the session). A request made while nothing runs waits for the next such point; the call it stops
 * consumes it. Safe from any thread and from a signal handler. */
KP_API void kp_session_cancel(kp_session *s);
/* The message of the last failure on this session (""), valid until its next call. */
KP_API const char *kp_session_last_error(const kp_session *s);

/* Writes the session's state (token ids, KV cache, last logits) to `path` with a versioned
 * header and a fingerprint of the model. */
KP_API kp_status kp_session_save(const kp_session *s, const char *path);
/* Replaces the session's state with one saved by kp_session_save. Fails, leaving the session
 * unchanged, with KP_ERR_MODEL_MISMATCH for a state of another model, KP_ERR_FORMAT for a
 * truncated or corrupt file or one holding NaN or infinite KV or logits, KP_ERR_IO for a path
 * that cannot be read (or is a directory), KP_ERR_CONTEXT_FULL if it holds more positions than
 * this session, KP_ERR_INVALID_ARG if its KV type differs from this session's. */
KP_API kp_status kp_session_load(kp_session *s, const char *path);
/* Ids this session holds (kp_session_n_past of them); owned by the session, valid until its next
 * eval, truncate, load or free. */
KP_API const int32_t *kp_session_tokens_borrow(const kp_session *s);

/* ---------------------------------------------------------------- generation */

/* One event of kp_generate: a prompt token being fed (is_prompt) or a generated one. `piece` is
 * the decoded text to print (valid during the call only; UTF-8 sequences split across tokens
 * are held back and emitted whole). `logits` is the distribution `id` was chosen from (NULL for
 * prompt tokens; valid during the call only). A last event with id -1 may carry the bytes of a
 * character that generation ended in the middle of. Return non-zero to stop.
 * The callback may read the session (n_past, tokens, logits, save) and cancel it, but calls that
 * would change it (kp_generate, kp_session_eval, kp_session_truncate, kp_session_load) fail with
 * KP_ERR_BUSY and change nothing. */
typedef struct kp_token_event {
    int32_t id;
    int is_prompt;
    const char *piece;
    size_t piece_len;
    const float *logits;
    size_t n_vocab;
} kp_token_event;

typedef int (*kp_token_cb)(void *user, const kp_token_event *ev);

/* What to do when generation reaches the end of the session's context. */
typedef enum kp_context_policy {
    KP_CONTEXT_ERROR = 0, /* stop with KP_ERR_CONTEXT_FULL (max_new_tokens 0: stop with KP_OK) */
    KP_CONTEXT_SLIDE = 1  /* keep the first n_keep positions and the most recent half of the
                             rest, re-evaluate them at their new positions, and go on */
} kp_context_policy;

/* Why kp_generate returned. */
typedef enum kp_stop_reason {
    KP_STOP_NONE = 0,       /* it failed: see the status */
    KP_STOP_EOG = 1,        /* an end-of-generation token (stats.stop_id) */
    KP_STOP_MAX_TOKENS = 2,
    KP_STOP_STRING = 3,     /* a stop string appeared (stats.stop_string is its index) */
    KP_STOP_CALLBACK = 4,   /* on_token returned non-zero */
    KP_STOP_CONTEXT = 5     /* the context is full (policy KP_CONTEXT_ERROR) */
} kp_stop_reason;

typedef struct kp_generate_params {
    size_t struct_size;
    int32_t max_new_tokens;  /* stop after this many generated tokens; 0: until the context is full */
    kp_sampler *sampler;     /* borrowed; NULL: greedy. Prompt and generated ids are accepted into
                                its penalty window. */
    kp_token_cb on_token;    /* NULL: no streaming */
    void *user;
    int echo_prompt;         /* also report the prompt tokens (decoded as fed, llama2.c style) */
    /* Stop strings (borrowed for the call): generation stops when the decoded text contains one;
     * that text and what follows it are not reported. Text that could be the start of a stop
     * string is held back until it cannot be, so a piece may arrive a few events late. */
    const char *const *stop_strings;
    size_t n_stop_strings;
    kp_context_policy context_policy; /* default KP_CONTEXT_ERROR */
    int32_t n_keep;          /* KP_CONTEXT_SLIDE: positions always kept (e.g. the system prompt) */
} kp_generate_params;

typedef struct kp_generate_stats {
    int32_t n_prompt;
    int32_t n_generated;
    double prompt_seconds;
    double generate_seconds;
    int32_t stop_id;         /* the end-of-generation id that stopped it, or -1 */
    kp_stop_reason reason;
    int32_t stop_string;     /* index into stop_strings, or -1 */
} kp_generate_stats;

KP_API void kp_generate_params_init(kp_generate_params *p);

/* Feeds `prompt` (ids, e.g. from kp_tokenize) as one batch after what the session holds, then
 * samples until an end-of-generation id, max_new_tokens, a stop string, a callback stop or a
 * full context (see kp_context_policy). KP_ERR_CONTEXT_FULL if the prompt itself does not fit.
 * An empty prompt continues from the session's last token. `stats` may be NULL.
 * KP_ERR_CANCELLED after kp_session_cancel; what was generated until then stays in the session.
 * KP_ERR_BUSY when called on `s` from inside its own on_token callback (see kp_token_cb). */
KP_API kp_status kp_generate(kp_session *s, const int32_t *prompt, size_t n_prompt,
                             const kp_generate_params *p, kp_generate_stats *stats);

/* ---------------------------------------------------------------- chat */

/* One conversation turn. `role` is "system", "user" or "assistant"; `content` is UTF-8 text.
 * Both are borrowed for the duration of the call only. */
typedef struct kp_chat_msg {
    const char *role;
    const char *content;
} kp_chat_msg;

/* Renders `msgs[0..n)` as prompt text with the model's own chat template (the GGUF
 * `tokenizer.chat_template`), producing exactly what Hugging Face's apply_chat_template gives for
 * that template (tools and extra template variables unset). `add_assistant` non-zero opens the
 * assistant's turn at the end (add_generation_prompt); templates that ignore that flag (Llama 2,
 * Llama 3 base) are followed, not overridden.
 * The text may contain special-token text and, for Llama 2/3 families, begins with the BOS text:
 * tokenize it with KP_TOKENIZE_PARSE_SPECIAL and without KP_TOKENIZE_ADD_SPECIAL in that case.
 * Output: caller-owned `buf` of `cap` bytes; *len gets the prompt's length in bytes (without a
 * terminating NUL, which is written only when cap > *len). A too-small buffer returns
 * KP_ERR_BUFFER_TOO_SMALL with *len = the size needed (call with buf NULL, cap 0 to measure).
 * Errors: KP_ERR_NOT_FOUND if the model has no template, KP_ERR_UNSUPPORTED for a template of a
 * family we cannot render, KP_ERR_INVALID_ARG for an empty list, a NULL field, a role other than
 * system/user/assistant, or (Llama 2) turns that do not alternate user/assistant.
 * Thread-safe: reads the model only. */
KP_API kp_status kp_chat_format(const kp_model *m, const kp_chat_msg *msgs, size_t n, int add_assistant,
                                char *buf, size_t cap, size_t *len);

/* As kp_chat_format, with the template given: either a Jinja chat template string (its family is
 * recognised from its markers: `<|start_header_id|>` Llama 3/3.1, `<|im_start|>` ChatML such as
 * Qwen2.5, Qwen3 and SmolLM2, `[INST]` Llama 2; per-model details such as a default system prompt
 * are read from the template text) or a family name forcing the plain form of a family:
 * "llama3", "chatml" or "llama2". BOS/EOS texts are the family's own (`<|begin_of_text|>`,
 * `<s>`/`</s>`). Llama 3.1 Instruct's "Today Date" is the template's default date_string
 * ("26 Jul 2024"), never the current date, so renderings are reproducible. */
KP_API kp_status kp_chat_format_template(const char *template_or_family, const kp_chat_msg *msgs, size_t n,
                                         int add_assistant, char *buf, size_t cap, size_t *len);

/* ---------------------------------------------------------------- tensors */

typedef enum kp_dtype {
    KP_DTYPE_F32 = 0,
    KP_DTYPE_F16 = 1,
    KP_DTYPE_BF16 = 2,
    KP_DTYPE_Q8_0 = 3,
    KP_DTYPE_Q4_0 = 4,
    KP_DTYPE_Q4_1 = 5,
    KP_DTYPE_Q5_0 = 6,
    KP_DTYPE_Q5_1 = 7,
    KP_DTYPE_Q4_K = 8,
    KP_DTYPE_Q5_K = 9,
    KP_DTYPE_Q6_K = 10,
    KP_DTYPE_Q8_K = 11,
    KP_DTYPE_I8G = 12,  /* llama2.c v2: int8 values with one f32 scale per group of G */
    KP_DTYPE_I32 = 13,
    KP_DTYPE_COUNT
} kp_dtype;

/* Name of a dtype ("f32", "q8_0", ...); static, never NULL. */
KP_API const char *kp_dtype_name(kp_dtype t);

/* A named weight of a loaded model, owned by the model; NULL if there is none of that name.
 * Names are canonical GGUF-style ("token_embd.weight", "blk.0.attn_q.weight"). */
KP_API const kp_tensor *kp_model_tensor_borrow(const kp_model *m, const char *name);
KP_API kp_dtype kp_tensor_dtype(const kp_tensor *t);
/* Number of dimensions (1..4); dims[0] is the contiguous one (GGUF order). */
KP_API int kp_tensor_ndim(const kp_tensor *t);
KP_API int64_t kp_tensor_dim(const kp_tensor *t, int i);
KP_API kp_device kp_tensor_device(const kp_tensor *t);

#ifdef __cplusplus
}
#endif
#endif /* KUIPER_KUIPER_H */
