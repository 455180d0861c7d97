// Y[t][r] = sum_c W[r][c] * X[t][c] for every weight type, activations in float.
// Decode (few tokens): one warp per weight row, each weight element read once and used for
// every token. Prefill: cuBLAS when it loaded (F32 as is; F16/BF16 with activations rounded
// to their type, as ggml does; quantized weights widened to F16 band by band; weights flagged
// f32_acts widened to F32 so the product stays float), else a shared-memory tiled kernel.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "deq.cuh"

#define GEMV_MAX_TOK 8 /* tokens per pass of the warp-per-row kernel */
#define GEMV_WARPS 8

// Element values of one 16-byte load: 8 halves or bfloat16s, or 4 floats.
template <int DT>
__device__ __forceinline__ void unpack16(const uint4 &raw, float *v)
{
    const unsigned u[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
    for (int i = 0; i < 4; i++) {
        if (DT == KP_DTYPE_F32) {
            v[i] = __uint_as_float(u[i]);
        } else if (DT == KP_DTYPE_BF16) {
            v[2 * i] = __uint_as_float(u[i] << 16);
            v[2 * i + 1] = __uint_as_float(u[i] & 0xffff0000u);
        } else {
            v[2 * i] = __half2float(__ushort_as_half((unsigned short)(u[i] & 0xffff)));
            v[2 * i + 1] = __half2float(__ushort_as_half((unsigned short)(u[i] >> 16)));
        }
    }
}

// vec: float weights whose rows (and x) allow 16-byte loads, so each lane reads 16 bytes of
// the row per step instead of one element.
template <int DT>
__global__ void gemv_kernel(float *y, kc_weight w, const float *x, int n, int vec)
{
    const int64_t r = (int64_t)blockIdx.x * GEMV_WARPS + threadIdx.x / 32;
    const int lane = threadIdx.x & 31;
    if (r >= w.rows)
        return;
    float acc[GEMV_MAX_TOK];
#pragma unroll
    for (int t = 0; t < GEMV_MAX_TOK; t++)
        acc[t] = 0.0f;
    constexpr bool plain = DT == KP_DTYPE_F32 || DT == KP_DTYPE_F16 || DT == KP_DTYPE_BF16;
    if (plain && vec) {
        constexpr int E = DT == KP_DTYPE_F32 ? 4 : 8;
        const uint8_t *row = w.data + (size_t)r * w.row_bytes;
        for (int64_t c0 = (int64_t)lane * E; c0 < w.cols; c0 += 32 * E) {
            const uint4 raw = *(const uint4 *)(row + c0 * (16 / E));
            float v[8];
            unpack16<DT>(raw, v);
#pragma unroll
            for (int t = 0; t < GEMV_MAX_TOK; t++)
                if (t < n) {
                    const float4 *xp = (const float4 *)(x + (int64_t)t * w.cols + c0);
#pragma unroll
                    for (int k = 0; k < E / 4; k++) {
                        const float4 xv = xp[k];
                        acc[t] += v[4 * k] * xv.x + v[4 * k + 1] * xv.y + v[4 * k + 2] * xv.z + v[4 * k + 3] * xv.w;
                    }
                }
        }
    } else {
        for (int64_t c = lane; c < w.cols; c += 32) {
            const float v = kc_deq<DT>(w, r, c);
#pragma unroll
            for (int t = 0; t < GEMV_MAX_TOK; t++)
                if (t < n)
                    acc[t] += v * x[(int64_t)t * w.cols + c];
        }
    }
#pragma unroll
    for (int t = 0; t < GEMV_MAX_TOK; t++) {
        float s = acc[t];
        for (int o = 16; o > 0; o >>= 1)
            s += __shfl_xor_sync(0xffffffffu, s, o);
        if (lane == 0 && t < n)
            y[(int64_t)t * w.rows + r] = s;
    }
}

// 64 weight rows x 64 tokens per block, 256 threads of 4x4 outputs, K in steps of 32.
#define TM 64
#define TN 64
#define TK 32
template <int DT>
__global__ void __launch_bounds__(256) gemm_kernel(float *y, kc_weight w, const float *x, int n)
{
    __shared__ float ws[TK][TM + 1], xs[TK][TN + 1];
    const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
    const int64_t r0 = (int64_t)blockIdx.x * TM;
    const int t0 = blockIdx.y * TN;
    float acc[4][4] = {};
    for (int64_t k0 = 0; k0 < w.cols; k0 += TK) {
        for (int i = tid; i < TM * TK; i += 256) {
            const int rr = i / TK, kk = i % TK;
            const int64_t r = r0 + rr, c = k0 + kk;
            ws[kk][rr] = r < w.rows && c < w.cols ? kc_deq<DT>(w, r, c) : 0.0f;
            const int t = t0 + rr;
            xs[kk][rr] = t < n && c < w.cols ? x[(int64_t)t * w.cols + c] : 0.0f;
        }
        __syncthreads();
#pragma unroll 8
        for (int kk = 0; kk < TK; kk++) {
            float a[4], b[4];
#pragma unroll
            for (int i = 0; i < 4; i++) {
                a[i] = ws[kk][ty * 4 + i];
                b[i] = xs[kk][tx * 4 + i];
            }
#pragma unroll
            for (int i = 0; i < 4; i++)
#pragma unroll
                for (int j = 0; j < 4; j++)
                    acc[i][j] += a[i] * b[j];
        }
        __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) {
            const int64_t r = r0 + ty * 4 + i;
            const int t = t0 + tx * 4 + j;
            if (r < w.rows && t < n)
                y[(int64_t)t * w.rows + r] = acc[i][j];
        }
}

// Rows [r0, r0+nr) of w widened to F32 (f32 set), else F16 (BF16 for BF16 weights), row-major.
template <int DT>
__global__ void widen_kernel(void *dst, kc_weight w, int64_t r0, int64_t nr, int f32)
{
    const int64_t total = nr * w.cols;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t r = r0 + i / w.cols, c = i % w.cols;
        const float v = kc_deq<DT>(w, r, c);
        if (f32)
            ((float *)dst)[i] = v;
        else if (DT == KP_DTYPE_BF16)
            ((__nv_bfloat16 *)dst)[i] = __float2bfloat16_rn(v);
        else
            ((__half *)dst)[i] = __float2half_rn(v);
    }
}

