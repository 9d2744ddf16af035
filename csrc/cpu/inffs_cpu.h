// Declares inf-FS on the CPU (inffs_cpu.cpp): plain C++, no Python types.
#pragma once
#include <cstdint>
#include <vector>

#include "common/matrix_view.h"

namespace swnas {
namespace cpu {

// Centred average ranks (spearman) or centred values of every column of X into Z (n x p, X's dtype,
// row-major) and the ddof=1 column std (docs/scorers.md, section 3). Parallel over columns.
void inffs_column_transform(const MatrixView& X, bool spearman, void* Z, double* stdv);

// float32 Spearman ranks written transposed (Zt: p x n, one contiguous row per column).
void inffs_spearman_transposed_f32(const float* X, int64_t n, int64_t p, float* Zt, double* stdv);

// Scores from the Gram matrix G (p x p, lower triangle read, float32 or float64) of the centred
// columns and the column std: the affinity A, lambda_max by Lanczos, one blocked Cholesky solve.
std::vector<double> inffs_solve(const MatrixView& G, const double* stdv, double alpha, double factor);

// Largest eigenvalue of a symmetric p x p matrix (Lanczos with full reorthogonalisation).
double lanczos_max_eig(const double* A, int64_t p);

}  // namespace cpu
}  // namespace swnas
