// CPU kernels of inf-FS (docs/scorers.md, section 3): parallel column ranking, Lanczos lambda_max,
// blocked Cholesky solve.
#include "cpu/inffs_cpu.h"

#include <omp.h>
#include <sys/mman.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <new>
#include <stdexcept>
#include <type_traits>
#include <vector>

namespace swnas {
namespace cpu {
namespace {

// ---- order-preserving unsigned keys of floating-point values (-0.0 and +0.0 map to one key) ----
inline uint32_t sort_key(float v) {
  if (v == 0.0f) v = 0.0f;
  uint32_t u;
  std::memcpy(&u, &v, 4);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}
inline uint64_t sort_key(double v) {
  if (v == 0.0) v = 0.0;
  uint64_t u;
  std::memcpy(&u, &v, 8);
  return (u & 0x8000000000000000ull) ? ~u : (u | 0x8000000000000000ull);
}

// LSD radix sort (11-bit digits) of 32-bit keys packed with their row index as (key << 32 | index);
// 64-bit keys are sorted as (key, index) pairs. Only the key bits are sorted; the sort is stable.
inline const uint64_t* radix_sort_packed(uint64_t* a, uint64_t* tmp, size_t n, std::vector<uint32_t>& hist) {
  constexpr int kBits = 11, kBuckets = 1 << kBits;
  hist.assign(size_t(kBuckets), 0);
  for (int shift = 32; shift < 64; shift += kBits) {
    std::fill(hist.begin(), hist.end(), 0u);
    for (size_t i = 0; i < n; ++i) hist[(a[i] >> shift) & (kBuckets - 1)]++;
    if (hist[(a[0] >> shift) & (kBuckets - 1)] == n) continue;  // one digit value: nothing moves
    uint32_t sum = 0;
    for (int b = 0; b < kBuckets; ++b) {
      uint32_t c = hist[b];
      hist[b] = sum;
      sum += c;
    }
    for (size_t i = 0; i < n; ++i) tmp[hist[(a[i] >> shift) & (kBuckets - 1)]++] = a[i];
    std::swap(a, tmp);
  }
  return a;
}

template <typename K>
void radix_sort_pairs(std::vector<K>& keys, std::vector<uint32_t>& idx, std::vector<K>& kt, std::vector<uint32_t>& it,
                      std::vector<uint32_t>& hist) {
  const size_t n = keys.size();
  constexpr int kBits = 11;
  constexpr int kBuckets = 1 << kBits;
  constexpr int kPasses = (int(sizeof(K)) * 8 + kBits - 1) / kBits;
  hist.assign(size_t(kBuckets), 0);
  for (int pass = 0; pass < kPasses; ++pass) {
    const int shift = pass * kBits;
    std::fill(hist.begin(), hist.end(), 0u);
    for (size_t i = 0; i < n; ++i) hist[(keys[i] >> shift) & (kBuckets - 1)]++;
    if (hist[(keys[0] >> shift) & (kBuckets - 1)] == n) continue;
    uint32_t sum = 0;
    for (int b = 0; b < kBuckets; ++b) {
      uint32_t c = hist[b];
      hist[b] = sum;
      sum += c;
    }
    for (size_t i = 0; i < n; ++i) {
      uint32_t pos = hist[(keys[i] >> shift) & (kBuckets - 1)]++;
      kt[pos] = keys[i];
      it[pos] = idx[i];
    }
    keys.swap(kt);
    idx.swap(it);
  }
}

// Pearson's transform in row order: the column blocks below read 64 columns (256 bytes) of every row
// per pass, a strided walk that ran at a tenth of a plain read; here every pass streams whole rows.
// Rows go in kGroups fixed contiguous groups, each summed in order and the groups added in order:
// the result does not depend on the thread count. Pass 1: column sums, minima and maxima; pass 2:
// centred sums of squares; pass 3: Z = x - mean (0 for constant or non-finite columns).
template <typename T>
void center_rows(const T* X, int64_t n, int64_t p, T* Z, double* stdv) {
  const int64_t k = std::max<int64_t>(1, std::min<int64_t>(16, n / 64));
  std::vector<double> sum(size_t(k * p), 0.0), sq(size_t(k * p), 0.0);
  std::vector<T> lo(size_t(k * p)), hi(size_t(k * p));
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t g = 0; g < k; ++g) {
    const int64_t r0 = n * g / k, r1 = n * (g + 1) / k;
    double* __restrict s = sum.data() + g * p;
    T* __restrict l = lo.data() + g * p;
    T* __restrict h = hi.data() + g * p;
    std::copy(X + r0 * p, X + r0 * p + p, l);
    std::copy(X + r0 * p, X + r0 * p + p, h);
    for (int64_t i = r0; i < r1; ++i) {
      const T* __restrict x = X + i * p;
#pragma omp simd
      for (int64_t j = 0; j < p; ++j) {
        s[j] += double(x[j]);
        l[j] = x[j] < l[j] ? x[j] : l[j];
        h[j] = x[j] > h[j] ? x[j] : h[j];
      }
    }
  }
  std::vector<double> mu(size_t(p), 0.0);
  std::vector<T> lo_all(lo.begin(), lo.begin() + p), hi_all(hi.begin(), hi.begin() + p);
  for (int64_t g = 0; g < k; ++g)
    for (int64_t j = 0; j < p; ++j) {
      mu[j] += sum[g * p + j];
      lo_all[j] = std::min(lo_all[j], lo[g * p + j]);
      hi_all[j] = std::max(hi_all[j], hi[g * p + j]);
    }
  for (int64_t j = 0; j < p; ++j) mu[j] /= double(n);
  const double* __restrict m = mu.data();
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t g = 0; g < k; ++g) {
    const int64_t r0 = n * g / k, r1 = n * (g + 1) / k;
    double* __restrict q = sq.data() + g * p;
    for (int64_t i = r0; i < r1; ++i) {
      const T* __restrict x = X + i * p;
#pragma omp simd
      for (int64_t j = 0; j < p; ++j) {
        const double d = double(x[j]) - m[j];
        q[j] += d * d;
      }
    }
  }
  std::vector<unsigned char> keep(static_cast<size_t>(p));
  for (int64_t j = 0; j < p; ++j) {
    double total = 0.0;
    for (int64_t g = 0; g < k; ++g) total += sq[g * p + j];
    const bool finite = std::isfinite(mu[j]) && std::isfinite(total);
    const bool constant = finite && (lo_all[j] == hi_all[j]);
    stdv[j] = !finite ? std::numeric_limits<double>::quiet_NaN() : (constant ? 0.0 : std::sqrt(total / double(n - 1)));
    keep[j] = finite && !constant;
  }
  const unsigned char* __restrict kp = keep.data();
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const T* __restrict x = X + i * p;
    T* __restrict z = Z + i * p;
#pragma omp simd
    for (int64_t j = 0; j < p; ++j) z[j] = kp[j] ? T(double(x[j]) - m[j]) : T(0);
  }
}

