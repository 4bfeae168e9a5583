/* januspro few-row CPU products: y[m][n] = sum_k x[m][k] * w[n][k] (+ bias[n]) for m < M <= 4.

   A decode step multiplies every weight by one to four rows (two with classifier-free guidance), so the
   product is bound by reading the weight once. This kernel streams R (8) weight rows at a time, each loaded
   vector meeting every input row while it is in registers, and splits the output rows over the threads.
   The weight and the input are both fp32 or both bf16; bias and output are fp32, and the sums are fp32. On
   CPUs with AVX512-BF16 a bf16 product multiplies bf16 pairs directly (vdpbf16ps); elsewhere bf16 is widened
   to fp32 in registers. januspro.models.gemv builds it on first use with the machine's C compiler (-O3 -march=native)
   and calls jp_gemv through ctypes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__AVX512BF16__)
#include <immintrin.h>
#endif

#if defined(__AVX512F__)
#define VL 16 /* floats per vector: one zmm register */
#else
#define VL 8 /* one ymm (AVX2) or two xmm registers */
#endif
#define MAX_M 4
#define R 8 /* weight rows streamed together (8 beat 2, 4 and 16 at 1-4 rows on an AVX-512 EPYC) */

typedef float vf __attribute__((vector_size(VL * 4)));
typedef uint16_t vh __attribute__((vector_size(VL * 2)));
typedef uint32_t vu __attribute__((vector_size(VL * 4)));

