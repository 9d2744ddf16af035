// CPU passes over X for PLS-VIP (one statistics pass, one fused X v / X't pass per component), OpenMP.
//
// The small-matrix algebra of improved kernel PLS runs in Python (swnas/scoring/_pls_algebra.py; the
// mathematics is in docs/scorers.md, section 1); only the passes over the N x p matrix X are here.
// X (float32 or float64, C-contiguous) is read in place, never copied; every sum is accumulated in
// float64. Extra memory: O(threads * p * C + N) at most.
#include "cpu/pls_cpu.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "common/pls_math.h"
#include "cpu/pls_avx2.h"

namespace swnas {
namespace cpu {
namespace {

// ---------------------------------------------------------------------------------------------
// Statistics pass: per-class shifted sums, shifted sums of squares, class counts.

struct StatsAcc {
  std::vector<double> cls;     // C x p: sum over rows of class c of (x - x0)
  std::vector<double> s2;      // p: sum of (x - x0)^2
  std::vector<double> counts;  // C
  double absmax = 0.0;         // max |x| (float64 X only; float32 squares always fit a float64)
  StatsAcc(int64_t p, int64_t C) : cls(static_cast<size_t>(p * C), 0.0), s2(p, 0.0), counts(C, 0.0) {}
};

// One row's contribution: d = (x - x0) * scale (scale a power of two, exact; 1 unless the Python side
// found float64 data whose squares would overflow or underflow, docs/scorers.md section 2).
template <class T, bool Scaled>
inline double shifted(T x, double x0, double scale) {
  const double d = static_cast<double>(x) - x0;
  return Scaled ? d * scale : d;
}

// Adds K rows of one class (row pointers xs) into that class's sums `pc` and into s2: one load and
// store of each accumulator per K rows.
template <class T, bool Scaled, int K>
inline double stats_block(const T* const* xs, int64_t p, const double* __restrict x0, double scale,
                          double* __restrict pc, double* __restrict s2, double amax) {
  constexpr bool kMax = std::is_same<T, double>::value;
#pragma omp simd reduction(max : amax)
  for (int64_t j = 0; j < p; ++j) {
    double sum = 0.0, sq = 0.0;
    for (int k = 0; k < K; ++k) {
      const double d = shifted<T, Scaled>(xs[k][j], x0[j], scale);
      sum += d;
      sq += d * d;
      if (kMax) amax = std::max(amax, std::fabs(static_cast<double>(xs[k][j])));
    }
    pc[j] += sum;
    s2[j] += sq;
  }
  return amax;
}

// Adds the rows order[q..qe) (all of one class) into that class's sums `pc` and into s2, 8 or 4 at a
// time, then one by one; returns the running max |x| (float64 X only).
template <class T, bool Scaled, bool Prefetch = false, class Index>
inline double add_class_rows(const T* __restrict X, int64_t p, const Index* __restrict order, int64_t q,
                             const int64_t qe, const double* __restrict x0, double scale, double* __restrict pc,
                             double* __restrict s2, double amax) {
#ifdef SWNAS_PLS_AVX2
  if constexpr (std::is_same<T, float>::value && !Scaled) {
    for (; q + 8 <= qe; q += 8) {
      const float* xs[8];
      for (int k = 0; k < 8; ++k) xs[k] = X + static_cast<int64_t>(order[q + k]) * p;
      if (Prefetch && q + 16 <= qe) {
        const float* ns[8];
        for (int k = 0; k < 8; ++k) ns[k] = X + static_cast<int64_t>(order[q + 8 + k]) * p;
        avx2::stats_block<8>(xs, x0, p, pc, s2, ns);
      } else {
        avx2::stats_block<8>(xs, x0, p, pc, s2);
      }
    }
  }
#endif
  for (; q + 4 <= qe; q += 4) {
    const T* xs[4];
    for (int k = 0; k < 4; ++k) xs[k] = X + static_cast<int64_t>(order[q + k]) * p;
#ifdef SWNAS_PLS_AVX2
    if constexpr (std::is_same<T, float>::value && !Scaled) {
      avx2::stats_block<4>(xs, x0, p, pc, s2);
      continue;
    }
#endif
    amax = stats_block<T, Scaled, 4>(xs, p, x0, scale, pc, s2, amax);
  }
  for (; q < qe; ++q) {
    const T* xs[1] = {X + static_cast<int64_t>(order[q]) * p};
    amax = stats_block<T, Scaled, 1>(xs, p, x0, scale, pc, s2, amax);
  }
  return amax;
}

// Rows r0..r1 in chunks of kChunk rows: each chunk's rows are ordered by class (a stable counting
// sort of their indices) and added 8 or 4 at a time, so the per-class float64 accumulators are
// loaded and stored once per block of rows instead of once or twice per 2 rows. The order depends
// on the rows alone (not on threads). Used when the C x p accumulators are small enough to stay
// in cache (few classes); many classes take the class-major pass (stats_class_major).
template <class T, bool Scaled>
void stats_rows(const T* __restrict X, int64_t p, const int32_t* __restrict codes, int64_t r0, int64_t r1,
                const double* __restrict x0, double scale, StatsAcc& acc) {
  constexpr int64_t kChunk = 256;
  const int64_t C = static_cast<int64_t>(acc.counts.size());
  double* __restrict s2 = acc.s2.data();
  double* __restrict cls = acc.cls.data();
  std::vector<int64_t> order(kChunk), start(C + 1), pos(C);
  double amax = acc.absmax;
  for (int64_t b = r0; b < r1; b += kChunk) {
    const int64_t e = std::min(r1, b + kChunk);
    std::fill(start.begin(), start.end(), 0);
    for (int64_t i = b; i < e; ++i) ++start[codes[i] + 1];
    for (int64_t c = 0; c < C; ++c) {
      acc.counts[c] += static_cast<double>(start[c + 1]);
      start[c + 1] += start[c];
      pos[c] = start[c];
    }
    for (int64_t i = b; i < e; ++i) order[pos[codes[i]]++] = i;
    for (int64_t c = 0; c < C; ++c)
      amax = add_class_rows<T, Scaled>(X, p, order.data(), start[c], start[c + 1], x0, scale, cls + c * p, s2, amax);
  }
  acc.absmax = amax;
}

// Rows are split into a fixed number of contiguous groups, each summed in order into its own
// accumulator and the groups added in order: the result does not depend on the thread count or on
// which thread ran which group (batched == single, bit for bit), and dynamic scheduling keeps a
// busy core from stalling the pass.
int64_t n_groups(int64_t n, int64_t acc_bytes) {
  int64_t k = std::min<int64_t>(16, std::max<int64_t>(1, n / 64));
  const int64_t budget = int64_t(64) << 20;  // at most 64 MiB of accumulators
  k = std::min<int64_t>(k, std::max<int64_t>(1, budget / std::max<int64_t>(acc_bytes, 1)));
  return k;
}

template <class Acc, class Body>
void run_groups(int64_t n, std::vector<Acc>& accs, bool parallel, Body body) {
  const int64_t k = static_cast<int64_t>(accs.size());
  if (parallel && k > 1 && omp_get_max_threads() > 1) {
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t g = 0; g < k; ++g) body(n * g / k, n * (g + 1) / k, accs[g]);
  } else {
    for (int64_t g = 0; g < k; ++g) body(n * g / k, n * (g + 1) / k, accs[g]);
  }
}

// Class-major statistics pass, for many classes. At C = 1,000 and p = 2,048 a group's C x p
// float64 accumulators are 16 MB: the chunked pass above then loads and stores one of them from
// memory for nearly every row (a 256-row chunk holds ~0.26 rows per class), about 3x a plain read
// (benchmarks/RESULTS.md). Here all rows are ordered by class once (a stable counting sort of the
// N row indices, O(N + C)), the sorted positions are split into a fixed number of contiguous
// groups, and each group walks its classes, adding each class's rows straight into that class's
// row of the result (one p-vector, in cache while the class's rows stream from memory). A class
// cut by a group boundary is summed into the group's head or tail slot and those are added in
// group order afterwards, so the result depends on the data alone, not on the thread count.
// Extra memory: N row indices and 3 p-vectors per group (no per-group C x p accumulators).
struct SegAcc {
  std::vector<double> s2, head, tail;  // p each: squares; the cut classes at the group's two ends
  int64_t head_class = -1, tail_class = -1;
  double absmax = 0.0;
  explicit SegAcc(int64_t p) : s2(p, 0.0), head(p, 0.0), tail(p, 0.0) {}
};

template <class T>
void stats_class_major(const T* X, int64_t n, int64_t p, const int32_t* codes, const double* x0, double scale,
                       bool parallel, StatsAcc& out) {
  const int64_t C = static_cast<int64_t>(out.counts.size());
  std::vector<int64_t> start(C + 1, 0), order(n);
  for (int64_t i = 0; i < n; ++i) ++start[codes[i] + 1];
  for (int64_t c = 0; c < C; ++c) {
    out.counts[c] = static_cast<double>(start[c + 1]);
    start[c + 1] += start[c];
  }
  {
    std::vector<int64_t> pos(start.begin(), start.end() - 1);
    for (int64_t i = 0; i < n; ++i) order[pos[codes[i]]++] = i;
  }
  double* cls = out.cls.data();
  const int64_t k = n_groups(n, 3 * p * static_cast<int64_t>(sizeof(double)));
  std::vector<SegAcc> accs;
  accs.reserve(k);
  for (int64_t g = 0; g < k; ++g) accs.emplace_back(p);
  run_groups(n, accs, parallel, [&](int64_t a, int64_t b, SegAcc& acc) {
    double amax = acc.absmax;
    for (int64_t q = a; q < b;) {
      const int64_t c = codes[order[q]], e = std::min(b, start[c + 1]);
      double* pc;
      if (q == start[c] && e == start[c + 1]) {
        pc = cls + c * p;  // the whole class lies in this group: no other group writes this row
      } else if (q == a) {
        pc = acc.head.data();
        acc.head_class = c;
      } else {
        pc = acc.tail.data();
        acc.tail_class = c;
      }
      amax = scale != 1.0
                 ? add_class_rows<T, true, true>(X, p, order.data(), q, e, x0, scale, pc, acc.s2.data(), amax)
                 : add_class_rows<T, false, true>(X, p, order.data(), q, e, x0, scale, pc, acc.s2.data(), amax);
      q = e;
    }
    acc.absmax = amax;
  });
  for (int64_t g = 0; g < k; ++g) {
    const SegAcc& a = accs[g];
    for (int64_t j = 0; j < p; ++j) out.s2[j] += a.s2[j];
    if (a.head_class >= 0)
      for (int64_t j = 0; j < p; ++j) cls[a.head_class * p + j] += a.head[j];
    if (a.tail_class >= 0)
      for (int64_t j = 0; j < p; ++j) cls[a.tail_class * p + j] += a.tail[j];
    out.absmax = std::max(out.absmax, a.absmax);
  }
}

// The class-major pass is taken when one set of C x p accumulators outgrows about an L2 cache.
constexpr int64_t kClassMajorBytes = int64_t(1) << 20;

template <class T>
PlsStats stats_impl(const MatrixView& m, const int32_t* codes, int64_t C, double scale, bool parallel) {
  const T* X = m.as<T>();
  const int64_t n = m.rows, p = m.cols;
  std::vector<double> x0(p);
  for (int64_t j = 0; j < p; ++j) x0[j] = static_cast<double>(X[j]);
  const bool scaled = scale != 1.0;
  std::vector<StatsAcc> accs;
  if ((C + 1) * p * static_cast<int64_t>(sizeof(double)) > kClassMajorBytes) {
    accs.emplace_back(p, C);
    stats_class_major(X, n, p, codes, x0.data(), scale, parallel, accs[0]);
  } else {
    const int64_t k = n_groups(n, (C + 1) * p * static_cast<int64_t>(sizeof(double)));
    accs.reserve(k);
    for (int64_t g = 0; g < k; ++g) accs.emplace_back(p, C);
    run_groups(n, accs, parallel, [&](int64_t r0, int64_t r1, StatsAcc& acc) {
      if (scaled)
        stats_rows<T, true>(X, p, codes, r0, r1, x0.data(), scale, acc);
      else
        stats_rows<T, false>(X, p, codes, r0, r1, x0.data(), scale, acc);
    });
    for (int64_t g = 1; g < k; ++g) {
      for (size_t q = 0; q < accs[0].cls.size(); ++q) accs[0].cls[q] += accs[g].cls[q];
      for (int64_t j = 0; j < p; ++j) accs[0].s2[j] += accs[g].s2[j];
      for (int64_t c = 0; c < C; ++c) accs[0].counts[c] += accs[g].counts[c];
      accs[0].absmax = std::max(accs[0].absmax, accs[g].absmax);
    }
  }
  StatsAcc& a = accs[0];
  if (scaled)
    for (int64_t j = 0; j < p; ++j) x0[j] *= scale;  // finish_stats then reports the scaled X's statistics
  PlsStats r;
  r.absmax = std::is_same<T, double>::value ? a.absmax : -1.0;
  r.colsum.resize(p);
  r.sq.resize(p);
  r.counts = a.counts;
  r.class_sums = std::move(a.cls);  // finished in place: no second C x p buffer
  pls::finish_stats(n, p, C, x0.data(), r.class_sums.data(), a.s2.data(), a.counts.data(), r.colsum.data(), r.sq.data(),
                    r.class_sums.data());
  return r;
}

// ---------------------------------------------------------------------------------------------
// Projection pass: t = X v - c, then g = X't, fused: each block of rows is read from memory once,
// its dot products give t, and the same rows (still in L1/L2) are added into g weighted by t.

struct ProjAcc {
  std::vector<double> g;
  double tsum = 0.0, tt = 0.0;
  explicit ProjAcc(int64_t p) : g(p, 0.0) {}
};

// Rows r0..r1 of the projection: t = X v - c into tsum and t't and, with Loading, g += X't. Without
// it (the last component, whose X't kernel PLS never uses) only the dot products are taken: one
// read of X with about half the arithmetic, so it runs close to a plain read.
template <class T, bool Loading>
void project_rows(const T* __restrict X, int64_t p, const double* __restrict v, double c, int64_t r0, int64_t r1,
                  ProjAcc& acc) {
  double* __restrict g = acc.g.data();
  double tsum = 0.0, tt = 0.0;
  int64_t i = r0;
#ifdef SWNAS_PLS_AVX2
  if constexpr (std::is_same<T, float>::value) {
    if constexpr (Loading) {
      i += avx2::project_blocks(X, p, v, c, r0, r1, g, tsum, tt);
    } else {
      for (; i + 4 <= r1; i += 4) {
        const float* x[4] = {X + i * p, X + (i + 1) * p, X + (i + 2) * p, X + (i + 3) * p};
        double t[4];
        avx2::dot4(x, v, p, t);
        avx2::finish_t(t, c, tsum, tt);
      }
    }
  }
#endif
  for (; i + 4 <= r1; i += 4) {
    const T* __restrict x0 = X + i * p;
    const T* __restrict x1 = x0 + p;
    const T* __restrict x2 = x1 + p;
    const T* __restrict x3 = x2 + p;
    double a0 = 0.0, a1 = 0.0, a2 = 0.0, a3 = 0.0;
#pragma omp simd reduction(+ : a0, a1, a2, a3)
    for (int64_t j = 0; j < p; ++j) {
      const double vj = v[j];
      a0 += static_cast<double>(x0[j]) * vj;
      a1 += static_cast<double>(x1[j]) * vj;
      a2 += static_cast<double>(x2[j]) * vj;
      a3 += static_cast<double>(x3[j]) * vj;
    }
    const double t0 = a0 - c, t1 = a1 - c, t2 = a2 - c, t3 = a3 - c;
    tsum += (t0 + t1) + (t2 + t3);
    tt += (t0 * t0 + t1 * t1) + (t2 * t2 + t3 * t3);
    if constexpr (Loading) {
#pragma omp simd
      for (int64_t j = 0; j < p; ++j) {
        g[j] += (t0 * static_cast<double>(x0[j]) + t1 * static_cast<double>(x1[j])) +
                (t2 * static_cast<double>(x2[j]) + t3 * static_cast<double>(x3[j]));
      }
    }
  }
  for (; i < r1; ++i) {
    const T* __restrict x0 = X + i * p;
    double a0 = 0.0;
#pragma omp simd reduction(+ : a0)
    for (int64_t j = 0; j < p; ++j) a0 += static_cast<double>(x0[j]) * v[j];
    const double t0 = a0 - c;
    tsum += t0;
    tt += t0 * t0;
    if constexpr (Loading) {
#pragma omp simd
      for (int64_t j = 0; j < p; ++j) g[j] += t0 * static_cast<double>(x0[j]);
    }
  }
  acc.tsum += tsum;
  acc.tt += tt;
}

template <class T>
PlsProjection project_impl(const MatrixView& m, const double* v, double c, bool parallel, bool loading) {
  const T* X = m.as<T>();
  const int64_t n = m.rows, p = m.cols;
  const int64_t k = n_groups(n, p * static_cast<int64_t>(sizeof(double)));
  std::vector<ProjAcc> accs;
  accs.reserve(k);
  for (int64_t g = 0; g < k; ++g) accs.emplace_back(loading ? p : 0);
  run_groups(n, accs, parallel, [&](int64_t r0, int64_t r1, ProjAcc& acc) {
    if (loading)
      project_rows<T, true>(X, p, v, c, r0, r1, acc);
    else
      project_rows<T, false>(X, p, v, c, r0, r1, acc);
  });
  PlsProjection r;
  r.g = std::move(accs[0].g);
  r.tsum = accs[0].tsum;
  r.tt = accs[0].tt;
  for (int64_t g = 1; g < k; ++g) {
    for (size_t j = 0; j < r.g.size(); ++j) r.g[j] += accs[g].g[j];
    r.tsum += accs[g].tsum;
    r.tt += accs[g].tt;
  }
  return r;
}

// The benchmarks' memory floor: one plain streaming read of X (a float sum over every element).
// Each thread reads its rows 4 at a time, one stream per row: on the reference machine one core
// reads about 1.3x faster from 4 concurrent streams than from one (benchmarks/RESULTS.md), so this
// is the fastest plain read we know, not a strawman.
template <class T>
double stream_read_impl(const MatrixView& m) {
  const T* X = m.as<T>();
  const int64_t n = m.rows, p = m.cols;
  double s = 0.0;
#pragma omp parallel reduction(+ : s)
  {
    const int t = omp_get_thread_num(), nt = omp_get_num_threads();
    const int64_t r0 = n * t / nt, r1 = n * (t + 1) / nt;
    T acc[4][8] = {};
    int64_t i = r0;
    for (; i + 4 <= r1; i += 4) {
      const T* x[4] = {X + i * p, X + (i + 1) * p, X + (i + 2) * p, X + (i + 3) * p};
      int64_t j = 0;
      for (; j + 8 <= p; j += 8)
        for (int k = 0; k < 4; ++k) {
#pragma omp simd
          for (int q = 0; q < 8; ++q) acc[k][q] += x[k][j + q];
        }
      for (; j < p; ++j)
        for (int k = 0; k < 4; ++k) acc[k][0] += x[k][j];
    }
    for (; i < r1; ++i)
      for (int64_t j = 0; j < p; ++j) acc[0][0] += X[i * p + j];
    for (int k = 0; k < 4; ++k)
      for (int q = 0; q < 8; ++q) s += static_cast<double>(acc[k][q]);
  }
  return s;
}

// s's x for a p x c row-major float64 s, in one read of s: sum_i s_i (s_i . x), row i reused from
// cache. Rows in a fixed number of groups added in order, as in the passes over X.
void gram_right(const double* s, int64_t p, int64_t c, const double* x, double* out) {
  const int64_t k = n_groups(p, c * static_cast<int64_t>(sizeof(double)));
  std::vector<std::vector<double>> accs(static_cast<size_t>(k), std::vector<double>(static_cast<size_t>(c), 0.0));
  run_groups(p, accs, true, [&](int64_t r0, int64_t r1, std::vector<double>& acc) {
    double* __restrict a = acc.data();
    int64_t i = r0;
    for (; i + 4 <= r1; i += 4) {  // four rows at a time: four independent dot-product chains
      const double* __restrict q0 = s + i * c;
      const double* __restrict q1 = q0 + c;
      const double* __restrict q2 = q1 + c;
      const double* __restrict q3 = q2 + c;
      double t0 = 0.0, t1 = 0.0, t2 = 0.0, t3 = 0.0;
#pragma omp simd reduction(+ : t0, t1, t2, t3)
      for (int64_t j = 0; j < c; ++j) {
        t0 += q0[j] * x[j];
        t1 += q1[j] * x[j];
        t2 += q2[j] * x[j];
        t3 += q3[j] * x[j];
      }
#pragma omp simd
      for (int64_t j = 0; j < c; ++j) a[j] += (t0 * q0[j] + t1 * q1[j]) + (t2 * q2[j] + t3 * q3[j]);
    }
    for (; i < r1; ++i) {
      const double* __restrict row = s + i * c;
      double t = 0.0;
#pragma omp simd reduction(+ : t)
      for (int64_t j = 0; j < c; ++j) t += row[j] * x[j];
#pragma omp simd
      for (int64_t j = 0; j < c; ++j) a[j] += t * row[j];
    }
  });
  std::fill(out, out + c, 0.0);
  for (const auto& acc : accs)
    for (int64_t j = 0; j < c; ++j) out[j] += acc[j];
}

// s s'x for a p x c row-major float64 s: u = s'x (one read, grouped as above), then out_i = s_i . u.
void gram_left(const double* s, int64_t p, int64_t c, const double* x, double* out) {
  const int64_t k = n_groups(p, c * static_cast<int64_t>(sizeof(double)));
  std::vector<std::vector<double>> accs(static_cast<size_t>(k), std::vector<double>(static_cast<size_t>(c), 0.0));
  run_groups(p, accs, true, [&](int64_t r0, int64_t r1, std::vector<double>& acc) {
    double* __restrict a = acc.data();
    for (int64_t i = r0; i < r1; ++i) {
      const double* __restrict row = s + i * c;
      const double xi = x[i];
#pragma omp simd
      for (int64_t j = 0; j < c; ++j) a[j] += xi * row[j];
    }
  });
  std::vector<double> u(static_cast<size_t>(c), 0.0);
  for (const auto& acc : accs)
    for (int64_t j = 0; j < c; ++j) u[j] += acc[j];
  const double* __restrict uu = u.data();
#pragma omp parallel for schedule(static) if (p * c > (int64_t(1) << 16))
  for (int64_t i = 0; i < p; ++i) {
    const double* __restrict row = s + i * c;
    double t = 0.0;
#pragma omp simd reduction(+ : t)
    for (int64_t j = 0; j < c; ++j) t += row[j] * uu[j];
    out[i] = t;
  }
}

}  // namespace

PlsStats pls_stats(const MatrixView& X, const int32_t* codes, int64_t n_classes, bool parallel, double scale) {
  return dispatch_dtype(X.dtype,
                        [&](auto tag) { return stats_impl<decltype(tag)>(X, codes, n_classes, scale, parallel); });
}

PlsProjection pls_project(const MatrixView& X, const double* v, double c, bool parallel, bool loading) {
  return dispatch_dtype(X.dtype, [&](auto tag) { return project_impl<decltype(tag)>(X, v, c, parallel, loading); });
}

std::vector<PlsStats> pls_stats_many(const std::vector<MatrixView>& Xs, const std::vector<const int32_t*>& codes,
                                     const std::vector<int64_t>& n_classes, const std::vector<double>& scales,
                                     bool across_problems) {
  const int64_t k = static_cast<int64_t>(Xs.size());
  std::vector<PlsStats> out(Xs.size());
  if (across_problems) {
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t i = 0; i < k; ++i) out[i] = pls_stats(Xs[i], codes[i], n_classes[i], false, scales[i]);
  } else {
    for (int64_t i = 0; i < k; ++i) out[i] = pls_stats(Xs[i], codes[i], n_classes[i], true, scales[i]);
  }
  return out;
}