// Per column: centred average ranks (spearman; pearson goes to center_rows above), ddof=1 std (NaN
// when the column holds NaN/Inf; exactly 0 when it is constant). Z is written row-major like X. Columns go in
// blocks of 64: statistics and write-back stream over rows (vectorised across the block), each column
// of the block is sorted on its own.
template <typename T>
void column_transform(const T* X, int64_t n, int64_t p, bool spearman, T* Z, double* stdv) {
  if (!spearman) {
    center_rows(X, n, p, Z, stdv);
    return;
  }
  using K = typename std::conditional<sizeof(T) == 4, uint32_t, uint64_t>::type;
  constexpr int64_t B = 64;
  const int64_t nblocks = (p + B - 1) / B;
  constexpr bool kPacked = sizeof(T) == 4;
#pragma omp parallel
  {
    std::vector<uint64_t> packed(kPacked && spearman ? size_t(n) * B : 0), ptmp(kPacked && spearman ? n : 0);
    std::vector<T> out(spearman ? size_t(n) * B : 0);
    std::vector<K> keys(!kPacked && spearman ? n : 0), kt(!kPacked && spearman ? n : 0);
    std::vector<uint32_t> idx(!kPacked && spearman ? n : 0), it(!kPacked && spearman ? n : 0), hist;
    double sum[B], sq[B], mu[B];
    T lo[B], hi[B];
    bool keep[B];
#pragma omp for schedule(dynamic, 1)
    for (int64_t blk = 0; blk < nblocks; ++blk) {
      const int64_t j0 = blk * B, nb = std::min(B, p - j0);
      for (int64_t b = 0; b < nb; ++b) {
        sum[b] = 0.0;
        sq[b] = 0.0;
        lo[b] = X[j0 + b];
        hi[b] = X[j0 + b];
      }
      for (int64_t i = 0; i < n; ++i) {
        const T* x = X + i * p + j0;
#pragma omp simd
        for (int64_t b = 0; b < nb; ++b) {
          sum[b] += double(x[b]);
          lo[b] = x[b] < lo[b] ? x[b] : lo[b];
          hi[b] = x[b] > hi[b] ? x[b] : hi[b];
        }
      }
      for (int64_t b = 0; b < nb; ++b) mu[b] = sum[b] / double(n);
      for (int64_t i = 0; i < n; ++i) {
        const T* x = X + i * p + j0;
#pragma omp simd
        for (int64_t b = 0; b < nb; ++b) {
          const double d = double(x[b]) - mu[b];
          sq[b] += d * d;
        }
      }
      for (int64_t b = 0; b < nb; ++b) {
        const bool finite = std::isfinite(sum[b]) && std::isfinite(sq[b]);
        const bool constant = finite && (lo[b] == hi[b]);
        stdv[j0 + b] =
            !finite ? std::numeric_limits<double>::quiet_NaN() : (constant ? 0.0 : std::sqrt(sq[b] / double(n - 1)));
        keep[b] = finite && !constant;
      }
      if constexpr (kPacked) {
        for (int64_t i = 0; i < n; ++i) {
          const T* x = X + i * p + j0;
          for (int64_t b = 0; b < nb; ++b) packed[size_t(b) * n + i] = (uint64_t(sort_key(x[b])) << 32) | uint64_t(i);
        }
      }
      for (int64_t b = 0; b < nb; ++b) {
        T* o = &out[size_t(b) * n];
        if (!keep[b]) {
          for (int64_t i = 0; i < n; ++i) o[i] = T(0);
          continue;
        }
        // average rank of positions start..end-1 is (start+end+1)/2; centred: (start+end-n)/2
        if constexpr (kPacked) {
          const uint64_t* seg = radix_sort_packed(&packed[size_t(b) * n], ptmp.data(), size_t(n), hist);
          int64_t start = 0;
          while (start < n) {
            const uint64_t key = seg[start] >> 32;
            int64_t end = start + 1;
            while (end < n && (seg[end] >> 32) == key) ++end;
            const T r = T(0.5 * double(start + end - n));
            for (int64_t k = start; k < end; ++k) o[seg[k] & 0xffffffffu] = r;
            start = end;
          }
        } else {
          for (int64_t i = 0; i < n; ++i) {
            keys[i] = sort_key(X[i * p + j0 + b]);
            idx[i] = uint32_t(i);
          }
          radix_sort_pairs<K>(keys, idx, kt, it, hist);
          int64_t start = 0;
          while (start < n) {
            int64_t end = start + 1;
            while (end < n && keys[end] == keys[start]) ++end;
            const T r = T(0.5 * double(start + end - n));
            for (int64_t k = start; k < end; ++k) o[idx[k]] = r;
            start = end;
          }
        }
      }
      for (int64_t i = 0; i < n; ++i) {
        T* z = Z + i * p + j0;
        for (int64_t b = 0; b < nb; ++b) z[b] = out[size_t(b) * n + i];
      }
    }
  }
}

