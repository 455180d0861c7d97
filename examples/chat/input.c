#include "input.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <termios.h>
#include <unistd.h>

#ifdef KP_HAVE_LIBEDIT
#include <histedit.h>
#include <langinfo.h>
#include <locale.h>
#include <wchar.h>
#endif

/* Linux's canonical terminal mode keeps at most this many bytes of a line before its break and
 * drops what comes after: a line that long from such a terminal may have lost its end. */
#define CANON_LIMIT 4095

struct chat_input {
    volatile sig_atomic_t *interrupted;
    int tty, eof;
    sigset_t unblocked; /* the signal mask while waiting for input */
    unsigned char buf[4096];
    size_t pos, len;
    unsigned char back[8]; /* bytes looked at and given back, read again last first */
    size_t n_back;
#ifdef KP_HAVE_LIBEDIT
    EditLine *el;
    HistoryW *hist;
    int pasting;       /* between the terminal's bracketed-paste markers */
    wchar_t queued;    /* a character to hand libedit next (0: none) */
    const wchar_t *prompt;
#endif
};

/* ---- bytes from standard input, Ctrl-C aware */

/* 1 and the next byte; 0 at the end of input; -1 on Ctrl-C or a read error. Call with SIGINT
 * blocked (see input.h). */
static int get_byte(chat_input *in, unsigned char *b)
{
    if (in->n_back) {
        *b = in->back[--in->n_back];
        return 1;
    }
    while (in->pos == in->len) {
        if (*in->interrupted)
            return -1;
        if (in->eof)
            return 0;
        fd_set fds;
        FD_ZERO(&fds);
        FD_SET(STDIN_FILENO, &fds);
        if (pselect(STDIN_FILENO + 1, &fds, NULL, NULL, NULL, &in->unblocked) < 0) {
            if (errno != EINTR)
                return -1;
            continue;
        }
        ssize_t k = read(STDIN_FILENO, in->buf, sizeof in->buf);
        if (k > 0) {
            in->pos = 0;
            in->len = (size_t)k;
        } else if (k == 0 || (errno != EINTR && errno != EAGAIN)) {
            in->eof = 1;
        }
    }
    *b = in->buf[in->pos++];
    return 1;
}

typedef struct text {
    char *p;
    size_t len, cap;
} text;

static int text_add(text *t, const char *s, size_t n)
{
    if (t->len + n + 1 > t->cap) {
        size_t cap = (t->cap ? t->cap * 2 : 256) + n;
        char *g = realloc(t->p, cap);
        if (!g)
            return -1;
        t->p = g;
        t->cap = cap;
    }
    memcpy(t->p + t->len, s, n);
    t->len += n;
    t->p[t->len] = '\0';
    return 0;
}

/* ---- plain reading: pipes, and terminals when libedit is absent */

/* One line without its break into `t`; 1, 0 at the end of input, -1 on Ctrl-C. */
static int plain_line(chat_input *in, const char *prompt, text *t)
{
    if (in->tty) {
        fputs(prompt, stdout);
        fflush(stdout);
    }
    t->len = 0;
    int got_any = 0, r;
    unsigned char b;
    while ((r = get_byte(in, &b)) == 1) {
        got_any = 1;
        if (b == '\n')
            break;
        char c = (char)b;
        if (text_add(t, &c, 1))
            return -1;
    }
    if (r < 0 || (r == 0 && !got_any))
        return r;
    if (!t->p && text_add(t, "", 0))
        return -1;
    if (t->len && t->p[t->len - 1] == '\r')
        t->p[--t->len] = '\0';
    return 1;
}

static int canonical_tty(void)
{
    struct termios tio;
    return isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &tio) == 0 && (tio.c_lflag & ICANON);
}

/* ---- libedit */

#ifdef KP_HAVE_LIBEDIT

static void unget_byte(chat_input *in, unsigned char b)
{
    if (in->n_back < sizeof in->back)
        in->back[in->n_back++] = b;
}

static wchar_t *show_prompt(EditLine *el)
{
    chat_input *in = NULL;
    el_wget(el, EL_CLIENTDATA, &in);
    return (wchar_t *)in->prompt;
}

/* Matches the rest of a bracketed-paste marker after ESC: 1 for "[200~" (start), 2 for "[201~"
 * (end), 0 when the bytes are something else (given back), -1 on Ctrl-C or the end of input. */
static int paste_marker(chat_input *in)
{
    unsigned char seen[5];
    size_t n = 0;
    int r = 1, differs = 0;
    while (n < 5 && !differs && (r = get_byte(in, &seen[n])) == 1) {
        unsigned char want = n == 3 ? (seen[3] == '1' ? '1' : '0') : (unsigned char)"[200~"[n];
        differs = seen[n++] != want;
    }
    if (n == 5 && !differs)
        return seen[3] == '0' ? 1 : 2;
    while (n)
        unget_byte(in, seen[--n]);
    return r < 0 ? -1 : 0;
}

