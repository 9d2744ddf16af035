// Host interface of the il-FS CUDA kernels (ilfs_cuda.cu), called by the pybind11 bindings.
#pragma once
#include <cstdint>
#include <vector>

#include "common/matrix_view.h"

namespace swnas {
namespace cuda {

// Token counts n(t, f) (TT x p, row-major, returned on the host) of a row-major device matrix X
// with device int32 labels y in 0..nc-1. Returns false when the data hold NaN/Inf (a non-finite
// class mean). Every argument is checked before any device memory is allocated.
bool ilfs_token_counts(const MatrixView& X, const int32_t* y, int nc, int tt, std::vector<int64_t>& counts,
                       uintptr_t stream);

}  // namespace cuda
}  // namespace swnas