// Float32 spearman ranking into a transposed (p x n, column-per-row) output Zt, so that each column's
// ranks land in one contiguous row and no transpose pass is needed. Columns go in blocks of 64: one
// strided pass over the block (rows prefetched ahead, since each row is on its own page) stores the
// 32-bit keys per column and the sum/min/max; then per column one pass computes two digit histograms
// and the centred sum of squares, an LSD radix sort orders (key << 32 | row) pairs by the top 22 key
// bits (two 11-bit digits, a trivial digit skipped; the first pass packs the pairs as it scatters), a
// scan sorts each run sharing those bits by the full key (short runs for spread-out data; all-equal
// runs are left as they are) and writes the centred average ranks into a cache-resident row, copied
// to Zt in one sequential pass. Per-thread buffers: 64 x n keys (12.8 MB at n = 50,000) + 5 x 4n bytes.
inline float key_to_float(uint32_t k) {
  const uint32_t u = (k & 0x80000000u) ? (k & 0x7fffffffu) : ~k;
  float v;
  std::memcpy(&v, &u, 4);
  return v;
}

void spearman_transposed_f32(const float* X, int64_t n, int64_t p, float* Zt, double* stdv) {
  constexpr int64_t B = 64;
  constexpr int64_t kAhead = 16;  // rows prefetched ahead: each row of a block is on its own page
  const int64_t nblocks = (p + B - 1) / B;
#pragma omp parallel
  {
    std::vector<uint32_t> keys(size_t(n) * size_t(B));
    std::vector<uint64_t> packed(static_cast<size_t>(n)), ptmp(static_cast<size_t>(n));
    std::vector<float> obuf(static_cast<size_t>(n));  // ranks of one column, cache-resident, copied out
    std::vector<uint32_t> hist(2048 + 2048);
    double sum[B];
    float lo[B], hi[B];
#pragma omp for schedule(dynamic, 1)
    for (int64_t blk = 0; blk < nblocks; ++blk) {
      const int64_t j0 = blk * B, nb = std::min(B, p - j0);
      for (int64_t b = 0; b < nb; ++b) {
        sum[b] = 0.0;
        lo[b] = X[j0 + b];
        hi[b] = X[j0 + b];
      }
      for (int64_t i = 0; i < n; ++i) {
        if (kAhead > 0 && i + kAhead < n) {
          const char* ahead = reinterpret_cast<const char*>(X + (i + kAhead) * p + j0);
          for (int64_t off = 0; off < nb * int64_t(sizeof(float)); off += 64) __builtin_prefetch(ahead + off);
        }
        const float* x = X + i * p + j0;
        uint32_t* dst = keys.data() + i;
        if (nb == B) {
#pragma omp simd
          for (int64_t b = 0; b < B; ++b) {
            const float v = x[b];
            sum[b] += double(v);
            lo[b] = v < lo[b] ? v : lo[b];
            hi[b] = v > hi[b] ? v : hi[b];
          }
          for (int64_t b = 0; b < B; ++b) dst[size_t(b) * n] = sort_key(x[b]);
        } else {
          for (int64_t b = 0; b < nb; ++b) {
            const float v = x[b];
            sum[b] += double(v);
            lo[b] = v < lo[b] ? v : lo[b];
            hi[b] = v > hi[b] ? v : hi[b];
            dst[size_t(b) * n] = sort_key(v);
          }
        }
      }
      for (int64_t b = 0; b < nb; ++b) {
        const uint32_t* kb = keys.data() + size_t(b) * n;
        uint64_t* a = packed.data();
        float* const zrow = Zt + (j0 + b) * n;
        float* o = obuf.data();
        const double mu = sum[b] / double(n);
        uint32_t* h0 = hist.data();
        uint32_t* h1 = h0 + 2048;
        std::fill(hist.begin(), hist.end(), 0u);
        double sq = 0.0;
        for (int64_t i = 0; i < n; ++i) {
          const uint32_t k = kb[i];
          const double d = double(key_to_float(k)) - mu;
          sq += d * d;
          h0[(k >> 10) & 2047u]++;
          h1[k >> 21]++;
        }
        const bool finite = std::isfinite(sum[b]) && std::isfinite(sq);
        const bool constant = finite && (lo[b] == hi[b]);
        stdv[j0 + b] =
            !finite ? std::numeric_limits<double>::quiet_NaN() : (constant ? 0.0 : std::sqrt(sq / double(n - 1)));
        if (!finite || constant) {
          std::fill(zrow, zrow + n, 0.0f);
          continue;
        }
        // LSD radix sort on the top 22 key bits only (two 11-bit digits, item bits 42..63); the first
        // pass reads the keys and writes the (key << 32 | row) pairs as it scatters them
        uint64_t* src = a;
        uint64_t* dst = ptmp.data();
        if (h0[(kb[0] >> 10) & 2047u] != uint32_t(n)) {
          uint32_t s = 0;
          for (int q = 0; q < 2048; ++q) {
            const uint32_t c = h0[q];
            h0[q] = s;
            s += c;
          }
          for (int64_t i = 0; i < n; ++i) {
            const uint32_t k = kb[i];
            a[h0[(k >> 10) & 2047u]++] = (uint64_t(k) << 32) | uint64_t(i);
          }
        } else {
          for (int64_t i = 0; i < n; ++i) a[i] = (uint64_t(kb[i]) << 32) | uint64_t(i);
        }
        if (h1[kb[0] >> 21] != uint32_t(n)) {
          uint32_t s = 0;
          for (int q = 0; q < 2048; ++q) {
            const uint32_t c = h1[q];
            h1[q] = s;
            s += c;
          }
          for (int64_t i = 0; i < n; ++i) {
            const uint64_t v = src[i];
            dst[h1[v >> 53]++] = v;
          }
          std::swap(src, dst);
        }
        // Runs sharing the top 22 bits are short for spread-out data: finish each by a full-key sort
        // (insertion sort when short), then give every run of equal keys its centred average rank:
        // positions start..end-1 have average rank (start+end+1)/2, centred (start+end-n)/2.
        int64_t g0 = 0;
        while (g0 < n) {
          const uint64_t pre = src[g0] >> 42;
          int64_t g1 = g0 + 1;
          while (g1 < n && (src[g1] >> 42) == pre) ++g1;
          if (g1 - g0 == 1) {
            o[src[g0] & 0xffffffffu] = float(0.5 * double(2 * g0 + 1 - n));
            g0 = g1;
            continue;
          }
          if (g1 - g0 <= 24) {
            for (int64_t i = g0 + 1; i < g1; ++i) {
              const uint64_t v = src[i];
              int64_t q = i;
              while (q > g0 && src[q - 1] > v) {
                src[q] = src[q - 1];
                --q;
              }
              src[q] = v;
            }
          } else {
            bool sorted = true;
            for (int64_t i = g0 + 1; i < g1 && sorted; ++i) sorted = (src[i] >> 32) >= (src[i - 1] >> 32);
            if (!sorted) std::sort(src + g0, src + g1);
          }
          int64_t start = g0;
          while (start < g1) {
            const uint32_t key = uint32_t(src[start] >> 32);
            int64_t end = start + 1;
            while (end < g1 && uint32_t(src[end] >> 32) == key) ++end;
            const float r = float(0.5 * double(start + end - n));
            for (int64_t k = start; k < end; ++k) o[src[k] & 0xffffffffu] = r;
            start = end;
          }
          g0 = g1;
        }
        std::memcpy(zrow, o, sizeof(float) * size_t(n));  // one sequential pass into fresh pages
      }
    }
  }
}