static inline vf load_f32(const float *p) {
    vf v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline vf load_bf16(const uint16_t *p) {
    vh h;
    memcpy(&h, p, sizeof h);
    vu u = __builtin_convertvector(h, vu) << 16; /* bf16 is the top half of an fp32 */
    vf v;
    memcpy(&v, &u, sizeof v);
    return v;
}

static inline float scalar_bf16(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline __attribute__((always_inline)) vf wvec(const void *w, long i, int bf16) {
    return bf16 ? load_bf16((const uint16_t *)w + i) : load_f32((const float *)w + i);
}

static inline __attribute__((always_inline)) float wone(const void *w, long i, int bf16) {
    return bf16 ? scalar_bf16(((const uint16_t *)w)[i]) : ((const float *)w)[i];
}

/* rows n0 .. n0 + rows - 1 of the output, for every input row; M, rows and bf16 are constants where this is
   inlined, so each case compiles to its own register-resident loop */
static inline __attribute__((always_inline)) void block(const void *w, int bf16, const float *x, float *y,
                                                        const float *bias, long N, long K, long n0,
                                                        const int M, const int rows) {
    vf acc[R][MAX_M];
    for (int r = 0; r < rows; r++)
        for (int m = 0; m < M; m++) acc[r][m] = (vf){0};
    const long kv = K - K % VL;
    for (long k = 0; k < kv; k += VL) {
        vf xv[MAX_M];
        for (int m = 0; m < M; m++) xv[m] = load_f32(x + m * K + k);
        for (int r = 0; r < rows; r++) {
            vf wv = wvec(w, (n0 + r) * K + k, bf16);
            for (int m = 0; m < M; m++) acc[r][m] += wv * xv[m];
        }
    }
    for (int r = 0; r < rows; r++) {
        for (int m = 0; m < M; m++) {
            float s = 0.0f;
            for (int i = 0; i < VL; i++) s += acc[r][m][i];
            for (long k = kv; k < K; k++) s += wone(w, (n0 + r) * K + k, bf16) * x[m * K + k];
            y[m * N + n0 + r] = bias ? s + bias[n0 + r] : s;
        }
    }
}

#if defined(__AVX512BF16__)
/* the same with a bf16 input on AVX512-BF16: each instruction multiplies 16 pairs of bf16 weights and inputs
   and adds both products to an fp32 lane */
static inline __attribute__((always_inline)) void block_dp(const uint16_t *w, const uint16_t *x, float *y,
                                                           const float *bias, long N, long K, long n0,
                                                           const int M, const int rows) {
    __m512 acc[R][MAX_M];
    for (int r = 0; r < rows; r++)
        for (int m = 0; m < M; m++) acc[r][m] = _mm512_setzero_ps();
    const long kv = K - K % 32;
    for (long k = 0; k < kv; k += 32) {
        __m512bh xv[MAX_M];
        for (int m = 0; m < M; m++) xv[m] = (__m512bh)_mm512_loadu_si512(x + m * K + k);
        for (int r = 0; r < rows; r++) {
            __m512bh wv = (__m512bh)_mm512_loadu_si512(w + (n0 + r) * K + k);
            for (int m = 0; m < M; m++) acc[r][m] = _mm512_dpbf16_ps(acc[r][m], wv, xv[m]);
        }
    }
    for (int r = 0; r < rows; r++) {
        for (int m = 0; m < M; m++) {
            float s = _mm512_reduce_add_ps(acc[r][m]);
            for (long k = kv; k < K; k++) s += scalar_bf16(w[(n0 + r) * K + k]) * scalar_bf16(x[m * K + k]);
            y[m * N + n0 + r] = bias ? s + bias[n0 + r] : s;
        }
    }
}

#define DP_CASES(ROWS)                                                         \
    switch (M) {                                                               \
    case 1: block_dp(w, x, y, bias, N, K, n0, 1, ROWS); break;                 \
    case 2: block_dp(w, x, y, bias, N, K, n0, 2, ROWS); break;                 \
    case 3: block_dp(w, x, y, bias, N, K, n0, 3, ROWS); break;                 \
    default: block_dp(w, x, y, bias, N, K, n0, 4, ROWS); break;                \
    }

static void rows_dp(const uint16_t *w, const uint16_t *x, float *y, const float *bias, long M, long N, long K,
                    long n0, int full) {
    if (full) { DP_CASES(R) } else { DP_CASES(1) }
}
#endif

#define CASES(BF16, ROWS)                                                      \
    switch (M) {                                                               \
    case 1: block(w, BF16, x, y, bias, N, K, n0, 1, ROWS); break;              \
    case 2: block(w, BF16, x, y, bias, N, K, n0, 2, ROWS); break;              \
    case 3: block(w, BF16, x, y, bias, N, K, n0, 3, ROWS); break;              \
    default: block(w, BF16, x, y, bias, N, K, n0, 4, ROWS); break;             \
    }

static void rows_at(const void *w, int bf16, const float *x, float *y, const float *bias, long M, long N,
                    long K, long n0, int full) {
    if (bf16) {
        if (full) { CASES(1, R) } else { CASES(1, 1) }
    } else {
        if (full) { CASES(0, R) } else { CASES(0, 1) }
    }
}

int jp_gemv_max_rows(void) { return MAX_M; }

int jp_gemv_vector_floats(void) { return VL; }

/* 1 where bf16 products multiply bf16 pairs directly (AVX512-BF16), else 0 */
int jp_gemv_bf16_pairs(void) {
#if defined(__AVX512BF16__)
    return 1;
#else
    return 0;
#endif
}

/* w: [N][K], x: [M][K], both fp32 (bf16 = 0) or both bf16 (bf16 = 1); y: [M][N] fp32; bias: [N] fp32 or NULL;
   all contiguous. Returns 0, -1 when M is out of range, -2 when out of memory (nothing written then). */
int jp_gemv(const void *w, int bf16, const void *x, float *y, const float *bias, long M, long N, long K,
            int threads) {
    if (M < 1 || M > MAX_M) return -1;
    const long blocks = N / R, tasks = blocks + N % R;
    if (threads < 1) threads = 1;
#if defined(__AVX512BF16__)
    if (bf16) {
#pragma omp parallel for num_threads(threads) schedule(static)
        for (long t = 0; t < tasks; t++) {
            const int full = t < blocks;
            rows_dp((const uint16_t *)w, (const uint16_t *)x, y, bias, M, N, K,
                    full ? t * R : blocks * R + (t - blocks), full);
        }
        return 0;
    }
#endif
    const float *xf = (const float *)x;
    float *widened = NULL;
    if (bf16) { /* the input widened to fp32 once; the weight is widened in registers */
        widened = (float *)malloc((size_t)(M * K) * sizeof(float));
        if (!widened) return -2;
        for (long i = 0; i < M * K; i++) widened[i] = scalar_bf16(((const uint16_t *)x)[i]);
        xf = widened;
    }
#pragma omp parallel for num_threads(threads) schedule(static)
    for (long t = 0; t < tasks; t++) {
        const int full = t < blocks;
        rows_at(w, bf16, xf, y, bias, M, N, K, full ? t * R : blocks * R + (t - blocks), full);
    }
    free(widened);
    return 0;
}
