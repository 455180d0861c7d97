// Tokenizer throughput and load time (Google Benchmark), public API only.
//
//   bench-tokenizer [--benchmark_filter=...]
//
// Data: $KP_TEST_DATA (default ../shared beside the source tree): tokenizers/<vocab>/tokenizer.json
// and tokenizers/bench_1mb.txt. Encode runs on one thread; bytes/s is reported as MB/s by
// Google Benchmark ("bytes_per_second"). compare-tokenizers.py runs Hugging Face tokenizers on the
// same input in the same session and prints the ratio.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <kuiper/kuiper.h>

#ifndef KP_DEFAULT_TEST_DATA
#define KP_DEFAULT_TEST_DATA "../shared"
#endif

static std::string data_dir()
{
    const char *d = std::getenv("KP_TEST_DATA");
    return (d && *d) ? d : KP_DEFAULT_TEST_DATA;
}

static bool slurp(const std::string &path, std::string &out)
{
    FILE *f = std::fopen(path.c_str(), "rb");
    if (!f)
        return false;
    char buf[1 << 16];
    size_t n;
    out.clear();
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0)
        out.append(buf, n);
    std::fclose(f);
    return true;
}

static void BM_Load(benchmark::State &state, const char *vocab)
{
    std::string path = data_dir() + "/tokenizers/" + vocab + "/tokenizer.json";
    for (auto _ : state) {
        kp_tokenizer *t = nullptr;
        if (kp_tokenizer_load(path.c_str(), nullptr, &t) != KP_OK) {
            state.SkipWithError(kp_last_error());
            return;
        }
        kp_tokenizer_free(t);
    }
}

static void BM_Encode(benchmark::State &state, const char *vocab)
{
    std::string path = data_dir() + "/tokenizers/" + vocab + "/tokenizer.json";
    std::string text;
    if (!slurp(data_dir() + "/tokenizers/bench_1mb.txt", text)) {
        state.SkipWithError("bench_1mb.txt not found (set KP_TEST_DATA)");
        return;
    }
    kp_tokenizer *t = nullptr;
    if (kp_tokenizer_load(path.c_str(), nullptr, &t) != KP_OK) {
        state.SkipWithError(kp_last_error());
        return;
    }
    std::vector<int32_t> ids(text.size() + 16);
    size_t n = 0;
    for (auto _ : state) {
        if (kp_tokenize(t, text.data(), text.size(), KP_TOKENIZE_PARSE_SPECIAL, ids.data(), ids.size(), &n) !=
            KP_OK) {
            state.SkipWithError(kp_last_error());
            break;
        }
        benchmark::DoNotOptimize(ids.data());
    }
    state.SetBytesProcessed((int64_t)state.iterations() * (int64_t)text.size());
    state.counters["tokens"] = (double)n;
    kp_tokenizer_free(t);
}

BENCHMARK_CAPTURE(BM_Encode, llama3, "llama3")->Unit(benchmark::kMillisecond)->MinTime(2.0);
BENCHMARK_CAPTURE(BM_Encode, qwen3, "qwen3")->Unit(benchmark::kMillisecond)->MinTime(2.0);
BENCHMARK_CAPTURE(BM_Encode, llama2_sp, "llama2-sp")->Unit(benchmark::kMillisecond)->MinTime(2.0);
BENCHMARK_CAPTURE(BM_Load, llama3, "llama3")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Load, llama3_1, "llama3_1")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Load, qwen3, "qwen3")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Load, llama2_sp, "llama2-sp")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Load, tok512_sp, "tok512-sp")->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