// y = A x for a dense row-major symmetric p x p matrix.
void matvec(const double* A, const double* x, double* y, int64_t p) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < p; ++i) {
    const double* a = A + i * p;
    double s = 0.0;
#pragma omp simd reduction(+ : s)
    for (int64_t k = 0; k < p; ++k) s += a[k] * x[k];
    y[i] = s;
  }
}

// Largest eigenvalue of the symmetric tridiagonal (alpha[0..m), beta[0..m-1)) by Sturm bisection.
double tridiag_max_eig(const std::vector<double>& al, const std::vector<double>& be, int m) {
  double lo = 0.0, hi = 0.0;
  for (int i = 0; i < m; ++i) {
    double r = (i > 0 ? std::fabs(be[i - 1]) : 0.0) + (i + 1 < m ? std::fabs(be[i]) : 0.0);
    lo = (i == 0) ? al[i] - r : std::min(lo, al[i] - r);
    hi = (i == 0) ? al[i] + r : std::max(hi, al[i] + r);
  }
  auto count_below = [&](double x) {  // number of eigenvalues < x
    int cnt = 0;
    double d = 1.0;
    for (int i = 0; i < m; ++i) {
      double b2 = i > 0 ? be[i - 1] * be[i - 1] : 0.0;
      d = al[i] - x - (i > 0 ? b2 / d : 0.0);
      if (d == 0.0) d = -1e-300;
      if (d < 0) ++cnt;
    }
    return cnt;
  };
  for (int it = 0; it < 200 && hi - lo > 1e-16 * std::max(std::fabs(lo), std::fabs(hi)); ++it) {
    double mid = 0.5 * (lo + hi);
    if (mid <= lo || mid >= hi) break;
    if (count_below(mid) >= m)
      hi = mid;
    else
      lo = mid;
  }
  return 0.5 * (lo + hi);
}

