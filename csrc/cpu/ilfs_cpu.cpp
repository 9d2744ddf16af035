// CPU kernels of il-FS (docs/scorers.md, section 4): class means and token counts (OpenMP over feature blocks).
#include "cpu/ilfs_cpu.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace swnas {
namespace cpu {
namespace {

// counts (TT x p, row-major) of the tokens of every (sample, feature); returns false on NaN/Inf data.
template <typename T>
bool token_counts(const T* X, const int32_t* y, int64_t n, int64_t p, int nc, int tt, int64_t* counts, bool parallel) {
  const int64_t B = 64;
  const int64_t nblocks = (p + B - 1) / B;
  std::vector<double> ccount(nc, 0.0);
  for (int64_t s = 0; s < n; ++s) ccount[y[s]] += 1.0;
  bool ok = true;
#pragma omp parallel if (parallel)
  {
    std::vector<double> mu(size_t(nc) * B), inv(static_cast<size_t>(B)), own(static_cast<size_t>(B));
    std::vector<int> nz(B);
    std::vector<char> ownz(B);
#pragma omp for schedule(dynamic, 1) reduction(&& : ok)
    for (int64_t blk = 0; blk < nblocks; ++blk) {
      const int64_t j0 = blk * B, nb = std::min(B, p - j0);
      std::fill(mu.begin(), mu.end(), 0.0);
      for (int64_t s = 0; s < n; ++s) {
        const T* x = X + s * p + j0;
        double* m = &mu[size_t(y[s]) * B];
        for (int64_t b = 0; b < nb; ++b) m[b] += double(x[b]);
      }
      for (int c = 0; c < nc; ++c)
        for (int64_t b = 0; b < nb; ++b) {
          mu[size_t(c) * B + b] /= std::max(ccount[c], 1.0);
          if (!std::isfinite(mu[size_t(c) * B + b])) ok = false;
        }
      if (!ok) continue;
      for (int64_t s = 0; s < n; ++s) {
        const T* x = X + s * p + j0;
        const int ys = y[s];
        std::fill(inv.begin(), inv.end(), 0.0);
        std::fill(nz.begin(), nz.end(), 0);
        for (int c = 0; c < nc; ++c) {
          const double* m = &mu[size_t(c) * B];
          for (int64_t b = 0; b < nb; ++b) {
            const double d = (double(x[b]) - m[b]) * (double(x[b]) - m[b]);
            double iv;
            bool z;
            ilfs::add_distance(d, inv[b], nz[b], iv, z);
            if (c == ys) {
              own[b] = iv;
              ownz[b] = z;
            }
          }
        }
        for (int64_t b = 0; b < nb; ++b) {
          const double pi = ilfs::relevance_pi(own[b], ownz[b] != 0, inv[b], nz[b]);
          counts[int64_t(ilfs::token_of(pi, tt)) * p + j0 + b]++;
        }
      }
    }
  }
  return ok;
}

}  // namespace

ilfs::Outcome ilfs_run(const MatrixView& X, const int32_t* y, int nc, int tt, int max_iter, double tol, bool parallel) {
  ilfs::Outcome o;
  o.counts.assign(static_cast<size_t>(tt) * static_cast<size_t>(X.cols), 0);
  o.ok = dispatch_dtype(X.dtype, [&](auto tag) {
    using T = decltype(tag);
    return token_counts<T>(X.as<T>(), y, X.rows, X.cols, nc, tt, o.counts.data(), parallel);
  });
  ilfs::finish(o, tt, X.cols, max_iter, tol);
  return o;
}

}  // namespace cpu
}  // namespace swnas