__global__ void to_half_kernel(void *dst, const float *x, int64_t len, int bf16)
{
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < len; i += (int64_t)gridDim.x * blockDim.x) {
        if (bf16)
            ((__nv_bfloat16 *)dst)[i] = __float2bfloat16_rn(x[i]);
        else
            ((__half *)dst)[i] = __float2half_rn(x[i]);
    }
}

__global__ void scatter_rows_kernel(float *y, const float *part, int n, int64_t rows, int64_t r0, int64_t nr)
{
    const int64_t total = (int64_t)n * nr;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t t = i / nr, r = i % nr;
        y[t * rows + r0 + r] = part[i];
    }
}

size_t kc_matmul_work_size(kp_backend *be, kp_dtype t, int64_t cols, int n)
{
    (void)be; (void)t; (void)cols; (void)n;
    return 0; // the backend keeps its own scratch
}

// Prefill through cuBLAS. Returns 1 when done, 0 to fall back to the tiled kernel.
static int blas_matmul(kc_backend *b, float *y, const kp_tensor *t, const kc_weight &w, const float *x, int n)
{
    if (!b->blas)
        return 0;
    if (t->dtype == KP_DTYPE_F32)
        return kc_blas_gemm(b, y, w.data, x, 0, w.rows, w.cols, n) > 0;
    const int bf16 = t->dtype == KP_DTYPE_BF16;
    size_t xbytes = (size_t)n * (size_t)w.cols * 2;
    if ((t->dtype == KP_DTYPE_F16 || bf16) && !t->f32_acts) {
        void *xh = kc_scratch(b, xbytes);
        if (!xh)
            return -1;
        to_half_kernel<<<kc_blocks((size_t)n * w.cols, 256) < 4096 ? kc_blocks((size_t)n * w.cols, 256) : 4096, 256, 0,
                         b->stream>>>(xh, x, (int64_t)n * w.cols, bf16);
        if (kc_launched(b, "to_half_kernel"))
            return -1;
        return kc_blas_gemm(b, y, w.data, xh, bf16 ? 2 : 1, w.rows, w.cols, n) > 0;
    }
    // Quantized, or weights whose reference keeps float activations (f32_acts: Hugging Face,
    // KuiperLLama): widen a band of rows at a time (at most 64 MiB, F16, or F32 for f32_acts so
    // the product stays in float), multiply, scatter.
    const int wide = t->f32_acts ? 1 : 0, es = wide ? 4 : 2;
    if (wide)
        xbytes = 0; // x is used as it is
    int64_t band = ((int64_t)64 << 20) / (w.cols * es);
    band = band < 256 ? 256 : band / 256 * 256;
    if (band > w.rows)
        band = w.rows;
    const size_t wbytes = (size_t)band * w.cols * es, pbytes = (size_t)band * n * 4;
    char *s = (char *)kc_scratch(b, xbytes + wbytes + pbytes + 512);
    if (!s)
        return -1;
    const void *xh = wide ? (const void *)x : (const void *)s;
    void *wh = s + ((xbytes + 255) / 256 * 256);
    float *part = (float *)((char *)wh + ((wbytes + 255) / 256 * 256));
    if (!wide) {
        to_half_kernel<<<4096, 256, 0, b->stream>>>(s, x, (int64_t)n * w.cols, 0);
        if (kc_launched(b, "to_half_kernel"))
            return -1;
    }
    for (int64_t r0 = 0; r0 < w.rows; r0 += band) {
        const int64_t nr = w.rows - r0 < band ? w.rows - r0 : band;
        KC_DISPATCH(w.dtype, return -1, widen_kernel<DT><<<b->sms * 8, 256, 0, b->stream>>>(wh, w, r0, nr, wide));
        if (kc_launched(b, "widen_kernel"))
            return -1;
        const bool whole = nr == w.rows;
        int rc = kc_blas_gemm(b, whole ? y : part, wh, xh, wide ? 0 : 1, nr, w.cols, n);
        if (rc <= 0)
            return rc;
        if (!whole) {
            scatter_rows_kernel<<<b->sms * 8, 256, 0, b->stream>>>(y, part, n, w.rows, r0, nr);
            if (kc_launched(b, "scatter_rows_kernel"))
                return -1;
        }
    }
    return 1;
}