// lambda_max of a symmetric matrix by Lanczos with full reorthogonalisation, started from 1/sqrt(p).
double lanczos_max_eig_impl(const double* A, int64_t p) {
  const int mmax = int(std::min<int64_t>(p, 400));
  std::vector<double> V(size_t(mmax + 1) * p), w(p), al, be;
  for (int64_t i = 0; i < p; ++i) V[i] = 1.0 / std::sqrt(double(p));
  double theta = 0.0, prev = -1.0;
  int stable = 0;
  for (int j = 0; j < mmax; ++j) {
    double* q = &V[size_t(j) * p];
    matvec(A, q, w.data(), p);
    double a = 0.0;
    for (int64_t i = 0; i < p; ++i) a += q[i] * w[i];
    al.push_back(a);
    for (int pass = 0; pass < 2; ++pass) {  // full reorthogonalisation, twice is enough
      for (int k = 0; k <= j; ++k) {
        const double* v = &V[size_t(k) * p];
        double c = 0.0;
        for (int64_t i = 0; i < p; ++i) c += v[i] * w[i];
        for (int64_t i = 0; i < p; ++i) w[i] -= c * v[i];
      }
    }
    double b = 0.0;
    for (int64_t i = 0; i < p; ++i) b += w[i] * w[i];
    b = std::sqrt(b);
    theta = tridiag_max_eig(al, be, j + 1);
    if (b <= 1e-13 * std::max(std::fabs(theta), 1e-300)) break;  // invariant subspace: exact
    if (std::fabs(theta - prev) <= 1e-15 * std::fabs(theta)) {
      if (++stable >= 3) break;
    } else {
      stable = 0;
    }
    prev = theta;
    be.push_back(b);
    double* qn = &V[size_t(j + 1) * p];
    for (int64_t i = 0; i < p; ++i) qn[i] = w[i] / b;
  }
  return theta;
}