/* libedit's character source: UTF-8 from get_byte, with pasted line breaks and tabs quoted
 * (Ctrl-V, then the character) so that a multi-line paste becomes one line. */
static int read_key(EditLine *el, wchar_t *wc)
{
    chat_input *in = NULL;
    el_wget(el, EL_CLIENTDATA, &in);
    if (in->queued) {
        *wc = in->queued;
        in->queued = 0;
        return 1;
    }
    for (;;) {
        unsigned char b;
        int r = get_byte(in, &b);
        if (r != 1)
            return r;
        if (b == 0x1b) {
            int m = paste_marker(in);
            if (m < 0)
                return -1;
            if (m) {
                in->pasting = m == 1;
                continue;
            }
        }
        if (in->pasting && b == '\r') { /* a pasted CR LF is one line break */
            unsigned char c;
            if ((r = get_byte(in, &c)) < 0)
                return r;
            if (r == 1 && c != '\n')
                unget_byte(in, c);
        }
        if (in->pasting && (b == '\r' || b == '\n' || b == '\t')) {
            in->queued = b == '\t' ? L'\t' : L'\n';
            *wc = 0x16; /* Ctrl-V: ed-quoted-insert */
            return 1;
        }
        if (b < 0x80) {
            *wc = (wchar_t)b;
            return 1;
        }
        int more = b >= 0xf0 ? 3 : b >= 0xe0 ? 2 : b >= 0xc0 ? 1 : -1;
        unsigned long u = more == 3 ? b & 0x07u : more == 2 ? b & 0x0fu : b & 0x1fu;
        for (int k = 0; k < more; k++) {
            unsigned char c;
            if ((r = get_byte(in, &c)) != 1)
                return r;
            if ((c & 0xc0) != 0x80) {
                unget_byte(in, c);
                more = -1;
                break;
            }
            u = u << 6 | (c & 0x3fu);
        }
        *wc = more < 0 || u > 0x10ffff ? (wchar_t)0xfffd : (wchar_t)u;
        return 1;
    }
}

static int put_utf8(text *t, unsigned long u)
{
    char b[4];
    size_t n;
    if (u < 0x80) {
        b[0] = (char)u;
        n = 1;
    } else if (u < 0x800) {
        b[0] = (char)(0xc0 | (u >> 6));
        b[1] = (char)(0x80 | (u & 0x3f));
        n = 2;
    } else if (u < 0x10000) {
        b[0] = (char)(0xe0 | (u >> 12));
        b[1] = (char)(0x80 | ((u >> 6) & 0x3f));
        b[2] = (char)(0x80 | (u & 0x3f));
        n = 3;
    } else {
        b[0] = (char)(0xf0 | (u >> 18));
        b[1] = (char)(0x80 | ((u >> 12) & 0x3f));
        b[2] = (char)(0x80 | ((u >> 6) & 0x3f));
        b[3] = (char)(0x80 | (u & 0x3f));
        n = 4;
    }
    return text_add(t, b, n);
}

/* The terminal's settings before we changed them, for the way out (also on SIGTERM and SIGHUP). */
static struct termios g_saved_tio, g_run_tio;
static volatile sig_atomic_t g_tio_changed;

static void restore_tty(void)
{
    if (g_tio_changed) {
        tcsetattr(STDIN_FILENO, TCSANOW, &g_saved_tio);
        g_tio_changed = 0;
    }
}

static void on_fatal_signal(int sig)
{
    restore_tty(); /* tcsetattr is async-signal-safe */
    signal(sig, SIG_DFL);
    raise(sig);
}

/* libedit turns the terminal's canonical mode off only while a line is being edited; in between
 * (during an answer) the terminal would collect what is typed or pasted in canonical mode, which
 * keeps at most 4095 bytes of a line and drops the rest. So the whole chat runs without canonical
 * mode and echo: text typed ahead is kept whole and shown when the next prompt reads it. */
static void leave_canonical_mode(void)
{
    struct termios tio;
    if (tcgetattr(STDIN_FILENO, &g_saved_tio) != 0)
        return;
    tio = g_saved_tio;
    tio.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
    tio.c_cc[VMIN] = 1;
    tio.c_cc[VTIME] = 0;
    if (tcsetattr(STDIN_FILENO, TCSANOW, &tio) != 0)
        return;
    g_run_tio = tio;
    g_tio_changed = 1;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_fatal_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
}