std::vector<PlsProjection> pls_project_many(const std::vector<MatrixView>& Xs, const std::vector<const double*>& vs,
                                            const std::vector<double>& cs, bool across_problems, bool loading) {
  const int64_t k = static_cast<int64_t>(Xs.size());
  std::vector<PlsProjection> out(Xs.size());
  if (across_problems) {
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t i = 0; i < k; ++i) out[i] = pls_project(Xs[i], vs[i], cs[i], false, loading);
  } else {
    for (int64_t i = 0; i < k; ++i) out[i] = pls_project(Xs[i], vs[i], cs[i], true, loading);
  }
  return out;
}

// Across problems (one thread per problem) or across rows within each problem in turn. "auto" picks
// problems when there are at least as many problems as threads: measured on 2 cores with six
// stage-sized problems (50,000 x 256/128/64 float32), 210 ms against 345 ms, the saving being one
// fork/join per problem and pass. Results are identical either way.
bool pls_across_problems(const std::string& mode, size_t n_problems) {
  if (mode == "problems") return true;
  if (mode == "rows") return false;
  if (mode == "auto") return n_problems >= static_cast<size_t>(std::max(1, omp_get_max_threads())) && n_problems > 1;
  throw std::invalid_argument("parallel: must be 'auto', 'rows' or 'problems', got '" + mode + "'");
}

void pls_gram_matvec(const double* s, int64_t p, int64_t c, const double* x, bool right, double* out) {
  if (right)
    gram_right(s, p, c, x, out);
  else
    gram_left(s, p, c, x, out);
}

double stream_read(const MatrixView& X) {
  return dispatch_dtype(X.dtype, [&](auto tag) { return stream_read_impl<decltype(tag)>(X); });
}

}  // namespace cpu
}  // namespace swnas