void kc_matmul(kp_backend *be, float *y, const kp_tensor *t, const float *x, int n, void *work)
{
    (void)work;
    kc_backend *b = kc(be);
    if (n <= 0)
        return;
    std::lock_guard<std::mutex> g(b->mu);
    const kc_weight w = kc_weight_of(t);
    if (n > GEMV_MAX_TOK) {
        int rc = blas_matmul(b, y, t, w, x, n);
        if (rc)
            return; // done, or failed with the error recorded
        dim3 grid(kc_blocks((size_t)w.rows, TM), kc_blocks((size_t)n, TN));
        KC_DISPATCH(w.dtype, kc_fail(b, KP_ERR_UNSUPPORTED, "matmul: weight type %d has no CUDA kernel", w.dtype),
                    gemm_kernel<DT><<<grid, 256, 0, b->stream>>>(y, w, x, n));
        kc_launched(b, "gemm_kernel");
        return;
    }
    const int per16 = w.dtype == KP_DTYPE_F32 ? 4 : 8;
    const int vec = (w.dtype == KP_DTYPE_F32 || w.dtype == KP_DTYPE_F16 || w.dtype == KP_DTYPE_BF16) &&
                    w.cols % per16 == 0 && ((uintptr_t)w.data & 15) == 0 && ((uintptr_t)x & 15) == 0;
    KC_DISPATCH(w.dtype, kc_fail(b, KP_ERR_UNSUPPORTED, "matmul: weight type %d has no CUDA kernel", w.dtype),
                gemv_kernel<DT><<<kc_blocks((size_t)w.rows, GEMV_WARPS), GEMV_WARPS * 32, 0, b->stream>>>(y, w, x, n, vec));
    kc_launched(b, "gemv_kernel");
}
