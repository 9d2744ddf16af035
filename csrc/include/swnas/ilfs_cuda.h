// Host wrappers of the il-FS CUDA kernels (csrc/cuda/ilfs_cuda.cu), called by the pybind11 bindings.
#pragma once
#include <cstdint>
#include <vector>

namespace swnas {
namespace cuda {

// Token counts n(t, f) (TT x p, row-major, returned on the host) of a row-major device matrix X
// (dtype 0 = float32, 1 = float64) with device int32 labels y in 0..nc-1. Returns false when the
// data hold NaN/Inf (a non-finite class mean).
bool ilfs_token_counts(const void* X, int dtype, int64_t n, int64_t p, const int32_t* y, int nc, int tt,
                       std::vector<int64_t>& counts, uintptr_t stream);

}  // namespace cuda
}  // namespace swnas
