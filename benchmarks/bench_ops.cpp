// CPU backend kernels: matmul per weight type and ISA level at model-like shapes, float
// prefill through OpenBLAS and through our own kernel, rmsnorm and attention. Threads:
// KP_BENCH_THREADS (default 0 = one per online CPU). Counters: GB/s of weight (and KV)
// bytes read, GFLOP/s counting a multiply-add as two, per wall-clock second; with
// KP_BENCH_CPU_TIME=1 per CPU second of the benchmark thread instead, which is steadier on a
// shared machine when run single-threaded (KP_BENCH_THREADS=1 OPENBLAS_NUM_THREADS=1).
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

extern "C" {
#include "backends/backend.h"
#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/cpu_features.h"
#include "backends/cpu/kernels.h"
#include "backends/cpu/wtype.h"
#include "lib/tensor.h"
}

namespace {

kp_backend *g_be = nullptr;
bool g_real_time = true;

// Timing mode for every registration.
benchmark::internal::Benchmark *timed(benchmark::internal::Benchmark *b)
{
    b->Unit(benchmark::kMicrosecond);
    return g_real_time ? b->UseRealTime() : b;
}

struct Weights {
    kp_tensor t{};
    std::vector<uint8_t> data;
    std::vector<float> scales;
};

// Random weights of one type; I8G gets llama2.c's largest power-of-two group (<= 64) dividing cols.
void make_weights(Weights &w, kp_dtype dt, int64_t rows, int64_t cols)
{
    std::mt19937 rng(42);
    std::normal_distribution<float> nd(0.0f, 0.5f);
    const int64_t n = rows * cols;
    int group = 64;
    while (cols % group)
        group /= 2;
    switch (dt) {
    case KP_DTYPE_F32: {
        w.data.resize((size_t)n * 4);
        float *f = reinterpret_cast<float *>(w.data.data());
        for (int64_t i = 0; i < n; i++)
            f[i] = nd(rng);
        break;
    }
    case KP_DTYPE_F16:
    case KP_DTYPE_BF16: {
        w.data.resize((size_t)n * 2);
        uint16_t *h = reinterpret_cast<uint16_t *>(w.data.data());
        for (int64_t i = 0; i < n; i++) {
            float f = nd(rng);
            uint32_t u;
            std::memcpy(&u, &f, 4);
            h[i] = dt == KP_DTYPE_F16 ? kp_f32_to_f16(f) : (uint16_t)(u >> 16);
        }
        break;
    }
    default: { // I8G
        w.data.resize((size_t)n);
        w.scales.resize((size_t)(n / group));
        std::uniform_int_distribution<int> qd(-127, 127);
        for (int64_t i = 0; i < n; i++)
            w.data[(size_t)i] = (uint8_t)(int8_t)qd(rng);
        for (auto &s : w.scales)
            s = std::fabs(nd(rng)) / 127.0f;
        break;
    }
    }
    int64_t ne[2] = {cols, rows};
    kp_tensor_init(&w.t, "w", dt, 2, ne, w.data.data());
    w.t.scales = w.scales.empty() ? nullptr : w.scales.data();
    w.t.group = group;
}

struct IsaCap {
    kp_isa old;
    explicit IsaCap(kp_isa l) : old(kp_cpu_isa_cap(l)) {}
    ~IsaCap() { kp_cpu_isa_cap(old); }
};

void bm_matmul(benchmark::State &st, kp_dtype dt, kp_isa isa, int64_t rows, int64_t cols, int n,
               bool blas)
{
    Weights w;
    make_weights(w, dt, rows, cols);
    std::vector<float> x((size_t)(n * cols)), y((size_t)(n * rows));
    std::mt19937 rng(7);
    std::normal_distribution<float> nd;
    for (auto &v : x)
        v = nd(rng);
    IsaCap cap(isa);
    std::vector<uint8_t> work(g_be->ops->matmul_work_size(g_be, dt, cols, n) + 1);
    kp_cpu_backend_set_blas_min_tokens(g_be, blas ? 1 : 0);
    for (auto _ : st) {
        g_be->ops->matmul(g_be, y.data(), &w.t, x.data(), n, work.data());
        benchmark::DoNotOptimize(y.data());
        benchmark::ClobberMemory();
    }
    kp_cpu_backend_set_blas_min_tokens(g_be, -1);
    const double bytes = (double)w.data.size() + (double)w.scales.size() * 4;
    st.counters["GB/s"] = benchmark::Counter(bytes, benchmark::Counter::kIsIterationInvariantRate,
                                             benchmark::Counter::kIs1000);
    st.counters["GFLOP/s"] = benchmark::Counter(2.0 * (double)rows * (double)cols * n * 1e-9,
                                                benchmark::Counter::kIsIterationInvariantRate);
}

void bm_rmsnorm(benchmark::State &st, int dim, int n)
{
    std::vector<float> x((size_t)(n * dim), 0.5f), w((size_t)dim, 1.1f), out(x.size());
    for (auto _ : st) {
        g_be->ops->rmsnorm(g_be, out.data(), x.data(), w.data(), n, dim, 1e-5f);
        benchmark::DoNotOptimize(out.data());
    }
    st.counters["GB/s"] = benchmark::Counter((double)(2 * n + 1) * dim * 4,
                                             benchmark::Counter::kIsIterationInvariantRate,
                                             benchmark::Counter::kIs1000);
}

// `caches` KV caches are visited in turn, one call each per iteration: 1 measures a cache that
// stays in L1/L2; 240 (8 sessions x 30 layers) the cold reads of a batched decode step.
void bm_attention(benchmark::State &st, kp_isa isa, kp_kv_type kt, int n_head, int n_kv, int hd,
                  int pos0, int n_tok, int caches)
{
    const int span = pos0 + n_tok, kv_dim = n_kv * hd;
    const size_t es = kt == KP_KV_F16 ? 2 : 4;
    std::vector<float> q((size_t)n_tok * n_head * hd, 0.1f), out(q.size()),
        scratch((size_t)n_head * 8 * span), kvf((size_t)span * kv_dim);
    std::mt19937 rng(3);
    std::normal_distribution<float> nd;
    for (auto &v : kvf)
        v = nd(rng);
    const size_t cb = kvf.size() * es;
    std::vector<uint8_t> k(cb * caches), v(cb * caches);
    const kp_kv_shape shape = {kt, span, n_kv, hd};
    for (int c = 0; c < caches; c++) {
        g_be->ops->kv_store(g_be, k.data() + c * cb, &shape, kvf.data(), 0, span);
        g_be->ops->kv_store(g_be, v.data() + c * cb, &shape, kvf.data(), 0, span);
    }
    kp_attn_args a{};
    a.out = out.data();
    a.q = q.data();
    a.k_cache = k.data();
    a.v_cache = v.data();
    a.kv_type = kt;
    a.n_ctx = span;
    a.pos0 = pos0;
    a.n_tok = n_tok;
    a.n_head = n_head;
    a.n_head_kv = n_kv;
    a.head_dim = hd;
    a.scale = 1.0f / std::sqrt((float)hd);
    a.scratch = scratch.data();
    a.scratch_tokens = 8; // as a CPU session gives it
    IsaCap cap(isa);
    for (auto _ : st) {
        for (int c = 0; c < caches; c++) {
            a.k_cache = k.data() + c * cb;
            a.v_cache = v.data() + c * cb;
            g_be->ops->attention(g_be, &a);
        }
        benchmark::DoNotOptimize(out.data());
    }
    // each token reads the K and V rows of its kv head for positions 0..pos
    double kv_bytes = 0, flops = 0;
    for (int t = 0; t < n_tok; t++) {
        kv_bytes += 2.0 * (pos0 + t + 1) * kv_dim * es * caches;
        flops += 4.0 * (pos0 + t + 1) * hd * n_head * caches;
    }
    st.counters["GB/s"] = benchmark::Counter(kv_bytes, benchmark::Counter::kIsIterationInvariantRate,
                                             benchmark::Counter::kIs1000);
    st.counters["GFLOP/s"] =
        benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

// The levels with a distinct kernel for a type (others fall back to one of these).
std::vector<kp_isa> levels_for(kp_dtype dt)
{
    std::vector<kp_isa> out;
    const kp_cpu_wtype *prev = nullptr;
    for (int l = 0; l <= (int)kp_cpu_isa_detected(); l++) {
        const kp_cpu_wtype *w = kp_cpu_wtype_get_isa(dt, (kp_isa)l);
        if (w && w != prev)
            out.push_back((kp_isa)l);
        prev = w;
    }
    return out;
}

void register_all()
{
    struct Shape {
        int64_t rows, cols;
    };
    const Shape shapes[] = {{288, 288}, {768, 288}, {32000, 288}, {4096, 4096}};
    const kp_dtype types[] = {KP_DTYPE_F32, KP_DTYPE_F16, KP_DTYPE_BF16, KP_DTYPE_I8G};
    for (kp_dtype dt : types)
        for (kp_isa l : levels_for(dt))
            for (const Shape &s : shapes)
                for (int n : {1, 32}) {
                    std::string name = std::string("matmul/") + kp_dtype_name(dt) + "/" +
                                       kp_isa_name(l) + "/" + std::to_string(s.rows) + "x" +
                                       std::to_string(s.cols) + "/n" + std::to_string(n);
                    timed(benchmark::RegisterBenchmark(name.c_str(), bm_matmul, dt, l, s.rows, s.cols, n,
                                                 false));
                }
    // float prefill through OpenBLAS (forced; the backend's default uses it from 16 tokens)
    for (const Shape &s : shapes)
        for (int n : {2, 8, 16, 32}) {
            std::string name = "matmul/f32/openblas/" + std::to_string(s.rows) + "x" +
                               std::to_string(s.cols) + "/n" + std::to_string(n);
            timed(benchmark::RegisterBenchmark(name.c_str(), bm_matmul, KP_DTYPE_F32, kp_cpu_isa_detected(),
                                         s.rows, s.cols, n, true));
        }
    for (int l : {0, (int)kp_cpu_isa_detected()})
        for (int n : {2, 8, 16}) // the own-kernel side of the BLAS crossover
            for (const Shape &s : shapes) {
                std::string name = std::string("matmul/f32/") + kp_isa_name((kp_isa)l) + "/" +
                                   std::to_string(s.rows) + "x" + std::to_string(s.cols) + "/n" +
                                   std::to_string(n);
                timed(benchmark::RegisterBenchmark(name.c_str(), bm_matmul, KP_DTYPE_F32, (kp_isa)l,
                                             s.rows, s.cols, n, false));
            }
    for (int dim : {288, 4096})
        for (int n : {1, 32}) {
            std::string name = "rmsnorm/" + std::to_string(dim) + "/n" + std::to_string(n);
            timed(benchmark::RegisterBenchmark(name.c_str(), bm_rmsnorm, dim, n));
        }
    struct Att {
        int n_head, n_kv, hd, pos0, n_tok, caches = 1;
    };
    const Att atts[] = {{6, 6, 48, 255, 1}, {32, 8, 128, 511, 1}, {32, 8, 128, 2047, 1},
                        {32, 8, 128, 0, 32},
                        /* the 110M benchmark model: decode and the last prompt chunk at 2048 */
                        {12, 12, 64, 2047, 1}, {12, 12, 64, 1536, 512},
                        /* a decode step of the 110M model at 2048 (its 12 layers: 144 MiB of F32
                         * K and V from memory), and of 8 served sessions (30 layers each: 240
                         * cold caches), SmolLM2-135M and the 110M model */
                        {12, 12, 64, 2047, 1, 12},
                        {9, 3, 64, 69, 1, 240}, {9, 3, 64, 255, 1, 240}, {12, 12, 64, 255, 1, 96}};
    std::vector<kp_isa> vlev = {KP_ISA_SCALAR};
    if (kp_cpu_isa_detected() >= KP_ISA_AVX2)
        vlev.push_back(KP_ISA_AVX2);
    if (kp_cpu_isa_detected() >= KP_ISA_AVX512)
        vlev.push_back(KP_ISA_AVX512);
    for (kp_isa l : vlev)
        for (int kt = 0; kt < 2; kt++)
            for (const Att &a : atts) {
                std::string name = std::string("attention/") + kp_isa_name(l) + "/" +
                                   (kt ? "f16" : "f32") + "/h" + std::to_string(a.n_head) + "kv" +
                                   std::to_string(a.n_kv) + "d" + std::to_string(a.hd) + "/pos" +
                                   std::to_string(a.pos0) + "/n" + std::to_string(a.n_tok) +
                                   (a.caches > 1 ? "/caches" + std::to_string(a.caches) : "");
                timed(benchmark::RegisterBenchmark(name.c_str(), bm_attention, l, (kp_kv_type)kt,
                                             a.n_head, a.n_kv, a.hd, a.pos0, a.n_tok, a.caches));
            }
}

} // namespace

int main(int argc, char **argv)
{
    const char *t = std::getenv("KP_BENCH_THREADS");
    const char *ct = std::getenv("KP_BENCH_CPU_TIME");
    g_real_time = !(ct && *ct && *ct != '0');
    if (kp_backend_cpu_new(nullptr, t ? std::atoi(t) : 0, &g_be) != KP_OK)
        return 1;
    benchmark::AddCustomContext("kp_isa_detected", kp_isa_name(kp_cpu_isa_detected()));
    register_all();
    benchmark::Initialize(&argc, argv);
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    g_be->ops->destroy(g_be);
    return 0;
}