// In-place lower Cholesky of a row-major SPD matrix (blocked, right-looking; upper part ignored).
void cholesky_lower(double* M, int64_t p) {
  const int64_t nb = 64;
  std::vector<double> panel;
  for (int64_t k0 = 0; k0 < p; k0 += nb) {
    const int64_t k1 = std::min(p, k0 + nb), w = k1 - k0;
    for (int64_t j = k0; j < k1; ++j) {  // diagonal block
      double d = M[j * p + j];
      for (int64_t k = k0; k < j; ++k) d -= M[j * p + k] * M[j * p + k];
      if (!(d > 0.0)) throw std::runtime_error("inffs: I - rA is not positive definite (Cholesky failed)");
      d = std::sqrt(d);
      M[j * p + j] = d;
      for (int64_t i = j + 1; i < k1; ++i) {
        double s = M[i * p + j];
        for (int64_t k = k0; k < j; ++k) s -= M[i * p + k] * M[j * p + k];
        M[i * p + j] = s / d;
      }
    }
    const int64_t rest = p - k1;
    if (rest <= 0) break;
    panel.assign(size_t(rest) * w, 0.0);
#pragma omp parallel for schedule(static)
    for (int64_t i = k1; i < p; ++i) {  // panel solve: L_i,blk = M_i,blk L_blk^-T
      double* mi = M + i * p;
      for (int64_t j = k0; j < k1; ++j) {
        double s = mi[j];
        const double* mj = M + j * p;
        for (int64_t k = k0; k < j; ++k) s -= mi[k] * mj[k];
        mi[j] = s / mj[j];
      }
      std::memcpy(&panel[size_t(i - k1) * w], mi + k0, sizeof(double) * w);
    }
#pragma omp parallel for schedule(dynamic, 4)
    for (int64_t i2 = 0; i2 < (rest + 1) / 2; ++i2) {  // trailing update, two rows at a time
      const int64_t ia = 2 * i2, ib = std::min(ia + 1, rest - 1);
      const double* pa = &panel[size_t(ia) * w];
      const double* pb = &panel[size_t(ib) * w];
      double* ma = M + (k1 + ia) * p + k1;
      double* mb = M + (k1 + ib) * p + k1;
      int64_t jj = 0;
      for (; jj + 4 <= ia + 1; jj += 4) {  // columns 0..ia (ib = ia+1 takes one more below)
        const double* p0 = &panel[size_t(jj) * w];
        double a0 = 0, a1 = 0, a2 = 0, a3 = 0, b0 = 0, b1 = 0, b2 = 0, b3 = 0;
#pragma omp simd reduction(+ : a0, a1, a2, a3, b0, b1, b2, b3)
        for (int64_t k = 0; k < w; ++k) {
          const double x = pa[k], z = pb[k];
          const double q0 = p0[k], q1 = p0[w + k], q2 = p0[2 * w + k], q3 = p0[3 * w + k];
          a0 += x * q0;
          a1 += x * q1;
          a2 += x * q2;
          a3 += x * q3;
          b0 += z * q0;
          b1 += z * q1;
          b2 += z * q2;
          b3 += z * q3;
        }
        ma[jj] -= a0;
        ma[jj + 1] -= a1;
        ma[jj + 2] -= a2;
        ma[jj + 3] -= a3;
        if (ib != ia) {
          mb[jj] -= b0;
          mb[jj + 1] -= b1;
          mb[jj + 2] -= b2;
          mb[jj + 3] -= b3;
        }
      }
      for (int64_t r = 0; r < (ib != ia ? 2 : 1); ++r) {
        const int64_t row = ia + r;
        const double* pr = r ? pb : pa;
        double* mr = r ? mb : ma;
        for (int64_t j = jj; j <= row; ++j) {
          const double* pj = &panel[size_t(j) * w];
          double s2 = 0;
#pragma omp simd reduction(+ : s2)
          for (int64_t k = 0; k < w; ++k) s2 += pr[k] * pj[k];
          mr[j] -= s2;
        }
      }
    }
  }
}

