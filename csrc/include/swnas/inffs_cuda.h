// Host wrappers of the inf-FS CUDA kernels (csrc/cuda/inffs_cuda.cu), called by the pybind11 bindings.
#pragma once
#include <cstdint>

namespace swnas {
namespace cuda {

// Column std (ddof=1; NaN for a column holding NaN/Inf, exactly 0 for a constant column), the centred
// average ranks (spearman) or centred values (pearson) Z (n x p, row-major, X's precision) and the
// double Gram matrix G = Z'Z (p x p, symmetric). All pointers are device pointers; X is row-major.
// dtype: 0 = float32, 1 = float64. G and stdv must hold p*p and p doubles; Z n*p elements.
void inffs_rank_gram(const void* X, int dtype, int64_t n, int64_t p, bool spearman, void* Z, double* G,
                     double* stdv, uintptr_t stream);

}  // namespace cuda
}  // namespace swnas
