// AVX2+FMA inner loops of the PLS-VIP passes for float32 X (pls_cpu.cpp), where they pay.
//
// The generic loops in pls_cpu.cpp are left to the compiler's vectoriser, which widens float32 to
// float64 by loading 8 floats and extracting the upper half before two conversions. Converting 4
// floats straight from memory (vcvtps2pd ymm, m128) does a third less work per element; on the
// reference machine (AMD EPYC, Zen 3) a projection pass of 50,000 x 2,048 float32 took 0.9-1.0x a
// plain read of X against 1.3-1.5x for the generic loop (benchmarks/RESULTS.md). The arithmetic is
// the generic loops', in float64, with a different but fixed order of the additions (so results
// still do not depend on the thread count). Compiled only when the build targets AVX2 and FMA
// (SWNAS_NATIVE on such a machine); elsewhere the generic loops run.
#pragma once
#if defined(__AVX2__) && defined(__FMA__)
#define SWNAS_PLS_AVX2 1
#include <immintrin.h>

#include <cstdint>

namespace swnas {
namespace cpu {
namespace avx2 {

inline __m256d widen(const float* x) {
  return _mm256_cvtps_pd(_mm_loadu_ps(x));
}

inline double hsum(__m256d a) {
  __m128d s = _mm_add_pd(_mm256_castpd256_pd128(a), _mm256_extractf128_pd(a, 1));
  return _mm_cvtsd_f64(s) + _mm_cvtsd_f64(_mm_unpackhi_pd(s, s));
}

// Rows x[0..3] (float32, p columns): the 4 dot products with v (float64), each in 8 float64 lanes.
inline void dot4(const float* const* x, const double* v, int64_t p, double* out) {
  __m256d a0 = _mm256_setzero_pd(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
  int64_t j = 0;
  for (; j + 8 <= p; j += 8) {
    const __m256d va = _mm256_loadu_pd(v + j), vb = _mm256_loadu_pd(v + j + 4);
    a0 = _mm256_fmadd_pd(widen(x[0] + j), va, a0);
    a1 = _mm256_fmadd_pd(widen(x[1] + j), va, a1);
    a2 = _mm256_fmadd_pd(widen(x[2] + j), va, a2);
    a3 = _mm256_fmadd_pd(widen(x[3] + j), va, a3);
    b0 = _mm256_fmadd_pd(widen(x[0] + j + 4), vb, b0);
    b1 = _mm256_fmadd_pd(widen(x[1] + j + 4), vb, b1);
    b2 = _mm256_fmadd_pd(widen(x[2] + j + 4), vb, b2);
    b3 = _mm256_fmadd_pd(widen(x[3] + j + 4), vb, b3);
  }
  double s[4] = {hsum(_mm256_add_pd(a0, b0)), hsum(_mm256_add_pd(a1, b1)), hsum(_mm256_add_pd(a2, b2)),
                 hsum(_mm256_add_pd(a3, b3))};
  for (; j < p; ++j)
    for (int k = 0; k < 4; ++k) s[k] += static_cast<double>(x[k][j]) * v[j];
  for (int k = 0; k < 4; ++k) out[k] = s[k];
}

// g += t[0] x[0] + t[1] x[1] + t[2] x[2] + t[3] x[3] (float32 rows, float64 g and t).
inline void axpy4(const float* const* x, const double* t, int64_t p, double* g) {
  const __m256d t0 = _mm256_set1_pd(t[0]), t1 = _mm256_set1_pd(t[1]), t2 = _mm256_set1_pd(t[2]),
                t3 = _mm256_set1_pd(t[3]);
  int64_t j = 0;
  for (; j + 4 <= p; j += 4) {
    const __m256d s01 = _mm256_fmadd_pd(t1, widen(x[1] + j), _mm256_mul_pd(t0, widen(x[0] + j)));
    const __m256d s23 = _mm256_fmadd_pd(t3, widen(x[3] + j), _mm256_mul_pd(t2, widen(x[2] + j)));
    _mm256_storeu_pd(g + j, _mm256_add_pd(_mm256_loadu_pd(g + j), _mm256_add_pd(s01, s23)));
  }
  for (; j < p; ++j)
    g[j] += (t[0] * static_cast<double>(x[0][j]) + t[1] * static_cast<double>(x[1][j])) +
            (t[2] * static_cast<double>(x[2][j]) + t[3] * static_cast<double>(x[3][j]));
}

// t_k = x_k . v - c for the 4 rows, and their sums into tsum, tt.
inline void finish_t(double* t, double c, double& tsum, double& tt) {
  for (int k = 0; k < 4; ++k) t[k] -= c;
  tsum += (t[0] + t[1]) + (t[2] + t[3]);
  tt += (t[0] * t[0] + t[1] * t[1]) + (t[2] * t[2] + t[3] * t[3]);
}

// One sweep that does block b's update g += sum_k t_k x_k (rows still in cache from the previous
// sweep) and block b+1's dot products y_k . v (rows arriving from memory): memory stays busy
// while the update computes, where a separate update sweep would leave it idle.
inline void axpy4_dot4(const float* const* x, const double* t, const float* const* y, const double* v, int64_t p,
                       double* g, double* dots) {
  const __m256d t0 = _mm256_set1_pd(t[0]), t1 = _mm256_set1_pd(t[1]), t2 = _mm256_set1_pd(t[2]),
                t3 = _mm256_set1_pd(t[3]);
  __m256d a0 = _mm256_setzero_pd(), a1 = a0, a2 = a0, a3 = a0;
  int64_t j = 0;
  for (; j + 4 <= p; j += 4) {
    const __m256d vv = _mm256_loadu_pd(v + j);
    a0 = _mm256_fmadd_pd(widen(y[0] + j), vv, a0);
    a1 = _mm256_fmadd_pd(widen(y[1] + j), vv, a1);
    a2 = _mm256_fmadd_pd(widen(y[2] + j), vv, a2);
    a3 = _mm256_fmadd_pd(widen(y[3] + j), vv, a3);
    const __m256d s01 = _mm256_fmadd_pd(t1, widen(x[1] + j), _mm256_mul_pd(t0, widen(x[0] + j)));
    const __m256d s23 = _mm256_fmadd_pd(t3, widen(x[3] + j), _mm256_mul_pd(t2, widen(x[2] + j)));
    _mm256_storeu_pd(g + j, _mm256_add_pd(_mm256_loadu_pd(g + j), _mm256_add_pd(s01, s23)));
  }
  double s[4] = {hsum(a0), hsum(a1), hsum(a2), hsum(a3)};
  for (; j < p; ++j) {
    for (int k = 0; k < 4; ++k) s[k] += static_cast<double>(y[k][j]) * v[j];
    g[j] += (t[0] * static_cast<double>(x[0][j]) + t[1] * static_cast<double>(x[1][j])) +
            (t[2] * static_cast<double>(x[2][j]) + t[3] * static_cast<double>(x[3][j]));
  }
  for (int k = 0; k < 4; ++k) dots[k] = s[k];
}

// The projection pass over rows r0 .. r0 + 4 * floor((r1 - r0) / 4) in blocks of 4, software
// pipelined (axpy4_dot4); returns how many rows it did (the caller does the last 0-3).
// On the reference machine this took a pass from 1.33-1.47x to 1.23-1.38x a plain read.
inline int64_t project_blocks(const float* X, int64_t p, const double* v, double c, int64_t r0, int64_t r1, double* g,
                              double& tsum, double& tt) {
  const int64_t nb = (r1 - r0) / 4;
  if (nb == 0) return 0;
  auto rows = [&](int64_t b, const float** x) {
    const float* base = X + (r0 + 4 * b) * p;
    for (int k = 0; k < 4; ++k) x[k] = base + k * p;
  };
  const float* x[4];
  const float* y[4];
  double t[4], next[4];
  rows(0, x);
  dot4(x, v, p, t);
  for (int64_t b = 0; b < nb; ++b) {
    finish_t(t, c, tsum, tt);
    rows(b, x);
    if (b + 1 < nb) {
      rows(b + 1, y);
      axpy4_dot4(x, t, y, v, p, g, next);
      for (int k = 0; k < 4; ++k) t[k] = next[k];
    } else {
      axpy4(x, t, p, g);
    }
  }
  return 4 * nb;
}

// Statistics of K rows of one class (K = 4 or 8): pc += sum_k (x_k - x0), s2 += sum_k (x_k - x0)^2.
// The class and square accumulators are loaded and stored once per K rows; with K = 8, eight rows
// stream from memory at once (the statistics pass was 12-13% faster than with K = 4 alone).
// `next` (optional, K rows): the rows of the following block, fetched one cache line per row every
// 16 columns, so that rows in an order the hardware cannot predict (the class-major pass) arrive
// while this block computes.
template <int K>
inline void stats_block(const float* const* x, const double* x0, int64_t p, double* pc, double* s2,
                        const float* const* next = nullptr) {
  static_assert(K == 4 || K == 8, "blocks of 4 or 8 rows");
  int64_t j = 0;
  for (; j + 4 <= p; j += 4) {
    if (next != nullptr && (j & 15) == 0)
      for (int k = 0; k < K; ++k) _mm_prefetch(reinterpret_cast<const char*>(next[k] + j), _MM_HINT_T1);
    const __m256d z = _mm256_loadu_pd(x0 + j);
    __m256d d[K];
    for (int k = 0; k < K; ++k) d[k] = _mm256_sub_pd(widen(x[k] + j), z);
    // squares in two FMA chains (even and odd rows): fewer live registers than K squares summed
    // pairwise, and about 5% faster for K = 8 in a standalone benchmark of this loop
    __m256d qa = _mm256_mul_pd(d[0], d[0]), qb = _mm256_mul_pd(d[1], d[1]);
    for (int k = 2; k < K; k += 2) {
      qa = _mm256_fmadd_pd(d[k], d[k], qa);
      qb = _mm256_fmadd_pd(d[k + 1], d[k + 1], qb);
    }
    for (int w = K / 2; w >= 1; w /= 2)  // pairwise sums, a fixed order
      for (int k = 0; k < w; ++k) d[k] = _mm256_add_pd(d[k], d[k + w]);
    _mm256_storeu_pd(pc + j, _mm256_add_pd(_mm256_loadu_pd(pc + j), d[0]));
    _mm256_storeu_pd(s2 + j, _mm256_add_pd(_mm256_loadu_pd(s2 + j), _mm256_add_pd(qa, qb)));
  }
  for (; j < p; ++j) {
    double sum = 0.0, sq = 0.0;
    for (int k = 0; k < K; ++k) {
      const double dd = static_cast<double>(x[k][j]) - x0[j];
      sum += dd;
      sq += dd * dd;
    }
    pc[j] += sum;
    s2[j] += sq;
  }
}

}  // namespace avx2
}  // namespace cpu
}  // namespace swnas
#endif