// Scores from the Gram matrix of the centred columns (G) and the column std.
template <typename T>
std::vector<double> solve_from_gram(const T* G, const double* stdv, int64_t p, double alpha, double factor) {
  std::vector<double> d(p), A(size_t(p) * p);
  for (int64_t i = 0; i < p; ++i) d[i] = std::sqrt(std::max(double(G[i * p + i]), 0.0));
  double lo = stdv[0], hi = stdv[0];
  for (int64_t i = 0; i < p; ++i) {
    lo = std::min(lo, stdv[i]);
    hi = std::max(hi, stdv[i]);
  }
  const double range = hi - lo;
  const bool use_sigma = range > 0.0 && std::isfinite(range);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < p; ++i) {
    const double si = use_sigma ? (stdv[i] - lo) / range : 0.0;
    for (int64_t j = 0; j < p; ++j) {
      double a = 0.0;
      if (d[i] > 0.0 && d[j] > 0.0) {
        // the Gram matrix may be stored in one triangle only: read the lower one
        double g = (j <= i) ? double(G[i * p + j]) : double(G[j * p + i]);
        double c = g / d[i] / d[j];
        const double sj = use_sigma ? (stdv[j] - lo) / range : 0.0;
        a = alpha * std::max(si, sj) + (1.0 - alpha) * (1.0 - std::fabs(c));
        if (!std::isfinite(a)) a = 0.0;
      }
      A[size_t(i) * p + j] = a;
    }
  }
  std::vector<double> x(p, 0.0);
  const double lam = lanczos_max_eig_impl(A.data(), p);
  if (!(lam > 0.0)) return x;
  const double r = factor / lam;
  for (size_t k = 0; k < A.size(); ++k) A[k] *= -r;
  for (int64_t i = 0; i < p; ++i) A[size_t(i) * p + i] += 1.0;
  cholesky_lower(A.data(), p);
  // L y = 1 (rows), then L' x = y (columns of L' are rows of L)
  std::vector<double> y(p);
  for (int64_t i = 0; i < p; ++i) {
    const double* li = &A[size_t(i) * p];
    double s = 1.0;
    for (int64_t k = 0; k < i; ++k) s -= li[k] * y[k];
    y[i] = s / li[i];
  }
  for (int64_t i = p - 1; i >= 0; --i) {
    const double* li = &A[size_t(i) * p];
    x[i] = y[i] / li[i];
    for (int64_t k = 0; k < i; ++k) y[k] -= li[k] * x[i];
  }
  for (int64_t i = 0; i < p; ++i) x[i] -= 1.0;
  return x;
}

}  // namespace

void inffs_column_transform(const MatrixView& X, bool spearman, void* Z, double* stdv) {
  dispatch_dtype(X.dtype, [&](auto tag) {
    using T = decltype(tag);
    column_transform<T>(X.as<T>(), X.rows, X.cols, spearman, static_cast<T*>(Z), stdv);
  });
}

void inffs_spearman_transposed_f32(const float* X, int64_t n, int64_t p, float* Zt, double* stdv) {
  spearman_transposed_f32(X, n, p, Zt, stdv);
}

std::vector<double> inffs_solve(const MatrixView& G, const double* stdv, double alpha, double factor) {
  return dispatch_dtype(G.dtype, [&](auto tag) {
    using T = decltype(tag);
    return solve_from_gram<T>(G.as<T>(), stdv, G.cols, alpha, factor);
  });
}

double lanczos_max_eig(const double* A, int64_t p) {
  return lanczos_max_eig_impl(A, p);
}

}  // namespace cpu
}  // namespace swnas
