// Host interface of the inf-FS CUDA kernels (inffs_cuda.cu), called by the pybind11 bindings.
#pragma once
#include <cstdint>

#include "common/matrix_view.h"

namespace swnas {
namespace cuda {

// Column std (ddof=1; NaN for a column holding NaN/Inf, exactly 0 for a constant column), the centred
// average ranks (spearman) or centred values (pearson) Z (n x p, row-major, X's precision) and the
// double Gram matrix G = Z'Z (p x p, symmetric). X is a row-major device matrix; Z, G and stdv are
// device pointers holding n*p elements of X's dtype, p*p and p doubles.
void inffs_rank_gram(const MatrixView& X, bool spearman, void* Z, double* G, double* stdv, uintptr_t stream);

}  // namespace cuda
}  // namespace swnas
