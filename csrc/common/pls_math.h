// PLS-VIP statistics algebra shared by the CPU and CUDA passes: shifted sums -> column statistics
// (docs/scorers.md, section 2).
#pragma once
#include <cmath>
#include <cstdint>
#include <vector>

namespace swnas {
namespace pls {

// The statistics pass accumulates, in float64 and per class c, sum over the rows of class c of
// (x_i - x0) (x0 = the first row), and over all rows sum of (x_i - x0)^2. Shifting by a sample of
// the data keeps float32 columns with a large mean against their spread (pixels, post-ReLU
// activations) from cancelling: the centred sum of squares is s2 - s1^2 / n with s1 small.
//
// finish_stats turns those shifted sums into what the Python algebra wants:
//   colsum[j]           = sum_i x_ij
//   sq[j]               = sum_i (x_ij - mean_j)^2   (clamped at 0)
//   class_sums[c*p + j] = sum over the rows of class c of x_ij
// class_sums may be class_shifted itself (each element is read before it is overwritten).
inline void finish_stats(int64_t n, int64_t p, int64_t n_classes, const double* x0, const double* class_shifted,
                         const double* s2, const double* counts, double* colsum, double* sq, double* class_sums) {
  const double dn = static_cast<double>(n);
  // s1[j] = sum over c of class_shifted[c][j], the classes added in order; row by row, so that
  // 1,000 classes x 2,048 columns (16 MB) are read once in sequence, not with a 16 KB stride
  std::vector<double> s1v(static_cast<size_t>(p), 0.0);
  for (int64_t c = 0; c < n_classes; ++c)
    for (int64_t j = 0; j < p; ++j) s1v[j] += class_shifted[c * p + j];
  for (int64_t j = 0; j < p; ++j) {
    const double s1 = s1v[j];
    colsum[j] = s1 + dn * x0[j];
    double v = s2[j] - s1 * (s1 / dn);
    // rounding can push an exact zero slightly negative; NaN/Inf must survive so that the
    // Python side reports them
    sq[j] = (v > 0.0 || !std::isfinite(v)) ? v : 0.0;
  }
  for (int64_t c = 0; c < n_classes; ++c)
    for (int64_t j = 0; j < p; ++j) class_sums[c * p + j] = class_shifted[c * p + j] + counts[c] * x0[j];
}

}  // namespace pls
}  // namespace swnas