static int edit_line(chat_input *in, const wchar_t *prompt, text *t)
{
    in->prompt = prompt;
    in->pasting = 0;
    in->queued = 0;
    int count = 0;
    const wchar_t *line = el_wgets(in->el, &count);
    if (g_tio_changed) /* libedit leaves the terminal canonical: see leave_canonical_mode */
        tcsetattr(STDIN_FILENO, TCSANOW, &g_run_tio);
    if (*in->interrupted)
        return -1;
    if (!line || count <= 0)
        return 0; /* Ctrl-D on an empty line, or the end of input */
    size_t n = wcslen(line);
    if (n && line[n - 1] == L'\n')
        n--;
    if (n) {
        HistEventW ev;
        wchar_t *entry = wcsdup(line);
        if (entry) {
            entry[n] = 0;
            history_w(in->hist, &ev, H_ENTER, entry);
            free(entry);
        }
    }
    t->len = 0;
    if (text_add(t, "", 0))
        return -1;
    for (size_t i = 0; i < n; i++)
        if (put_utf8(t, (unsigned long)line[i]))
            return -1;
    return 1;
}

/* libedit shows and converts text in the LC_CTYPE locale: use the user's when it is UTF-8, else
 * C.UTF-8 (our text is UTF-8 either way). */
static void utf8_ctype(void)
{
    const char *set = setlocale(LC_CTYPE, "");
    if (!set || strcmp(nl_langinfo(CODESET), "UTF-8") != 0)
        setlocale(LC_CTYPE, "C.UTF-8");
}

static int start_editline(chat_input *in)
{
    utf8_ctype();
    in->el = el_init("kuiper-chat", stdin, stdout, stderr);
    in->hist = history_winit();
    if (!in->el || !in->hist)
        return -1;
    HistEventW ev;
    history_w(in->hist, &ev, H_SETSIZE, 1000);
    history_w(in->hist, &ev, H_SETUNIQUE, 1);
    el_wset(in->el, EL_CLIENTDATA, (void *)in);
    el_wset(in->el, EL_EDITOR, L"emacs");
    el_wset(in->el, EL_HIST, history_w, in->hist);
    el_wset(in->el, EL_PROMPT, show_prompt);
    el_wset(in->el, EL_GETCFN, read_key);
    el_wset(in->el, EL_BIND, L"^R", L"em-inc-search-prev", NULL);
    el_source(in->el, NULL); /* the user's ~/.editrc, if any */
    leave_canonical_mode(); /* after el_init, which makes the terminal canonical */
    /* Pasted text comes between markers, so a multi-line paste can be one message. */
    fputs("\033[?2004h", stdout);
    fflush(stdout);
    return 0;
}

#endif

/* ---- the interface */

chat_input *input_new(volatile sig_atomic_t *interrupted)
{
    chat_input *in = calloc(1, sizeof *in);
    if (!in)
        return NULL;
    in->interrupted = interrupted;
    in->tty = isatty(STDIN_FILENO);
    sigprocmask(SIG_SETMASK, NULL, &in->unblocked);
    sigdelset(&in->unblocked, SIGINT);
#ifdef KP_HAVE_LIBEDIT
    if (in->tty && start_editline(in)) {
        input_free(in);
        return NULL;
    }
#endif
    return in;
}

void input_free(chat_input *in)
{
    if (!in)
        return;
#ifdef KP_HAVE_LIBEDIT
    if (in->el) {
        fputs("\033[?2004l", stdout);
        fflush(stdout);
        el_end(in->el);
    }
    restore_tty();
    if (in->hist)
        history_wend(in->hist);
#endif
    free(in);
}

int input_is_tty(const chat_input *in) { return in->tty; }

const char *input_kind(const chat_input *in)
{
#ifdef KP_HAVE_LIBEDIT
    if (in->el)
        return "libedit";
#endif
    return in->tty ? "plain" : "pipe";
}

/* One physical line: 1, 0 at the end of input, -1 on Ctrl-C. */
static int one_line(chat_input *in, int first, text *t)
{
#ifdef KP_HAVE_LIBEDIT
    if (in->el)
        return edit_line(in, first ? L"> " : L"... ", t);
#endif
    int r = plain_line(in, first ? "> " : "... ", t);
    if (r == 1 && t->len >= CANON_LIMIT && in->tty && canonical_tty()) {
        fprintf(stderr, "[this line reached the terminal's limit of %d bytes, so its end may be lost: it was not "
                        "sent. Send long text in lines ending with '\\', or through a pipe]\n", CANON_LIMIT);
        t->len = 0;
        t->p[0] = '\0';
        return 2;
    }
    return r;
}

char *input_read(chat_input *in)
{
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigprocmask(SIG_BLOCK, &block, &old);
    text msg = {0}, line = {0};
    int first = 1, r;
    while ((r = one_line(in, first, &line)) > 0) {
        if (r == 2) { /* refused: start the message again */
            msg.len = 0;
            first = 1;
            continue;
        }
        int more = line.len > 0 && line.p[line.len - 1] == '\\';
        if (more)
            line.p[line.len - 1] = '\n'; /* the backslash becomes the line break it escapes */
        if (text_add(&msg, line.p, line.len)) {
            r = -1;
            break;
        }
        if (!more)
            break;
        first = 0;
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
    free(line.p);
    if (r <= 0) {
        free(msg.p);
        return NULL;
    }
    return msg.p;
}
