/* The worker pool and the backend's lifecycle: every index runs exactly once, thousands of
 * back-to-back loops, two threads sharing one backend, allocation failures reported (and
 * nothing leaked), buffers aligned. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "backends/cpu/threadpool.h"
#include "lib/internal.h"
#include "ops_test.h"

/* ---- an allocator that counts and can be told to fail */

typedef struct counting {
    long live, calls, fail_at; /* fail the fail_at-th call (1-based); 0 = never */
} counting;

static void *c_alloc(void *u, size_t size, size_t align)
{
    counting *c = u;
    if (c->fail_at && ++c->calls == c->fail_at)
        return NULL;
    void *p = NULL;
    if (posix_memalign(&p, align < sizeof(void *) ? sizeof(void *) : align, size) != 0)
        return NULL;
    c->live++;
    return p;
}

static void c_free(void *u, void *p, size_t size)
{
    (void)size;
    counting *c = u;
    c->live--;
    free(p);
}

typedef struct cover_ctx {
    _Atomic int *hits;
} cover_ctx;

static void cover(void *p, int64_t b, int64_t e)
{
    cover_ctx *c = p;
    for (int64_t i = b; i < e; i++)
        atomic_fetch_add(&c->hits[i], 1);
}

static void test_every_index_once(void **state)
{
    (void)state;
    static const int64_t NS[] = {1, 2, 7, 64, 1000, 4099};
    static const int64_t GRAINS[] = {1, 3, 64, 5000};
    for (int nt = 1; nt <= 4; nt++) {
        kp_threadpool *p = NULL;
        assert_int_equal(kp_threadpool_new(kp_allocator_default(), nt, &p), KP_OK);
        assert_int_equal(kp_threadpool_size(p), nt);
        for (size_t ni = 0; ni < 6; ni++)
            for (size_t gi = 0; gi < 4; gi++) {
                _Atomic int *hits = xmalloc((size_t)NS[ni] * sizeof *hits);
                cover_ctx c = {hits};
                kp_threadpool_for(p, NS[ni], GRAINS[gi], cover, &c);
                for (int64_t i = 0; i < NS[ni]; i++)
                    assert_int_equal(atomic_load(&hits[i]), 1);
                free((void *)hits);
            }
        kp_threadpool_for(p, 0, 1, cover, NULL); /* empty loop: fn never called */
        kp_threadpool_free(p);
    }
    kp_threadpool_free(NULL);
}

static void add_range(void *p, int64_t b, int64_t e)
{
    _Atomic int64_t *sum = p;
    int64_t s = 0;
    for (int64_t i = b; i < e; i++)
        s += i;
    atomic_fetch_add(sum, s);
}

static void test_many_loops(void **state)
{
    (void)state;
    kp_threadpool *p = NULL;
    assert_int_equal(kp_threadpool_new(kp_allocator_default(), 3, &p), KP_OK);
    for (int k = 0; k < 3000; k++) {
        _Atomic int64_t sum = 0;
        int64_t n = 1 + k % 97;
        kp_threadpool_for(p, n, 1 + k % 5, add_range, (void *)&sum);
        assert_int_equal(atomic_load(&sum), n * (n - 1) / 2);
    }
    kp_threadpool_free(p);
}

/* ---- two sessions on one backend */

typedef struct share {
    kp_backend *be;
    const kp_tensor *w;
    const float *x;
    const float *want;
    int rows;
    int ok;
} share;

static void *session(void *arg)
{
    share *s = arg;
    float *y = xmalloc((size_t)s->rows * 4);
    s->ok = 1;
    for (int k = 0; k < 200; k++) {
        s->be->ops->matmul(s->be, y, s->w, s->x, 1, NULL);
        if (memcmp(y, s->want, (size_t)s->rows * 4) != 0)
            s->ok = 0;
    }
    free(y);
    return NULL;
}

static void test_shared_backend(void **state)
{
    (void)state;
    test_rng rng = {41};
    const int rows = 515, cols = 256;
    float *w = xmalloc((size_t)rows * cols * 4), *x = xmalloc((size_t)cols * 4);
    float *want = xmalloc((size_t)rows * 4);
    fill_gauss(&rng, w, (size_t)rows * cols, 1.0f);
    fill_gauss(&rng, x, (size_t)cols, 1.0f);
    int64_t ne[2] = {cols, rows};
    kp_tensor t;
    kp_tensor_init(&t, "w", KP_DTYPE_F32, 2, ne, w);
    kp_backend *be = new_backend(2);
    be->ops->matmul(be, want, &t, x, 1, NULL);
    share s[2] = {{be, &t, x, want, rows, 0}, {be, &t, x, want, rows, 0}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, session, &s[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    assert_true(s[0].ok && s[1].ok);
    be->ops->destroy(be);
    free(w), free(x), free(want);
}

static void test_backend_lifecycle(void **state)
{
    (void)state;
    kp_backend *be = NULL;
    assert_int_equal(kp_backend_cpu_new(NULL, 1, NULL), KP_ERR_INVALID_ARG);
    assert_int_equal(kp_backend_cpu_new(NULL, -1, &be), KP_ERR_INVALID_ARG);
    assert_null(be);
    assert_int_equal(kp_backend_cpu_new(NULL, 0, &be), KP_OK); /* one per online CPU */
    assert_string_equal(be->ops->name, "cpu");
    assert_int_equal(be->device, KP_DEVICE_CPU);
    be->ops->destroy(be);

    /* every allocation failure point is reported and leaks nothing */
    for (long k = 1;; k++) {
        counting c = {0, 0, k};
        kp_allocator a = {c_alloc, c_free, &c};
        be = NULL;
        kp_status st = kp_backend_cpu_new(&a, 3, &be);
        if (st == KP_OK) {
            assert_true(k > 1);
            c.fail_at = 0;
            float src[33], back[33];
            for (int i = 0; i < 33; i++)
                src[i] = (float)i;
            float *buf = be->ops->buf_alloc(be, sizeof src);
            assert_non_null(buf);
            assert_int_equal((uintptr_t)buf % 64, 0);
            assert_int_equal(be->ops->upload(be, buf, src, sizeof src), KP_OK);
            assert_int_equal(be->ops->download(be, back, buf, sizeof src), KP_OK);
            assert_int_equal(be->ops->sync(be), KP_OK);
            assert_memory_equal(src, back, sizeof src);
            be->ops->buf_free(be, buf, sizeof src);
            be->ops->destroy(be);
            assert_int_equal(c.live, 0);
            break;
        }
        assert_int_equal(st, KP_ERR_OUT_OF_MEMORY);
        assert_null(be);
        assert_int_equal(c.live, 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_index_once),
        cmocka_unit_test(test_many_loops),
        cmocka_unit_test(test_shared_backend),
        cmocka_unit_test(test_backend_lifecycle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
